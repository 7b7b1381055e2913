"""The evaluation on sequences: per time step, token or element, padding never removed or
counted, localisation against a known box, ERASER's statistics, the commands on ts-*/text."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from smoot_ext.cli import reproduce
from smoot_ext.evaluation import EvalConfig, auroc, precision_at_region
from smoot_ext.evaluation.perturbation import removal_curves
from smoot_ext.evaluation.results import BY_NAME
from smoot_ext.evaluation.runner import evaluate_checkpoints
from smoot_ext.evaluation.units import REMOVAL_UNITS
from smoot_ext.training.checkpoint import load_model

T, D = 10, 3
LEVELS = [0.0, 0.25, 0.5, 0.75]


def test_localisation_leaves_padding_out():
    """Padding holding the highest scores would make every metric near 0 if it were ranked; over
    the real units the box is found exactly, and AUROC is sklearn's on the real units alone."""
    g = torch.Generator().manual_seed(0)
    B, M = 4, 12
    lengths = torch.tensor([12, 9, 6, 4])
    real = torch.arange(M) < lengths[:, None]
    region = torch.zeros(B, M, dtype=torch.bool)
    region[:, 1:3] = True
    scores = torch.rand(B, M, generator=g) + 2.0 * region  # the box above every other real unit
    scores[~real] = 100.0
    assert torch.equal(precision_at_region(scores, region, real), torch.ones(B))
    assert torch.equal(auroc(scores, region, real), torch.ones(B))
    assert float(auroc(scores, region)[3]) < 0.5  # padding counted: it outranks the box
    noisy = torch.randn(B, M, generator=g)
    got = auroc(noisy, region, real)
    for b in range(B):
        n = int(lengths[b])
        assert float(got[b]) == pytest.approx(roc_auc_score(region[b, :n].numpy(), noisy[b, :n].numpy()))


