"""The command-line programs: ``smoot-train``, ``smoot-evaluate``, ``smoot-reproduce``.

Each module has ``build_parser()`` and ``main(argv=None) -> int``; ``python/*.py`` and the console
scripts call ``main``, which runs its work through :func:`run_command`. Process-wide settings
(threads, allocator) are made by :func:`smoot_ext.process.process_settings`, first.

The library's errors name its parameters (``lam: expected ...``); here they name the flag that
sets the parameter (``--lambda: expected ...``).
"""
from __future__ import annotations

import argparse
import copy
import signal
import sys
from collections.abc import Callable


def run_command(parser: argparse.ArgumentParser, argv, body: Callable[[argparse.Namespace], int],
                stops: tuple[type[BaseException], ...] = ()) -> int:
    """Parses ``argv`` and returns ``body(args)``. A library error (ValueError, FileNotFoundError)
    becomes the parser's usage error, in flags; one of ``stops`` (a run that had to stop, e.g. a
    non-finite loss) is printed and gives exit status 1."""
    args = parser.parse_args(argv)
    try:
        return body(args)
    except stops as e:
        print(f"{parser.prog}: stopped: {as_flags(str(e), parser)}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        parser.error(as_flags(str(e), parser))


def given_options(parser: argparse.ArgumentParser, argv) -> set[str]:
    """The parameters set on the command line ``argv``, given or not at their default."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_known_args(argv)[0]))


def stop_on_signals() -> None:
    """SIGTERM (a scheduler's stop) and SIGINT (Ctrl-C) end a training run alike: a clear message,
    the last checkpoint intact, exit status 1. The handler raises KeyboardInterrupt and also
    requests the stop (``request_stop``), which holds where Python drops the raise (in a
    finalizer). A SIGINT ignored by the parent (a background job) stays ignored."""
    from ..training.loop import request_stop  # here: the other commands need not import training

    def interrupt(signum, frame):
        request_stop()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, interrupt)


def as_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with a leading parameter name (``name: ...``) written as its flag."""
    name, sep, rest = message.partition(":")
    flags = {a.dest: next(o for o in a.option_strings if o.startswith("--"))
             for a in parser._actions if any(o.startswith("--") for o in a.option_strings)}
    return f"{flags[name]}{sep}{rest}" if sep and name in flags else message
