"""The fault table (README, Troubleshooting): each row a test. A fault gives a clear error naming
its cause, and training never loses more than the epoch it was in."""
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from data_dir import MNIST_DIR, needs_mnist

import smoot_ext.data
from smoot_ext.cli import evaluate as evaluate_cli
from smoot_ext.cli import stop_on_signals
from smoot_ext.cli import train as train_cli
from smoot_ext.training import checkpoint, loop
from smoot_ext.training.checkpoint import load_checkpoint
from smoot_ext.training.config import TrainConfig
from smoot_ext.training.guided import GuidedConfig

FAST = ["--threads", "1", "--no-progress", "--subset", "200", "--test-subset", "50"]


def _train(out, *argv) -> int:
    return train_cli.main(FAST + ["--out", str(out), *argv])


def _error(capsys, call) -> str:
    with pytest.raises(SystemExit) as e:
        call()
    assert e.value.code == 2
    return capsys.readouterr().err


def _same_run(a: Path, b: Path) -> None:
    """Two runs' checkpoints hold the same weights, k, mask generators and metrics (less timings)."""
    sa, sb = load_checkpoint(str(a / "checkpoint.pt")), load_checkpoint(str(b / "checkpoint.pt"))
    assert sa["epoch"] == sb["epoch"]
    assert all(torch.equal(sa["model"][n], sb["model"][n]) for n in sa["model"])
    assert torch.equal(sa["trainer"][0]["k"], sb["trainer"][0]["k"])
    assert torch.equal(sa["trainer"][0]["generator"], sb["trainer"][0]["generator"])
    untimed = [[{k: v for k, v in r.items() if k not in loop.TIMINGS} for r in s["history"]] for s in (sa, sb)]
    assert untimed[0] == untimed[1]


@pytest.fixture(scope="module")
def smoot_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoot")
    assert _train(out, "--epochs", "1") == 0
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return out


# --- resume ---------------------------------------------------------------------------------------

def test_resume_with_other_options_names_each_and_both_values(smoot_run, tmp_path, capsys):
    out = _copy(smoot_run, tmp_path)
    err = _error(capsys, lambda: _train(out, "--epochs", "2", "--resume", "--method", "sgt", "--model", "resnet",
                                        "--lambda", "0.5"))
    assert "--resume: options differ from the checkpoint's: " in err
    assert "lam (0.5 given, 1.0 in the checkpoint)" in err
    assert "model ('resnet' given, 'cnn' in the checkpoint)" in err
    assert "method ('sgt' given, 'smoot' in the checkpoint)" in err
    # Given at its default value, it still counts as given.
    err = _error(capsys, lambda: _train(out, "--epochs", "2", "--resume", "--method", "sgt"))
    assert "method ('sgt' given, 'smoot'" in err
    assert load_checkpoint(str(out / "checkpoint.pt"))["epoch"] == 1  # nothing trained, nothing written


def test_resume_may_change_what_a_resume_changes(smoot_run, tmp_path):
    out = _copy(smoot_run, tmp_path)
    # The same subset and method as the checkpoint's, and the options a resume may change.
    assert _train(out, "--epochs", "2", "--resume", "--method", "smoot", "--threads", "1", "--device", "cpu") == 0
    assert load_checkpoint(str(out / "checkpoint.pt"))["epoch"] == 2


def test_resume_from_the_library_checks_the_options_that_differ_from_the_defaults(smoot_run, tmp_path):
    out = _copy(smoot_run, tmp_path)
    cfg = TrainConfig(guided=GuidedConfig(method="sgt"), out=str(out), resume=True, epochs=2, progress=False)
    with pytest.raises(ValueError, match=r"method \('sgt' given, 'smoot' in the checkpoint\)"):
        loop.train(cfg)


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_an_unreadable_checkpoint_is_named(smoot_run, tmp_path, capsys, damage):
    out = _copy(smoot_run, tmp_path)
    path = out / "checkpoint.pt"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        torch.save({"weights": 1}, path)
    err = _error(capsys, lambda: _train(out, "--epochs", "2", "--resume"))
    assert "--resume: " in err and repr(str(path)) in err and "move it away to train from the start" in err


# --- the disk -------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_full_or_read_only_disk_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys, code):
    out, straight = tmp_path / "run", tmp_path / "straight"
    assert _train(straight, "--epochs", "2") == 0
    assert _train(out, "--epochs", "1") == 0
    before = (out / "checkpoint.pt").read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(code, "simulated")

    monkeypatch.setattr(checkpoint.torch, "save", no_space)
    assert _train(out, "--epochs", "2", "--resume") == 1
    err = capsys.readouterr().err
    assert "stopped: cannot write the checkpoint of epoch 2" in err
    assert "the checkpoint after epoch 1 is intact" in err
    assert (out / "checkpoint.pt").read_bytes() == before
    assert not list(out.glob(".tmp-*"))  # no half-written file left behind
    monkeypatch.undo()
    assert _train(out, "--epochs", "2", "--resume") == 0
    _same_run(out, straight)


