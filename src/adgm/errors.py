"""The one exception type the user sees for bad input or a broken environment."""


class AdgmError(ValueError):
    """A problem with the user's input, files or settings, stated in one line.

    A ValueError, as scikit-learn and most Python code expect of bad input.

    The CLI prints ``adgm: error: <message>`` and exits with status 2; Python callers can
    catch it. Anything else escaping the library is a bug in adgm.
    """
