"""The ``adgm`` command: train, evaluate, sample, plot, summary and reproduce (``adgm CMD -h``).

Every field of DataConfig, ModelConfig and TrainConfig is a ``--kebab-case`` flag of
``adgm train`` (``adgm.cli_flags``); the defaults are the paper's. Errors in the user's input
end the program with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings

from adgm.cli_evaluate import add_evaluate, add_sample
from adgm.cli_reports import add_plot, add_reproduce, add_summary
from adgm.cli_train import add_train
from adgm.errors import AdgmError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # --help and usage errors end here, before torch is loaded
    from adgm.cpu import denormals_flushed, keep_freed_memory

    if args.command in ("train", "reproduce"):  # this process is ours: see adgm.cpu
        keep_freed_memory()
    try:
        with denormals_flushed(), _adgm_warnings_in_one_line():
            # denormals flushed before torch starts threads, which then inherit the mode
            return args.handler(args, argv if argv is not None else sys.argv[1:])
    except AdgmError as exc:
        print(f"adgm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "adgm: interrupted; the last checkpoint is kept (resume with --resume)", file=sys.stderr
        )
        return 130
    except BrokenPipeError:  # whoever read stdout stopped (`adgm summary ... | head`)
        _discard_stdout()
        return 141  # as a shell reports a command ended by SIGPIPE
    except Exception as exc:
        from adgm.train import TrainingInterrupted

        if not isinstance(exc, TrainingInterrupted):
            raise
        print(f"adgm: interrupted: {exc} (continue with --resume)", file=sys.stderr)
        return 128 + exc.signal  # as a shell reports the signal: 130 for Ctrl-C, 143 for SIGTERM


@contextlib.contextmanager
def _adgm_warnings_in_one_line():
    """Inside the block adgm's own warnings print as ``adgm: warning: <message>`` on stderr, as
    its errors do; other warnings as Python prints them."""
    from adgm.errors import AdgmWarning

    shown_before = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, AdgmWarning):
            print(f"adgm: warning: {message}", file=sys.stderr)
        else:
            shown_before(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown_before


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush has nowhere to fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind stdout
        pass


def build_parser() -> argparse.ArgumentParser:
    """The adgm command: one sub-parser per subcommand, each with its handler."""
    # The docstring's first line, without its reStructuredText literal marks.
    description = __doc__.splitlines()[0].replace("``", "")
    parser = argparse.ArgumentParser(prog="adgm", description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (add_train, add_evaluate, add_sample, add_plot, add_summary, add_reproduce):
        add(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
