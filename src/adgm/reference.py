"""Reference learning curve: the training log committed with the authors' paper-era code.

Source: ``output/id_20151209002003_ADGMSSL_784_[500, 500, 500, 500, 500, 500]_200/
_logging_2015-12-09-002003.log`` in the authors' repository (auxiliary-deep-generative-models,
paper-era version). That run trains the ADGM with 10 Monte Carlo samples, batches of 100 labelled
+ 100 unlabelled images, beta = 1200 and networks of two hidden layers of 500 units (its listing
"q(a|x): 784, 500, 500, 500, 100" gives each weight matrix's input width, the mean's and the
log-variance's layers both reading the second hidden layer, then the output width); every 10
epochs it prints the test error with 100 samples of a ("test 100-samples"), the figures below,
copied from the log for epochs 10 to 400.

Every epoch the log also prints two errors with one sample of a: test[err], on the test set, and
valid[err], on MNIST's 10,000 validation images, which that code had merged into its training
set (``load_semi_supervised(..., train_valid_combine=True)`` in ``run_adgmssl_mnist.py``): images
the run trains on, unlabelled. Both are copied below at every 10th epoch from 10 to 400.
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

# epoch -> the log's test[err] (%), one sample of a
AUTHORS_LOG_TEST_ERROR_ONE_SAMPLE = {
    10: 18.03, 20: 15.18, 30: 13.66, 40: 14.12, 50: 15.18,
    60: 13.87, 70: 12.27, 80: 8.35, 90: 6.92, 100: 5.73,
    110: 5.80, 120: 4.35, 130: 3.73, 140: 3.48, 150: 2.74,
    160: 2.80, 170: 2.23, 180: 2.35, 190: 2.11, 200: 1.61,
    210: 1.70, 220: 1.58, 230: 1.68, 240: 1.74, 250: 1.56,
    260: 1.59, 270: 1.51, 280: 1.68, 290: 1.66, 300: 1.68,
    310: 1.78, 320: 1.60, 330: 1.57, 340: 1.32, 350: 1.64,
    360: 1.55, 370: 1.64, 380: 1.63, 390: 1.48, 400: 1.38,
}  # fmt: skip

# epoch -> the log's valid[err] (%), one sample of a: the error on 10,000 of its training images
AUTHORS_LOG_TRAINING_IMAGE_ERROR = {
    10: 16.76, 20: 14.33, 30: 12.17, 40: 13.79, 50: 14.89,
    60: 13.55, 70: 12.06, 80: 8.61, 90: 7.29, 100: 5.50,
    110: 5.51, 120: 3.63, 130: 2.63, 140: 2.59, 150: 1.65,
    160: 1.74, 170: 1.34, 180: 1.08, 190: 0.91, 200: 0.53,
    210: 0.35, 220: 0.16, 230: 0.25, 240: 0.28, 250: 0.05,
    260: 0.12, 270: 0.09, 280: 0.07, 290: 0.09, 300: 0.12,
    310: 0.17, 320: 0.10, 330: 0.08, 340: 0.06, 350: 0.18,
    360: 0.07, 370: 0.13, 380: 0.08, 390: 0.07, 400: 0.03,
}  # fmt: skip
