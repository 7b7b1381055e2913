"""Removal curves: the batched MoRF/LeRF/random code against a literal per-image loop, and the
ordering MoRF < random < LeRF where the attribution is the input itself."""
import copy

import numpy as np
import pytest
import torch
from test_evaluation_imputation import road_reference
from torch import nn

from smoot_ext import allocator
from smoot_ext.evaluation import (
    RANDOM,
    EvalConfig,
    attribute,
    evaluate_checkpoints,
    removal_curves,
    summarise,
    unit_scores,
)
from smoot_ext.evaluation.imputation import Imputation
from smoot_ext.evaluation.perturbation import FORWARD_BYTES, MAX_FORWARD_BATCH, default_forward_batch

LEVELS = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9]


def _small_cnn(seed=0, channels=2):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(channels, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, 5)).eval()


def _literal_curves(model, x, y, scores, levels, order, fill, value=0.0):
    """The definition, one image and one level at a time: rank with a stable argsort (ties to
    the lower index), replace the first k, classify."""
    correct = np.zeros((len(x), len(levels)), dtype=bool)
    prob = np.zeros((len(x), len(levels)), dtype=np.float32)
    m = scores.shape[1]
    for i in range(len(x)):
        s = scores[i].numpy()
        rank = np.argsort(-s if order == "morf" else s, kind="stable")
        for li, k in enumerate(int(level * m + 1e-9) for level in levels):
            img = x[i].numpy().copy()
            removed = np.zeros(m, dtype=bool)
            removed[rank[:k]] = True
            removed = removed.reshape(img.shape[1:])
            if fill == "constant":
                img[:, removed] = value
            elif fill == "mean" and k:
                img[:, removed] = img[:, ~removed].mean(axis=1, keepdims=True)
            elif fill == "road":
                img = road_reference(img.astype(np.float64), removed).astype(np.float32)
            with torch.no_grad():
                logits = model(torch.from_numpy(img)[None])[0]
            correct[i, li] = int(logits.argmax()) == int(y[i])
            prob[i, li] = float(torch.softmax(logits, 0)[y[i]])
    return correct, prob


class Spy(nn.Module):
    """Records the inputs it is given, answers as `model`."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, t):
        self.seen.append(t.clone())
        return self.model(t)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 2, 8, 8, generator=g)
    model = _small_cnn()
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::3] = (y[::3] + 1) % 5  # some start wrong
    scores = unit_scores(attribute(model, x, y, "saliency", baseline=0.0, data_range=1.0))
    scores[0, :10] = scores[0].max()  # ties among the most salient: the lower index goes first
    scores[1, :10] = scores[1].min()  # and among the least salient
    return model, x, y, scores


@pytest.mark.parametrize("order", ["morf", "lerf"])
@pytest.mark.parametrize("fill", ["constant", "mean", "road"])
def test_curves_equal_a_literal_per_image_loop(batch, order, fill):
    model, x, y, scores = batch
    imputation = Imputation(fill, -0.5, noise=0.0)
    correct, prob = removal_curves(model, x, y, scores, LEVELS, order=order, imputation=imputation, forward_batch=7)
    want_c, want_p = _literal_curves(model, x, y, scores, LEVELS, order, fill, value=-0.5)
    np.testing.assert_allclose(prob.numpy(), want_p, atol=1e-5)
    assert (correct.numpy() == want_c).all()
    assert len(np.unique(want_p.round(4))) > len(LEVELS)  # the curves do move: the test can fail


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_the_uniform_fill_removes_the_literal_units_and_draws_within_the_kept_range(batch, order):
    """The training fill is random: check what the model saw, image by image and level by level."""
    model, x, y, scores = batch
    spy = Spy(model)
    removal_curves(spy, x, y, scores, LEVELS, order=order, forward_batch=10_000, seed=3)
    seen = spy.seen[-1]  # x itself (level 0 removes nothing), then the other levels one after the other
    assert torch.equal(seen[:len(x)], x)
    tiled = seen[len(x):].view(len(LEVELS) - 1, *x.shape)
    for li, k in enumerate(int(level * 64 + 1e-9) for level in LEVELS[1:]):
        for i in range(len(x)):
            rank = np.argsort(-scores[i].numpy() if order == "morf" else scores[i].numpy(), kind="stable")
            removed = np.zeros(64, dtype=bool)
            removed[rank[:k]] = True
            removed = torch.from_numpy(removed.reshape(8, 8))
            got, img = tiled[li, i], x[i]
            assert torch.equal(got[:, ~removed], img[:, ~removed])
            assert (got[:, removed] != img[:, removed]).all()
            lo, hi = img[:, ~removed].amin(1, keepdim=True), img[:, ~removed].amax(1, keepdim=True)
            assert ((got[:, removed] >= lo) & (got[:, removed] <= hi)).all()
    again = Spy(model)
    removal_curves(again, x, y, scores, LEVELS, order=order, forward_batch=10_000, seed=3)
    assert torch.equal(again.seen[-1], spy.seen[-1])  # seeded


@pytest.mark.parametrize("fill", ["uniform", "constant"])
def test_given_clean_logits_change_nothing_but_the_work(batch, fill):
    """Level 0 forwarded beside the removals or taken from ``clean_logits``: the same curves, and
    the same random draws at every other level."""
    model, x, y, scores = batch
    imputation = Imputation(fill, -0.5)
    with torch.inference_mode():
        logits = model(x)
    a = removal_curves(model, x, y, scores, LEVELS, imputation=imputation, forward_batch=12, seed=3)
    b = removal_curves(model, x, y, scores, LEVELS, imputation=imputation, forward_batch=12, seed=3,
                       clean_logits=logits)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_random_order_is_a_random_subset_of_every_size(batch):
    model, x, y, _ = batch
    rnd = torch.rand(len(x), 64, generator=torch.Generator().manual_seed(5))
    correct, _ = removal_curves(model, x, y, rnd, LEVELS, order="random", imputation=Imputation("constant", 0.0))
    want, _ = _literal_curves(model, x, y, -rnd, LEVELS, "morf", "constant")  # ascending random = MoRF of -random
    assert (correct.numpy() == want).all()


# --- a linear model whose attribution is its input ----------------------------------------------

def _evidence_task(n=300, d=64, seed=0):
    """Class 1 images are bright (exponential pixels of mean 1), class 0 dim (mean 0.1); the model
    is linear, logit(1) - logit(0) = 2 (sum(x) - d/2), so its InputXGradient is +-x: the input."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    scale = torch.where(y.bool(), 1.0, 0.1).view(n, 1, 1, 1)
    x = torch.empty(n, 1, 8, d // 8).exponential_(generator=g) * scale
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([-torch.ones(d), torch.ones(d)]))
        model[1].bias.copy_(torch.tensor([d / 2, -d / 2]))
    return x, y, model.eval()


