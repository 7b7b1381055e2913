"""benchmarks/eval_vs_quantus.py against Quantus 0.6.0's PixelFlipping: checked on a literal
transcription of Quantus' code (no Quantus needed) and, where Quantus is installed, against it."""
import importlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from smoot_ext.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports its siblings as top-level modules
    try:
        return importlib.import_module("eval_vs_quantus")
    finally:
        sys.path.pop(0)


def pixel_flipping_0_6_0(model, x_batch, y_batch, a_batch, features_in_step, perturb_baseline, batch_size):
    """quantus/metrics/faithfulness/pixel_flipping.py, PixelFlipping.evaluate_batch (0.6.0), over the
    batches its __call__ makes, with batch_baseline_replacement_by_indices (a number as baseline)
    and PyTorchModel.predict (softmax=True, torch.no_grad), transcribed line by line."""
    curves = []
    for start in range(0, len(x_batch), batch_size):
        x, y, a = (v[start:start + batch_size] for v in (x_batch, y_batch, a_batch))
        bs = a.shape[0]
        a = a.reshape(bs, -1)
        n_features = a.shape[-1]
        a_indices = np.argsort(-a, axis=1)
        n_perturbations = math.ceil(n_features / features_in_step)
        preds = []
        x_perturbed = x.copy()
        for i in range(n_perturbations):
            a_ix = a_indices[:, i * features_in_step:(i + 1) * features_in_step]
            arr = x_perturbed.reshape(bs, -1)
            arr_perturbed = arr.copy()
            arr_perturbed[np.arange(bs)[:, None], a_ix] = np.full(a_ix.shape, perturb_baseline)
            x_perturbed = arr_perturbed.reshape(*x.shape)
            with torch.no_grad():
                pred = torch.nn.Softmax(dim=-1)(model(torch.Tensor(x_perturbed))).cpu().numpy()
            preds.append(pred[np.arange(bs), y])
        curves += np.stack(preds, axis=1).tolist()
    return np.asarray(curves, dtype=np.float32)


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    model = build_model("cnn", 1, 10, 8).eval()
    x = torch.rand(12, 1, 8, 8)
    y = torch.randint(0, 10, (12,))
    maps = torch.rand(12, 64)
    maps[:4] = torch.randint(0, 3, (4, 64)).float()  # heavy ties, as zero gradients give
    maps[4] = 0.0                                    # an all-zero map
    return model, x, y, maps


def test_tie_free_ranks_keep_our_order_and_break_every_tie(case):
    bench = _bench()
    maps = case[3]
    tf = bench.tie_free(maps)
    s = np.sort(tf.numpy(), axis=1)
    assert (s[:, 1:] > s[:, :-1]).all()  # no tie left
    ours_order = torch.sort(-maps, dim=1, stable=True).indices
    assert torch.equal(torch.argsort(-tf, dim=1), ours_order)


def _shared(bench, model, x, y, maps, step, batch):
    ours = bench.ours(model, x, y, maps, step, 0.0, batch)[:, 1:]
    theirs = pixel_flipping_0_6_0(model, x.numpy(), y.numpy(), maps.reshape(x.shape).numpy(), step, 0.0, batch)
    return ours, theirs[:, :-1]


@pytest.mark.parametrize("step", [1, 4])
def test_curves_equal_the_transcription_bit_for_bit_on_tie_free_maps(case, step):
    bench = _bench()
    model, x, y, maps = case
    ours, theirs = _shared(bench, model, x, y, bench.tie_free(maps), step, len(x))
    assert ours.shape == theirs.shape == (12, 64 // step - 1)
    assert np.array_equal(ours, theirs)


def test_raw_maps_differ_only_in_rows_with_ties(case):
    bench = _bench()
    model, x, y, maps = case
    ours, theirs = _shared(bench, model, x, y, maps, 1, len(x))
    differ = (ours != theirs).any(axis=1)
    s = np.sort(maps.numpy(), axis=1)
    tied = (s[:, 1:] == s[:, :-1]).any(axis=1)
    assert not (differ & ~tied).any()
    assert np.array_equal(ours[~tied], theirs[~tied])


def test_compare_asserts_equality_and_names_the_difference(case, monkeypatch):
    bench = _bench()
    model, x, y, maps = case

    def transcription(model, x, y, maps, step, fill, batch=bench.QUANTUS_BATCH):
        return pixel_flipping_0_6_0(model, x.numpy(), y.numpy(), maps.reshape(x.shape).numpy(), step, fill, batch)

    monkeypatch.setattr(bench, "quantus_curves", transcription)
    out = bench.compare(model, x, y, maps, 4, 0.0)
    assert out["tie_free_equal"] and out["differing_rows_all_tied"] and out["rows"] == 12
    assert out["rows_with_ties"] == 5  # the four tied maps and the all-zero one
    monkeypatch.setattr(bench, "quantus_curves", lambda *a, **k: transcription(*a, **k) + 1e-7)
    with pytest.raises(AssertionError, match="tie-free maps, step 4: curves differ"):
        bench.compare(model, x, y, maps, 4, 0.0)


def test_quantus_itself_equals_the_transcription(case):
    pytest.importorskip("quantus")
    bench = _bench()
    model, x, y, maps = case
    for batch in (5, 12):
        got = bench.quantus_curves(model, x, y, maps, 4, 0.0, batch)
        want = pixel_flipping_0_6_0(model, x.numpy(), y.numpy(), maps.reshape(x.shape).numpy(), 4, 0.0, batch)
        assert np.array_equal(got, want)
