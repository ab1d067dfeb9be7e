"""``python -m adgm ...`` (and ``torchrun -m adgm ...``): the same as the ``adgm`` command."""

import sys

from adgm.cli import main

sys.exit(main())
