"""Model selection (smoot_ext.training.selection, the loop's --val-fraction/--patience/--monitor)
and smoot-reproduce's accuracy gate (--min-accuracy): the split, the epoch it stops at, the
weights it serves, kill and resume across the stop, and the runs left unscored."""
import json
from pathlib import Path

import pytest
import torch

from smoot_ext.cli import reproduce as reproduce_cli
from smoot_ext.cli import train as train_cli
from smoot_ext.data import IndexedSamples
from smoot_ext.study import comparison, experiment
from smoot_ext.training import loop
from smoot_ext.training.checkpoint import load_checkpoint, load_model
from smoot_ext.training.config import TrainConfig
from smoot_ext.training.guided import GuidedConfig
from smoot_ext.training.selection import best_epoch, split_validation, stop_reason

# Validation accuracy and loss per epoch: by accuracy the best is epoch 4 (epoch 7 only ties it),
# so patience 3 stops after epoch 7; by loss, epoch 5.
SCRIPT = [(0.5, 0.9), (0.6, 0.8), (0.6, 0.75), (0.7, 0.5), (0.65, 0.4), (0.6, 0.6), (0.7, 0.45), (0.9, 0.1)]


def _rows(script):
    return [{"epoch": e, "val_acc": a, "val_loss": v} for e, (a, v) in enumerate(script, 1)]


# --- the split and the rule -----------------------------------------------------------------------