# --- signals --------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_an_epoch_keeps_the_last_checkpoint_and_resumes_bit_for_bit(tmp_path, sig):
    out = tmp_path / "run"
    argv = FAST + ["--subset", "600", "--batch-size", "8", "--out", str(out)]
    code = "import sys; from smoot_ext.cli.train import main; sys.exit(main(sys.argv[1:]))"
    # SIGINT at its default in the child: a test run started as a background job (CI's, maybe)
    # passes it on ignored, and an ignored SIGINT stays ignored (see the test below)
    proc = subprocess.Popen([sys.executable, "-c", code, *argv, "--epochs", "60"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.1)  # into the next epoch
    proc.send_signal(sig)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 1, err[-2000:]
    assert "stopped: interrupted during epoch" in err and "is intact" in err
    done = load_checkpoint(str(out / "checkpoint.pt"))["epoch"]
    assert 1 <= done < 60
    straight = tmp_path / "straight"
    assert train_cli.main(argv[:-1] + [str(straight), "--epochs", str(done + 1)]) == 0
    assert train_cli.main(argv + ["--epochs", str(done + 1), "--resume"]) == 0
    _same_run(out, straight)


@pytest.fixture
def signal_handlers():
    """The test process's SIGTERM and SIGINT handlers and stop request, as they were, afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)
    loop._stop_requested.clear()


def _four_epochs(out) -> TrainConfig:
    return TrainConfig(guided=GuidedConfig(method="sgt"), dataset="digits", subset=200, test_subset=50,
                       batch_size=50, threads=1, progress=False, out=str(out), epochs=4)


class _SignalInFinalizer:
    """A SIGTERM that lands while a finalizer runs: the handler's KeyboardInterrupt is raised in
    ``__del__``, where Python prints and drops it."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # bytecode for the handler to run in, if os.kill did not run it
            pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_lost_in_a_finalizer_still_stops_the_run(tmp_path, monkeypatch, signal_handlers):
    real = loop._stop_if_not_finite

    def check(run, loss_sum, epoch, step):  # called after every step's forward on the CPU
        real(run, loss_sum, epoch, step)
        if (epoch, step) == (1, 1):
            _SignalInFinalizer()  # made and finalized at once

    monkeypatch.setattr(loop, "_stop_if_not_finite", check)
    stop_on_signals()
    cfg = _four_epochs(tmp_path / "run")
    with pytest.raises(loop.Interrupted, match="interrupted during epoch 2: the checkpoint after epoch 1 is intact"):
        loop.train(cfg)
    assert load_checkpoint(cfg.out + "/checkpoint.pt")["epoch"] == 1
    monkeypatch.setattr(loop, "_stop_if_not_finite", real)
    assert len(loop.train(replace(cfg, resume=True)).history) == 4  # the request was that run's alone


def test_a_stop_request_between_epochs_stops_before_the_next(tmp_path, monkeypatch, signal_handlers):
    real = loop._save

    def save(run, row):
        real(run, row)
        if row["epoch"] == 2:
            loop.request_stop()

    monkeypatch.setattr(loop, "_save", save)
    cfg = _four_epochs(tmp_path / "run")
    with pytest.raises(loop.Interrupted, match="interrupted during epoch 3: the checkpoint after epoch 2 is intact"):
        loop.train(cfg)
    assert load_checkpoint(cfg.out + "/checkpoint.pt")["epoch"] == 2


def test_a_sigint_ignored_by_the_parent_stays_ignored(signal_handlers):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background job starts
    stop_on_signals()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)


# --- data and evaluation --------------------------------------------------------------------------

@needs_mnist
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_dataset_files_are_named(tmp_path, capsys, damage):
    data = tmp_path / "data"
    shutil.copytree(MNIST_DIR / "MNIST", data / "MNIST")
    images = data / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    images.chmod(0o644)
    images.write_bytes(images.read_bytes()[:5000] if damage == "truncated" else b"not an idx file")
    err = _error(capsys, lambda: _train(tmp_path / "run", "--dataset", "mnist", "--data-dir", str(data)))
    assert f"--data-dir: mnist's files in {str(data)!r} cannot be read, truncated or not in torchvision's format" \
        in err


def test_nan_or_inf_in_the_data_is_refused_at_load(tmp_path, monkeypatch, capsys):
    real = smoot_ext.data.load_images

    def poisoned(*args):
        train, test, *rest = real(*args)
        train.inputs[7, 0, 3, 3] = float("inf")
        return (train, test, *rest)

    monkeypatch.setattr(smoot_ext.data, "load_images", poisoned)
    err = _error(capsys, lambda: _train(tmp_path / "run", "--epochs", "1"))
    assert "--dataset: digits's training inputs hold NaN or inf (first in sample 7)" in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_evaluating_a_checkpoint_on_another_dataset_is_named(smoot_run, tmp_path, capsys):
    ckpt = str(smoot_run / "checkpoint.pt")
    err = _error(capsys, lambda: evaluate_cli.main(["--checkpoints", ckpt, "--dataset", "synthetic", "--no-progress",
                                                    "--out", str(tmp_path / "eval")]))
    assert f"--checkpoints: {ckpt!r} was trained on 'digits', but the test set is 'synthetic'" in err
