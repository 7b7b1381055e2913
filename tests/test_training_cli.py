"""smoot-train (smoot_ext.cli.train) end to end: the default digits run, MNIST, resume, NaN stop, bad input."""
import csv
import json
from pathlib import Path

import matplotlib.image as mpimg
import pytest
import torch
from data_dir import MNIST_DIR, needs_mnist

from smoot_ext.cli import train as train_cli
from smoot_ext.training import loop
from smoot_ext.training.checkpoint import load_checkpoint, load_model
from smoot_ext.training.config import DEFAULT_EPOCHS

ROOT = Path(__file__).resolve().parents[1]
# One thread: on a shared, busy 2-core machine two spinning OpenMP threads slow each other badly.
FAST = ["--threads", "1", "--no-progress"]


def _cli():
    return train_cli


def _rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_default_command_reaches_95_percent_on_digits(tmp_path):
    out = tmp_path / "run"
    assert _cli().main(["--no-progress", "--out", str(out)]) == 0  # every other option at its default
    rows = _rows(out)
    assert len(rows) == DEFAULT_EPOCHS["digits"]
    assert rows[-1]["test_acc"] >= 0.95
    assert list(rows[-1]) == list(loop.HISTORY_COLUMNS)
    with open(out / "metrics.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) and float(table[-1]["test_acc"]) == pytest.approx(rows[-1]["test_acc"])
    for png in ("curves.png", "k_hist.png"):
        assert mpimg.imread(out / png).shape[2] in (3, 4)
    # SMOOT moved k inside [kmin, kmax] = [12, 51] of M = 64 pixels.
    assert 12 <= rows[-1]["k_min"] < rows[-1]["k_max"] <= 51
    model, meta = load_model(str(out / "checkpoint.pt"))
    assert (meta["dataset"], meta["model"], meta["method"], meta["num_units"]) == ("digits", "cnn", "smoot", 64)
    assert meta["k"].shape == (1437,) and meta["k_stats"]["max"] == rows[-1]["k_max"]
    assert meta["epoch"] == len(rows) and not model.training
    from smoot_ext.data import load_dataset

    test = load_dataset("digits").test
    with torch.no_grad():
        acc = (model(test.images).argmax(1) == test.labels).float().mean().item()
    assert acc == pytest.approx(rows[-1]["test_acc"])


def test_trunc_rounding_keeps_k_nearer_its_start(tmp_path):
    # With floor, any masked-confidence drop costs a sample 1; trunc needs a drop of 1/mu. Same
    # seed, same first epoch's masks: after 4 epochs the floor run's k lies lower.
    medians = {}
    for rounding in ("floor", "trunc"):
        out = tmp_path / rounding
        assert _cli().main(FAST + ["--epochs", "4", "--k-rounding", rounding, "--out", str(out)]) == 0
        rows = _rows(out)
        medians[rounding] = [r["k_median"] for r in rows]
        _, meta = load_model(str(out / "checkpoint.pt"))
        assert meta["config"]["k_rounding"] == rounding
    assert medians["floor"][-1] < medians["trunc"][-1] <= 51
    assert medians["floor"] == sorted(medians["floor"], reverse=True)  # floor only drifts down here


@needs_mnist
def test_one_mnist_epoch_per_method(tmp_path):
    k = {}
    for method in ("baseline", "sgt", "smoot"):
        out = tmp_path / method
        argv = FAST + ["--dataset", "mnist", "--data-dir", str(MNIST_DIR), "--subset", "384",
                       "--batch-size", "128", "--test-subset", "128", "--epochs", "1", "--method", method,
                       "--out", str(out)]
        assert _cli().main(argv) == 0
        row = _rows(out)[0]
        assert 0 <= row["test_acc"] <= 1 and row["train_loss"] > 0
        k[method] = load_checkpoint(str(out / "checkpoint.pt"))["meta"]["k"], row
    assert k["baseline"][0] is None and k["baseline"][1]["train_kl"] == 0
    assert k["sgt"][0] is None and k["sgt"][1]["k_min"] == k["sgt"][1]["k_max"] == 392  # 50% of 784
    smoot = k["smoot"][0]
    assert smoot.shape == (384,) and (smoot != 392).any()
    assert smoot.min() >= 156 and smoot.max() <= 627  # floor(0.2 * 784), floor(0.8 * 784)


def _state(out):
    return load_checkpoint(str(out / "checkpoint.pt"))


@pytest.mark.parametrize("k_update", ["units", "percent"])
def test_resume_continues_bit_for_bit(tmp_path, k_update):
    common = FAST + ["--subset", "300", "--test-subset", "100", "--batch-size", "32", "--k-update", k_update]
    assert _cli().main(common + ["--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert _cli().main(common + ["--epochs", "1", "--out", str(tmp_path / "split")]) == 0
    assert _cli().main(FAST + ["--epochs", "2", "--resume", "--out", str(tmp_path / "split")]) == 0
    a, b = _state(tmp_path / "straight"), _state(tmp_path / "split")
    assert a["epoch"] == b["epoch"] == 2
    def run_metrics(row):
        return {k: v for k, v in row.items() if k not in loop.TIMINGS}

    for ra, rb in zip(a["history"], b["history"], strict=True):
        assert run_metrics(ra) == run_metrics(rb)
    assert all(torch.equal(a["model"][n], b["model"][n]) for n in a["model"])
    assert torch.equal(a["trainer"][0]["k"], b["trainer"][0]["k"])
    assert (a["trainer"][0]["k"] != 32).any()
    # The mask generator's one home is the trainer object's state, not the RNG states.
    assert torch.equal(a["trainer"][0]["generator"], b["trainer"][0]["generator"])
    assert "mask_generator" not in a["rng"][0]
    if k_update == "percent":  # the real-valued K, not only its counts
        assert torch.equal(a["trainer"][0]["k_percent"], b["trainer"][0]["k_percent"])
        assert not torch.equal(a["trainer"][0]["k_percent"], a["trainer"][0]["k"].double())
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[i]["square_avg"], sb[i]["square_avg"]) for i in sa)
    assert len(_rows(tmp_path / "split")) == 2


def test_nan_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    common = FAST + ["--subset", "200", "--test-subset", "50", "--out", str(out)]
    assert _cli().main(common + ["--epochs", "1"]) == 0
    before = (out / "checkpoint.pt").read_bytes()
    real = loop.load_dataset

    def poisoned(*args, **kwargs):
        bundle = real(*args, **kwargs)
        bundle.train.images[:, :, 0, 0] = float("nan")
        return bundle

    monkeypatch.setattr(loop, "load_dataset", poisoned)
    assert _cli().main(FAST + ["--out", str(out), "--epochs", "3", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "the loss became nan at epoch 2, step 1" in err
    assert "the checkpoint after epoch 1 is intact" in err
    assert (out / "checkpoint.pt").read_bytes() == before
    assert len(_rows(out)) == 1


@pytest.mark.parametrize("argv,message", [
    (["--dataset", "svhn"], "--dataset: invalid choice: 'svhn' (choose from"),
    (["--model", "vgg"], "--model: invalid choice: 'vgg' (choose from"),
    (["--method", "sgd"], "--method: invalid choice: 'sgd' (choose from"),
    (["--k-min", "1.5"], "--k-min: expected a fraction of the units in [0, 1], got 1.5"),
    (["--k-min", "0.6", "--k-max", "0.4"], "--k-min: expected k_min <= k_max"),
    (["--batch-size", "0"], "--batch-size: expected an integer >= 1, got 0"),
    (["--lambda", "-1"], "--lambda: expected a finite value >= 0, got -1.0"),
    (["--device", "tpu"], "--device: expected auto, cpu, cuda or cuda:N, got 'tpu'"),
    (["--dataset", "mnist", "--data-dir", "/nonexistent/dir"], "--data-dir: '/nonexistent/dir' does not exist"),
    (["--resume"], "--resume: no checkpoint at"),
    (["--k-rounding", "round"], "--k-rounding: invalid choice: 'round' (choose from"),
])
def test_bad_input_names_the_option(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        _cli().main(FAST + ["--out", str(tmp_path / "x")] + argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if "invalid choice" in message:  # and the valid choices (quoted or not, by Python version)
        assert all(c in err for c in ("digits", "cnn", "smoot"))