class Spy(torch.nn.Module):
    """Predicts class 0 when the first step's first value is positive; keeps every input it got."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, lengths=None):
        self.seen.append((x.clone(), None if lengths is None else lengths.clone()))
        return torch.stack([x[:, 0, 0], -x[:, 0, 0]], dim=1)


@pytest.mark.parametrize("unit", ["step", "element"])
def test_levels_are_fractions_of_each_samples_own_length_and_padding_stays(unit):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, T, D, generator=g) + 1.0
    lengths = torch.tensor([10, 7, 4])
    x[1, 7:] = -5.0  # padding far outside the real range: a fill drawn from it would show
    x[2, 4:] = -5.0
    u = REMOVAL_UNITS[unit]
    scores = torch.rand(3, u.count(x), generator=g)
    spy = Spy()
    removal_curves(spy, x, torch.zeros(3, dtype=torch.long), scores, LEVELS, order="morf", unit=unit,
                   lengths=lengths, forward_batch=10_000)
    assert len(spy.seen) == 1  # level 0 (x itself) and the removals in one pass
    xs, lm = spy.seen[0]
    assert torch.equal(lm, lengths.repeat(len(LEVELS)))  # the model is told each row's length
    assert torch.equal(xs[:3], x)
    xm = xs[3:]
    per = D if unit == "element" else 1
    changed = (xm != x.repeat(len(LEVELS) - 1, 1, 1))
    for i, level in enumerate(LEVELS[1:]):
        for b in range(3):
            row = changed[i * 3 + b]
            n = int(lengths[b])
            assert not row[n:].any()  # padding never removed
            units = row.any(dim=1) if unit == "step" else row.reshape(-1)
            assert int(units.sum()) == int(np.floor(level * n * per + 1e-9))  # k = floor(level * n_b)
            assert bool((xm[i * 3 + b][:n] >= 1.0).all())  # the fill's range: real units only


class BoxReader(torch.nn.Module):
    """Reads only the box (steps 2-4, features 0-1): its gradient is zero everywhere else."""

    def forward(self, x, lengths=None):
        s = x[:, 2:5, 0:2].sum(dim=(1, 2))
        return torch.stack([s, -s], dim=1)


def test_a_model_that_reads_only_the_box_localises_perfectly():
    g = torch.Generator().manual_seed(2)
    n = 40
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, T, D, generator=g)
    x[:, 2:5, 0:2] = (1.0 - 2.0 * y.float()).view(-1, 1, 1) * (1.0 + torch.rand(n, 3, 2, generator=g))
    box = torch.zeros(n, T, D, dtype=torch.bool)
    box[:, 2:5, 0:2] = True
    for unit, region in (("element", box), ("step", box.any(dim=2))):
        config = EvalConfig(methods=["saliency"], levels=LEVELS, unit=unit, orders=["morf", "lerf"], progress=False)
        per_image, maps = evaluate_checkpoints({"box": BoxReader()}, [(x, y, box)], config)
        loc = per_image.localisation["box"][0]["saliency"]
        assert np.all(loc["auroc"] == 1.0) and np.all(loc["precision_at_region"] == 1.0), unit
        assert REMOVAL_UNITS[unit].region(box, x).shape == region.reshape(n, -1).shape
        assert maps["saliency"]["saliency"]["box"].shape[1:] == REMOVAL_UNITS[unit].map_shape(x)
        stats = per_image.statistics["box"][0]["saliency"]["correct"]
        # Removing the box first breaks the model at once; removing it last never does.
        assert stats["srg"].mean() > 10.0 and stats["sufficiency"].mean() == 0.0


def test_eraser_statistics_are_mean_drops_from_the_clean_input():
    curves = {"clean": np.array([100.0, 80.0]), "morf": np.array([[100.0, 50.0, 0.0], [80.0, 80.0, 20.0]]),
              "lerf": np.array([[100.0, 100.0, 90.0], [80.0, 60.0, 60.0]])}
    levels = [0.0, 0.5, 0.9]
    assert BY_NAME["comprehensiveness"].per_image(curves, levels).tolist() == [75.0, 30.0]
    assert BY_NAME["sufficiency"].per_image(curves, levels).tolist() == [5.0, 20.0]
    assert (BY_NAME["comprehensiveness"].better, BY_NAME["sufficiency"].better) == ("higher", "lower")


@pytest.mark.parametrize("dataset, model, unit", [("ts-middle", "lstm", None), ("text-rationale", "bilstm", None),
                                                   ("ts-middle", "tcn", "feature")])
def test_reproduce_on_sequences_end_to_end(tmp_path, dataset, model, unit):
    results = tmp_path / "results"
    argv = ["--dataset", dataset, "--model", model, "--training", "baseline", "smoot", "--epochs", "1",
            "--subset", "40", "--seeds", "0", "1", "--methods", "saliency", "--num-test", "24", "--threads", "1",
            "--no-progress", "--out", str(tmp_path / "runs"), "--results", str(results)]
    assert reproduce.main(argv + (["--unit", unit] if unit else [])) == 0
    record = json.loads((results / "smoot" / "seed1.json").read_text())
    scores = record["scores"]["uniform"]
    assert record["settings"]["model"] == model and scores["num_test"]["saliency"] == 24
    # --unit feature masks and removes single elements (50 x 50 of a series), not the 50 time steps.
    assert record["settings"].get("unit") == unit
    _, meta = load_model(str(tmp_path / "runs" / "smoot" / "seed1" / "checkpoint.pt"))
    assert meta["config"]["unit"] == (unit or "pixel")
    assert meta["num_units"] == (2500 if unit == "feature" else 50 if dataset == "ts-middle" else 40)
    report = json.loads((tmp_path / "runs" / "smoot" / "seed1" / "eval-uniform-saliency" / "results.json").read_text())
    assert report["config"]["unit"] == ("element" if unit == "feature" else "step")
    loc = scores["localisation"]["saliency"]
    assert 0.0 <= loc["auroc"] <= 1.0 and 0.0 <= loc["precision_at_region"] <= 1.0
    acc = scores["methods"]["saliency"]["accuracy"]
    assert {"comprehensiveness", "sufficiency", "srg"} <= set(acc)
    summary = (results / "summary.md").read_text()
    assert "MoRF drop (comprehensiveness)" in summary and "auroc" in summary


def test_sequence_units_need_sequences():
    with pytest.raises(ValueError, match=r"x: expected a \(B, T, D\) tensor for unit='step', got shape \(2, 1, 4, 4\)"):
        evaluate_checkpoints({"m": BoxReader()}, [(torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))],
                             EvalConfig(methods=["saliency"], unit="step", progress=False))


