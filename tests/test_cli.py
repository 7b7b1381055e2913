"""The command-line skeleton: the library's errors name parameters, the CLI names flags."""
import pytest

from smoot_ext.cli import as_flags, run_command
from smoot_ext.cli import train as train_cli


class Stop(RuntimeError):
    pass


def test_a_parameter_is_written_as_its_flag():
    parser = train_cli.build_parser()
    assert as_flags("lam: expected a finite value >= 0, got -1.0", parser) == \
        "--lambda: expected a finite value >= 0, got -1.0"
    assert as_flags("k_rounding: expected one of floor, trunc", parser) == "--k-rounding: expected one of floor, trunc"
    assert as_flags("abs: x", parser) == "--signed: x"  # the flag that sets it, whatever its name
    # Not a parameter of this command, or no leading name: as it came.
    assert as_flags("forward_batch: expected an integer", parser) == "forward_batch: expected an integer"
    assert as_flags("the loss became nan", parser) == "the loss became nan"


def _fails(error):
    def body(args):
        raise error
    return body


def test_run_command_turns_library_errors_into_usage_errors(capsys):
    parser = train_cli.build_parser()
    with pytest.raises(SystemExit) as e:
        run_command(parser, ["--epochs", "3"], _fails(ValueError("epochs: expected an integer >= 1, got 0")))
    assert e.value.code == 2 and "error: --epochs: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert run_command(parser, [], _fails(Stop("n: stopped here")), stops=(Stop,)) == 1
    assert "stopped: --n: stopped here" in capsys.readouterr().err
    assert run_command(parser, ["--epochs", "4"], lambda args: args.epochs) == 4
    with pytest.raises(KeyError):  # anything else is a bug: its traceback is kept
        run_command(parser, [], _fails(KeyError("x")))


EXIT_PROBE = """
import atexit, gc
calls = []
real = gc.freeze
gc.freeze = lambda: (calls.append(1), real())
atexit.register(lambda: print("freezes", len(calls), "frozen", gc.get_freeze_count() > 0))  # runs last
from smoot_ext.process import process_settings
process_settings(None)
process_settings(None)
"""


def test_a_front_end_freezes_the_heap_once_at_exit():
    """The settings of a front end (called twice, as tests call main) freeze the heap once, at
    exit, before the interpreter's last collections."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", EXIT_PROBE], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["freezes", "1", "frozen", "True"]