def test_split_is_stratified_seeded_disjoint_and_keeps_order():
    shuffled = torch.randperm(60, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([0] * 30 + [1] * 10 + [2] * 20)[shuffled]
    x = torch.arange(60.0).reshape(60, 1, 1).expand(60, 2, 1)
    data = IndexedSamples(x, labels, masks=torch.arange(60), lengths=torch.arange(60) % 2 + 1)
    train, val = split_validation(data, 0.2, seed=5)
    for c, n in ((0, 30), (1, 10), (2, 20)):
        assert (val.labels == c).sum() == round(0.2 * n)
    ids_t, ids_v = train.inputs[:, 0, 0].long(), val.inputs[:, 0, 0].long()
    assert sorted(ids_t.tolist() + ids_v.tolist()) == list(range(60))  # disjoint, every sample once
    assert (ids_t.diff() > 0).all() and (ids_v.diff() > 0).all()  # the training set's order
    assert torch.equal(train.masks, ids_t) and torch.equal(val.lengths, ids_v % 2 + 1)  # carried along
    again, _ = split_validation(data, 0.2, seed=5)
    other, _ = split_validation(data, 0.2, seed=6)
    assert torch.equal(again.inputs, train.inputs) and not torch.equal(other.inputs, train.inputs)


def test_the_best_epoch_and_when_to_stop():
    rows = _rows(SCRIPT)
    # Accuracy, strictly better: a tie (epochs 3 and 7) keeps the earlier, whatever its loss.
    assert [best_epoch(rows[:n], "accuracy") for n in range(1, 9)] == [1, 2, 2, 4, 4, 4, 4, 8]
    assert [best_epoch(rows[:n], "loss") for n in range(1, 9)] == [1, 2, 3, 4, 5, 5, 5, 8]
    assert [stop_reason(rows[:n], "accuracy", 3, 100) for n in range(5, 8)] == [None, None, "patience"]
    assert stop_reason(rows[:7], "loss", 3, 100) is None  # loss: the best is epoch 5
    assert stop_reason(rows[:3], "accuracy", 3, 3) == "epochs"
    assert stop_reason(rows[:7], "accuracy", None, 100) is None  # no patience: train every epoch
    # Equal scores: the earliest is the best.
    assert best_epoch(_rows([(0.5, 0.5)] * 3), "accuracy") == best_epoch(_rows([(0.5, 0.5)] * 3), "loss") == 1


# --- the loop -------------------------------------------------------------------------------------

class Scripted:
    """The validation pass returns SCRIPT's row of the epoch (the test pass stays real); a kill
    (KeyboardInterrupt) during the epoch ``kill_at`` (1-based), once."""

    def __init__(self, monkeypatch, kill_at=None):
        self.epoch, self.calls, self.kill_at = 0, 0, kill_at
        real_epoch, real_test = loop._train_epoch, loop.test_loss_and_accuracy

        def train_epoch(run, epoch):
            self.epoch, self.calls = epoch, 0
            if epoch + 1 == self.kill_at:
                self.kill_at = None
                raise KeyboardInterrupt
            return real_epoch(run, epoch)

        def test(model, dataset, *args):
            self.calls += 1
            if self.calls == 1:  # each epoch tests first, then validates
                return real_test(model, dataset, *args)
            acc, val_loss = SCRIPT[self.epoch]
            return val_loss, acc

        monkeypatch.setattr(loop, "_train_epoch", train_epoch)
        monkeypatch.setattr(loop, "test_loss_and_accuracy", test)


def _config(out, **options):
    return TrainConfig(guided=GuidedConfig(method="smoot"), dataset="digits", subset=200, test_subset=60,
                       batch_size=50, threads=1, progress=False, out=str(out), val_fraction=0.25, **options)


def _same_state(a: dict, b: dict) -> None:
    """Two checkpoints hold the same training state, best weights and metrics (less timings)."""
    assert a["epoch"] == b["epoch"]
    for key in ("model", "best_model"):
        assert a[key].keys() == b[key].keys() and all(torch.equal(a[key][n], b[key][n]) for n in a[key])
    assert torch.equal(a["trainer"][0]["k"], b["trainer"][0]["k"])
    assert torch.equal(a["trainer"][0]["generator"], b["trainer"][0]["generator"])
    assert torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[p][k], sb[p][k]) for p in sa for k in sa[p])

    def untimed(rows):
        return [{k: v for k, v in r.items() if k not in loop.TIMINGS} for r in rows]

    assert untimed(a["history"]) == untimed(b["history"])
    assert a["meta"]["selection"] == b["meta"]["selection"]
    assert untimed([a["meta"]["metrics"]]) == untimed([b["meta"]["metrics"]])


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A run stopped by patience 3 at epoch 7 (best: 4), and one of 4 epochs without patience."""
    mp = pytest.MonkeyPatch()
    try:
        root = tmp_path_factory.mktemp("early")
        Scripted(mp)
        result = loop.train(_config(root / "stopped", patience=3, epochs=30))
        Scripted(mp)
        loop.train(_config(root / "four", epochs=4))
    finally:
        mp.undo()
    return root, result


def test_stops_at_the_right_epoch_and_serves_the_best(stopped):
    root, result = stopped
    out = root / "stopped"
    assert [r["epoch"] for r in result.history] == list(range(1, 8))
    assert [r["best_epoch"] for r in result.history] == [1, 2, 2, 4, 4, 4, 4]
    assert result.selection == {"val_fraction": 0.25, "val_size": 49, "monitor": "accuracy", "patience": 3,
                                "best_epoch": 4, "stopped_at": 7, "reason": "patience"}
    assert json.loads((out / "selection.json").read_text()) == result.selection
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[header.index("test_acc") + 1:header.index("k_min")] == ["val_loss", "val_acc", "best_epoch"]
    # Validation does not touch training: four epochs of the same run, without patience, end in
    # the weights the stopped run kept from its epoch 4, which it serves.
    state, four = load_checkpoint(str(out / "checkpoint.pt")), load_checkpoint(str(root / "four" / "checkpoint.pt"))
    assert all(torch.equal(state["best_model"][n], four["model"][n]) for n in four["model"])
    assert not all(torch.equal(state["model"][n], four["model"][n]) for n in four["model"])  # the last: epoch 7
    served, meta = load_model(str(out / "checkpoint.pt"))
    assert all(torch.equal(t, four["model"][n]) for n, t in served.state_dict().items())
    assert all(torch.equal(t, four["model"][n]) for n, t in result.model.state_dict().items())
    assert meta["metrics"] == result.history[3] == result.scored and meta["epoch"] == 7
    assert four["meta"]["selection"]["reason"] == "epochs" and len(state["trainer"][0]["k"]) == 151


def test_a_kill_across_the_stop_resumes_to_the_same_checkpoint(stopped, tmp_path, monkeypatch):
    root, _ = stopped
    out = tmp_path / "killed"
    Scripted(monkeypatch, kill_at=6)  # after the best epoch (4): its weights come from the checkpoint
    with pytest.raises(loop.Interrupted, match="the checkpoint after epoch 5 is intact"):
        loop.train(_config(out, patience=3, epochs=30))
    Scripted(monkeypatch)
    result = loop.train(_config(out, patience=3, epochs=30, resume=True))
    assert result.selection["stopped_at"] == 7
    straight = load_checkpoint(str(root / "stopped" / "checkpoint.pt"))
    _same_state(load_checkpoint(str(out / "checkpoint.pt")), straight)
    # A stopped run stays stopped: a resume with a higher cap trains nothing, writes nothing.
    before = (out / "checkpoint.pt").read_bytes()
    again = loop.train(_config(out, patience=3, epochs=50, resume=True))
    assert len(again.history) == 7 and (out / "checkpoint.pt").read_bytes() == before
    assert all(torch.equal(t, straight["best_model"][n]) for n, t in again.model.state_dict().items())


def test_without_the_options_nothing_changes(tmp_path):
    out = tmp_path / "plain"
    assert train_cli.main(["--subset", "100", "--test-subset", "40", "--epochs", "1", "--threads", "1",
                           "--no-progress", "--out", str(out)]) == 0
    state = load_checkpoint(str(out / "checkpoint.pt"))
    assert "best_model" not in state and "selection" not in state["meta"]
    assert set(state["history"][0]) == set(loop.HISTORY_COLUMNS)
    assert (out / "metrics.csv").read_text().splitlines()[0] == ",".join(loop.HISTORY_COLUMNS)
    assert not (out / "selection.json").exists()
    assert state["meta"]["metrics"] == state["history"][-1]


@pytest.mark.parametrize(("argv", "message"), [
    (["--patience", "5"], "--patience: stopping needs a validation split to watch (val_fraction), got patience 5"),
    (["--val-fraction", "1"], "--val-fraction: expected a fraction of the training set in (0, 1), got 1.0"),
    (["--val-fraction", "0.1", "--patience", "0"], "--patience: expected an integer >= 1, got 0"),
    (["--val-fraction", "0.001", "--subset", "50"],
     "--val-fraction: expected a share of the 50 training samples that leaves both parts at least one sample"),
    (["--monitor", "f1"], "--monitor: invalid choice: 'f1'"),
])
def test_bad_values_name_the_flag(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        train_cli.main(argv + ["--no-progress", "--out", str(tmp_path / "run")])
    assert message in capsys.readouterr().err


def test_a_resume_keeps_the_split_and_the_patience(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--subset", "100", "--test-subset", "40", "--threads", "1", "--no-progress", "--out", str(out)]
    assert train_cli.main(common + ["--epochs", "1", "--val-fraction", "0.2", "--patience", "2"]) == 0
    with pytest.raises(SystemExit):
        train_cli.main(common + ["--epochs", "2", "--resume", "--patience", "4"])
    assert "patience (4 given, 2 in the checkpoint)" in capsys.readouterr().err


# --- smoot-reproduce: the options it passes and the accuracy gate ---------------------------------

def test_the_options_reach_the_trainer_and_the_settings_only_where_given():
    plain = experiment.ReproduceConfig(dataset="digits")
    assert not {"val_fraction", "patience", "monitor", "min_accuracy"} & set(plain.settings())
    chosen = experiment.ReproduceConfig(dataset="digits", val_fraction=0.1, patience=5, monitor="loss",
                                        min_accuracy=90)
    t = chosen.train_config()
    assert (t.val_fraction, t.patience, t.monitor) == (0.1, 5, "loss")
    assert (t.optimizer, t.lr) == ("adadelta", None)  # the trainer's defaults, where not given
    adam = experiment.ReproduceConfig(dataset="digits", optimizer="adam", lr=0.001)
    assert (adam.train_config().optimizer, adam.train_config().lr) == ("adam", 0.001)
    assert {k: adam.settings()[k] for k in ("optimizer", "lr")} == {"optimizer": "adam", "lr": 0.001}
    assert not {"optimizer", "lr"} & set(plain.settings())
    assert {k: chosen.settings()[k] for k in ("val_fraction", "patience", "monitor")} == \
        {"val_fraction": 0.1, "patience": 5, "monitor": "loss"}


def _record(run, seed, accs, selection=None, scored=True):
    history = [{"epoch": e, "test_acc": a, "k_min": 0.0, "k_median": 0.0, "k_max": 0.0} for e, a in enumerate(accs, 1)]
    block = {"accuracy": {"srg": {"mean": 1.0 + seed}, "auc_morf": {"mean": 40.0}, "auc_lerf": {"mean": 41.0}}}
    record = {"run": run, "method": "baseline", "k_rounding": "floor", "seed": seed, "epochs": 3, "history": history,
              "scores": {"uniform": {"num_test": 10, "levels": [0.0, 0.5], "methods": {"saliency": block}}}
              if scored else {}}
    return {**record, **({"selection": selection} if selection else {})}


def test_the_gate_reads_the_served_epoch():
    gate = experiment.ReproduceConfig(dataset="digits", min_accuracy=90)
    best2 = {"best_epoch": 2}
    assert experiment.record_accuracy(_record("a", 0, [0.5, 0.95, 0.6], best2)) == pytest.approx(95.0)
    assert not gate.below_gate(_record("a", 0, [0.5, 0.95, 0.6], best2))
    assert gate.below_gate(_record("a", 0, [0.5, 0.95, 0.6]))  # no selection: the last epoch, 60%
    assert not experiment.ReproduceConfig(dataset="digits").below_gate(_record("a", 0, [0.1]))
    # The comparison's accuracy is the served epoch's too.
    summary = comparison.summarise_runs({"a": {0: _record("a", 0, [0.5, 0.95, 0.6], best2)}})
    assert [q["mean"] for q in summary["runs"]["a"]["quantities"] if q["kind"] == "accuracy"] == [pytest.approx(95.0)]


def test_the_summary_lists_the_runs_not_scored(tmp_path):
    results = tmp_path / "results"
    kept = {"a": {0: _record("a", 0, [0.95]), 1: _record("a", 1, [0.97])}}
    files = comparison.compare(kept, results)
    below = [_record("b", 0, [0.55], scored=False), _record("a", 2, [0.62], scored=False)]
    assert experiment.list_not_scored(below, 90.0, results, files) == files
    summary = json.loads((results / "summary.json").read_text())
    rows = [{"run": r, "seed": s, "accuracy": pytest.approx(a)} for r, s, a in (("a", 2, 62.0), ("b", 0, 55.0))]
    assert summary["not_scored"] == {"min_accuracy": 90.0, "runs": rows}
    assert list(summary["runs"]) == ["a"]
    md = (results / "summary.md").read_text()
    assert "**Not scored**: test accuracy below 90%" in md and "| b | 0 | 55.00 |" in md and "| a | 2 | 62.00 |" in md


def test_reproduce_leaves_a_low_accuracy_run_unscored(tmp_path, capsys):
    out, results = tmp_path / "runs", tmp_path / "results"
    argv = ["--dataset", "digits", "--training", "baseline", "--epochs", "1", "--subset", "60", "--num-test", "20",
            "--methods", "saliency", "--threads", "1", "--no-progress", "--out", str(out), "--results", str(results),
            "--val-fraction", "0.2", "--min-accuracy", "100"]
    assert reproduce_cli.main(argv) == 0
    record = json.loads((results / "baseline" / "seed0.json").read_text())
    accuracy = 100 * record["history"][record["selection"]["best_epoch"] - 1]["test_acc"]
    assert accuracy < 100 and record["not_scored"] == {"accuracy": pytest.approx(accuracy), "min_accuracy": 100.0}
    assert record["scores"] == {} and not list(Path(out / "baseline" / "seed0").glob("eval-*"))
    assert f"baseline, seed 0: not scored, test accuracy {accuracy:.2f}% < 100%" in capsys.readouterr().err
    summary = json.loads((results / "summary.json").read_text())
    assert summary["runs"] == {} and summary["not_scored"]["runs"][0]["run"] == "baseline"
    assert "No run reached the accuracy to be scored." in (results / "summary.md").read_text()
    # Done: a rerun trains and scores nothing; with the gate lowered, it is no longer done.
    assert reproduce_cli.main(argv) == 0 and ": done (" in capsys.readouterr().err
    lowered = experiment.ReproduceConfig(dataset="digits", training=["baseline"], subset=60, val_fraction=0.2,
                                         num_test=20, methods=["saliency"], min_accuracy=0)
    assert not lowered.matches(record)
