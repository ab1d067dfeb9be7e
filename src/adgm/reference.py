"""Reference learning curve: the training log committed with the authors' paper-era code.

Source: ``output/id_20151209002003_ADGMSSL_784_[500, 500, 500, 500, 500, 500]_200/
_logging_2015-12-09-002003.log`` in the authors' repository (auxiliary-deep-generative-models,
paper-era version). That run trains the ADGM with 10 Monte Carlo samples, batches of 100 labelled
+ 100 unlabelled images, beta = 1200 and networks of three hidden layers of 500 units; every 10
epochs it prints the test error with 100 samples of a ("test 100-samples"), the figures below,
copied from the log for epochs 10 to 400.
"""

from __future__ import annotations

AUTHORS_LOG_LABEL = "authors' log, ADGM 10 MC"

# epoch -> test error (%) with 100 samples of a
AUTHORS_LOG_TEST_ERROR = {
    10: 17.27, 20: 14.75, 30: 12.69, 40: 13.99, 50: 14.60,
    60: 13.25, 70: 11.86, 80: 7.92, 90: 6.63, 100: 5.44,
    110: 5.62, 120: 4.25, 130: 3.49, 140: 3.34, 150: 2.74,
    160: 2.76, 170: 2.25, 180: 2.25, 190: 2.10, 200: 1.59,
    210: 1.78, 220: 1.58, 230: 1.69, 240: 1.66, 250: 1.56,
    260: 1.53, 270: 1.47, 280: 1.58, 290: 1.62, 300: 1.60,
    310: 1.61, 320: 1.65, 330: 1.56, 340: 1.23, 350: 1.49,
    360: 1.50, 370: 1.58, 380: 1.61, 390: 1.39, 400: 1.33,
}  # fmt: skip