@pytest.mark.parametrize("fill", ["constant", "uniform", "mean", "road"])
def test_input_as_attribution_orders_morf_below_random_below_lerf(fill):
    x, y, model = _evidence_task()
    a = attribute(model, x, y, "input_x_gradient", baseline=0.0, data_range=1.0)
    torch.testing.assert_close(a.abs(), x)  # the attribution is the input
    cfg = EvalConfig(methods=["input_x_gradient"], fill=fill, fill_value=0.0, bootstrap=200, progress=False)
    per_image, _ = evaluate_checkpoints({"linear": model}, [(x[:150], y[:150]), (x[150:], y[150:])], cfg)
    res = summarise(per_image, cfg)["models"]["linear"]["methods"]
    for metric in ("accuracy", "probability"):
        m, rnd = res["input_x_gradient"][metric], res[RANDOM][metric]["auc_random"]
        assert m["auc_morf"]["mean"] < rnd["mean"] < m["auc_lerf"]["mean"], (metric, m, rnd)
        assert m["srg"]["lo"] > 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("fill", ["uniform", "road"])
def test_curves_on_the_gpu_match_the_cpu(batch, fill):
    model, x, y, scores = batch
    imputation = Imputation(fill, noise=0.0)
    cpu = removal_curves(model, x, y, scores, LEVELS, imputation=imputation, seed=2)
    gpu = removal_curves(copy.deepcopy(model).cuda(), x.cuda(), y.cuda(), scores.cuda(), LEVELS,
                         imputation=imputation, seed=2)
    assert torch.equal(gpu[0].cpu(), cpu[0])
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], atol=1e-4, rtol=0)


@pytest.mark.parametrize("kept", [True, False])
@pytest.mark.parametrize("shape, dtype", [((1, 8, 8), torch.float32), ((1, 28, 28), torch.float32),
                                          ((1, 28, 28), torch.float64), ((3, 224, 224), torch.float32),
                                          ((2,), torch.float32), ((50, 50), torch.float32)])
def test_the_default_forward_batch_holds_a_fixed_number_of_bytes_by_the_allocator_setting(
        shape, dtype, kept, monkeypatch):
    monkeypatch.setattr(allocator, "_kept", kept)
    x = torch.zeros(3, *shape, dtype=dtype)
    per_input = x[0].numel() * x.element_size()
    budget = FORWARD_BYTES[kept]
    want = budget // per_input
    got = default_forward_batch(x)
    assert got == max(16, min(MAX_FORWARD_BATCH, want))
    assert 16 <= got <= MAX_FORWARD_BATCH
    if 16 < want < MAX_FORWARD_BATCH:
        assert got * per_input <= budget < (got + 1) * per_input


def test_kept_freed_memory_forwards_larger_batches(monkeypatch):
    x = torch.zeros(3, 1, 28, 28)
    monkeypatch.setattr(allocator, "_kept", False)
    small = default_forward_batch(x)
    monkeypatch.setattr(allocator, "_kept", True)
    assert (small, default_forward_batch(x)) == (FORWARD_BYTES[False] // (28 * 28 * 4), MAX_FORWARD_BATCH)
