"""The one exception type the user sees for bad input or a broken environment."""

import functools
import sys


class AdgmError(ValueError):
    """A problem with the user's input, files or settings, stated in one line.

    A ValueError, as scikit-learn and most Python code expect of bad input.

    The CLI prints ``adgm: error: <message>`` and exits with status 2; Python callers can
    catch it. Anything else escaping the library is a bug in adgm.
    """


class AdgmWarning(UserWarning):
    """A setting that works but is likely not what the user wants (bf16 on a CPU without bf16
    kernels, for instance). The CLI prints ``adgm: warning: <message>``; Python callers see a
    warning they can filter."""


def errors_in_one_line(program: str):
    """Decorate a script's ``main()`` so an AdgmError ends it as the CLI does: one line,
    ``<program>: error: <message>`` on stderr, and exit status 2, never a traceback."""

    def decorate(main):
        @functools.wraps(main)
        def guarded(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except AdgmError as exc:
                print(f"{program}: error: {exc}", file=sys.stderr)
                raise SystemExit(2) from None

        return guarded

    return decorate
