"""smoot_ext.training.guided: GuidedConfig and SaliencyGuidedTraining (the saliency, the loss, SMOOT's
k vector, its state, errors, compile)."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import smoot_ext
from smoot_ext.models import build_model
from smoot_ext.training.guided import GuidedConfig, SaliencyGuidedTraining
from smoot_ext.training.percent_k import PercentK
from smoot_ext.training.saliency import input_gradient


def _linear(c=1, s=8, classes=10):
    # No dropout or BatchNorm: the loss can then be recomputed by hand, bit for bit.
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, 32), nn.Tanh(), nn.Linear(32, classes))


def _batch(b=12, c=1, s=8, classes=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, s, s, generator=g), torch.randint(0, classes, (b,), generator=g)


def test_input_gradient_is_the_target_logit_gradient_in_eval_mode():
    torch.manual_seed(0)
    model = build_model("cnn", 1, 10, 8).train()  # dropout on: the gradient must not see it
    x, y = _batch()
    g = input_gradient(model, x, y)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    for b in (0, 7):
        xb = x[b:b + 1].clone().requires_grad_(True)
        model(xb)[0, y[b]].backward()
        torch.testing.assert_close(g[b:b + 1], xb.grad, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"target: expected shape \(12,\)"):
        input_gradient(model, x, y[:3])


@pytest.mark.parametrize("method,rounding", [("sgt", "floor"), ("smoot", "floor"), ("smoot", "trunc")])
@pytest.mark.parametrize("unit,fill", [("pixel", "uniform"), ("feature", "mean")])
def test_loss_and_k_update_match_a_hand_computation(method, rounding, unit, fill):
    model = _linear(c=3)
    x, y = _batch(c=3)
    index = torch.tensor([3, 17, 5, 0, 9, 11, 2, 8, 30, 31, 12, 14])
    cfg = GuidedConfig(method=method, unit=unit, fill=fill, lam=0.7, alpha=0.8, k_rounding=rounding)
    sgt = SaliencyGuidedTraining(model, cfg, num_samples=32, input_shape=(3, 8, 8), seed=5)
    M = 64 if unit == "pixel" else 192
    assert (sgt.num_units, sgt.k_init, sgt.kmin, sgt.kmax) == (M, M // 2, math.floor(0.2 * M), math.floor(0.8 * M))
    if method == "smoot":  # varied k per sample, as after some epochs
        sgt.k = torch.randint(sgt.kmin, sgt.kmax + 1, (32,), generator=torch.Generator().manual_seed(2))
    k_before = None if sgt.k is None else sgt.k.clone()
    gen_state = sgt.generator.get_state()

    out = sgt.loss(x, y, index)

    grad = input_gradient(model, x, y)
    k = k_before[index] if method == "smoot" else M // 2
    xm, _ = smoot_ext.mask(x, grad, k, unit=unit, fill=fill,
                           generator=torch.Generator().set_state(gen_state))
    logits, logits_m = model(x), model(xm)
    p, logq = F.softmax(logits, 1), F.log_softmax(logits_m, 1)
    kl = (p * (torch.log(p) - logq)).sum(1).mean()
    torch.testing.assert_close(out.loss, F.cross_entropy(logits, y) + 0.7 * kl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.kl, kl, rtol=1e-5, atol=1e-6)
    assert out.loss.requires_grad and not out.kl.requires_grad
    if method == "sgt":
        assert sgt.k is None and sgt.k_stats() == {"min": M // 2, "median": M // 2, "max": M // 2, "mean": M // 2}
        return
    k_new, _ = smoot_ext.update_k(logits, logits_m, k_before[index], alpha=0.8, mu=10.0, n=5,
                                  kmin=sgt.kmin, kmax=sgt.kmax, rounding=rounding)
    assert torch.equal(sgt.k[index], k_new)
    untouched = torch.ones(32, dtype=torch.bool)
    untouched[index] = False
    assert torch.equal(sgt.k[untouched], k_before[untouched])


def test_baseline_is_cross_entropy_and_has_no_k():
    model = _linear()
    x, y = _batch()
    sgt = SaliencyGuidedTraining(model, GuidedConfig(method="baseline"), num_samples=12, input_shape=(1, 8, 8))
    out = sgt.loss(x, y, torch.arange(12))
    torch.testing.assert_close(out.loss, F.cross_entropy(model(x), y))
    assert sgt.k is None and sgt.k_stats()["max"] == 0


def test_smoot_k_moves_and_stays_in_bounds_over_steps():
    torch.manual_seed(0)
    model = build_model("cnn", 1, 10, 8)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sgt = SaliencyGuidedTraining(model, GuidedConfig(method="smoot"), num_samples=48, input_shape=(1, 8, 8))
    x, y = _batch(48)
    for _ in range(4):
        out = sgt.loss(x, y, torch.arange(48))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert (sgt.k != 32).any()
    assert sgt.k.min() >= 12 and sgt.k.max() <= 51
    st = sgt.k_stats()
    assert st["min"] <= st["median"] <= st["max"] and st["median"] == sgt.k.float().median().item()
    sgt.sync_k()  # no process group: a no-op
    assert (sgt.k != 32).any()


def test_state_dict_round_trip_and_mismatch():
    model = _linear()
    cfg = GuidedConfig(method="smoot")
    a = SaliencyGuidedTraining(model, cfg, num_samples=20, input_shape=(1, 8, 8), seed=1)
    a.k[3] = 40
    torch.rand(3, generator=a.generator)
    b = SaliencyGuidedTraining(model, cfg, num_samples=20, input_shape=(1, 8, 8), seed=2)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.k, b.k)
    assert torch.equal(torch.rand(4, generator=a.generator), torch.rand(4, generator=b.generator))
    with pytest.raises(ValueError, match="k vector of 20 samples, this object has 21"):
        SaliencyGuidedTraining(model, cfg, num_samples=21, input_shape=(1, 8, 8)).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="method 'smoot'.*method 'sgt'"):
        SaliencyGuidedTraining(model, GuidedConfig(method="sgt"), num_samples=20,
                               input_shape=(1, 8, 8)).load_state_dict(a.state_dict())


@pytest.mark.parametrize("change,message", [
    (dict(method="smoth"), "method: expected one of baseline, sgt, smoot, got 'smoth'"),
    (dict(unit="patch"), "unit: expected one of feature, pixel"),
    (dict(fill="zero"), "fill: expected one of uniform, constant, mean"),
    (dict(k_init=1.5), r"k_init: expected a fraction of the units in \[0, 1\], got 1.5"),
    (dict(k_min=-0.1), r"k_min: expected a fraction"),
    (dict(k_min=0.6, k_max=0.4), "k_min: expected k_min <= k_max, got k_min=0.6 > k_max=0.4"),
    (dict(k_init=0.9), r"k_init: expected a value in \[k_min, k_max\] = \[0.2, 0.8\]"),
    (dict(alpha=2.0), r"alpha: expected a weight in \[0, 1\]"),
    (dict(n=0), "n: expected >= 1"),
    (dict(lam=float("nan")), "lam: expected a finite value"),
    (dict(k_rounding="round"), "k_rounding: expected one of floor, trunc, got 'round'"),
])
def test_config_errors_name_the_option(change, message):
    with pytest.raises(ValueError, match=message):
        SaliencyGuidedTraining(_linear(), GuidedConfig(**change), num_samples=4, input_shape=(1, 8, 8))


def test_percent_k_steps_by_mu_delta_percent_of_the_units_without_rounding():
    model = _linear()
    x, y = _batch()
    index = torch.tensor([3, 17, 5, 0, 9, 11, 2, 8, 30, 31, 12, 14])
    sgt = SaliencyGuidedTraining(model, GuidedConfig(method="smoot", k_update="percent", alpha=0.8),
                                 num_samples=32, input_shape=(1, 8, 8), seed=5)
    assert torch.equal(sgt.percent.value, torch.full((32,), 32.0, dtype=torch.float64)) and (sgt.k == 32).all()
    sgt.percent.value = 32.0 + torch.rand(32, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 30 - 15
    sgt.k = sgt.percent.value.round().long()
    before, gen_state = sgt.percent.value.clone(), sgt.generator.get_state()

    sgt.loss(x, y, index)

    xm, _ = smoot_ext.mask(x, input_gradient(model, x, y), before[index].round().long(),
                           generator=torch.Generator().set_state(gen_state))
    p, q = F.softmax(model(x), 1).double(), F.softmax(model(xm), 1).double()
    top = p.argsort(dim=1, descending=True, stable=True)[:, :5]
    d = (q - p).gather(1, top)
    delta = 0.8 * d[:, 0] + 0.2 * d[:, 1:].mean(1)
    want = (before[index] + 64 / 100 * 10 * delta).clamp(0.2 * 64, 0.8 * 64)
    torch.testing.assert_close(sgt.percent.value[index], want, rtol=0, atol=1e-6)
    assert torch.equal(sgt.k[index], sgt.percent.value[index].round().long())
    untouched = torch.ones(32, dtype=torch.bool)
    untouched[index] = False
    assert torch.equal(sgt.percent.value[untouched], before[untouched])


def test_percent_k_adds_up_small_steps_and_clamps():
    k = PercentK(torch.full((3,), 784), k_init=0.5, k_min=0.2, k_max=0.8)
    for _ in range(10):  # mu * delta = 0.1 percent a step: whole-unit steps would floor each to 0
        counts = k.step(torch.tensor([0]), torch.tensor([0.01]), mu=10.0)
    assert k.value[0].item() == pytest.approx(392 + 10 * 0.784) and counts.tolist() == [400]
    assert k.step(torch.tensor([1]), torch.tensor([float("nan")]), mu=10.0).tolist() == [157]  # 156.8: the floor
    assert k.step(torch.tensor([2]), torch.tensor([1.0]), mu=100.0).tolist() == [627]  # 627.2: the ceiling
    assert k.value[1].item() == pytest.approx(156.8) and k.value[2].item() == pytest.approx(627.2)


def test_alpha_none_is_the_papers_default_and_a_given_alpha_is_used():
    def k_after_one_step(alpha):
        x, y = _batch()
        sgt = SaliencyGuidedTraining(_linear(), GuidedConfig(method="smoot", alpha=alpha), num_samples=12,
                                     input_shape=(1, 8, 8), seed=0)
        sgt.loss(x, y, torch.arange(12))
        return sgt.alpha, sgt.k

    alpha, k = k_after_one_step(None)
    assert alpha == 0.95 and torch.equal(k, k_after_one_step(0.95)[1])
    assert not torch.equal(k, k_after_one_step(0.0)[1])  # alpha reaches the k update


def test_k_summary_is_what_a_checkpoint_keeps_of_k():
    sgt = SaliencyGuidedTraining(_linear(), GuidedConfig(method="smoot"), num_samples=5, input_shape=(1, 8, 8))
    sgt.k[2] = 40
    s = sgt.k_summary()
    assert (s["num_units"], s["k_init"], s["kmin"], s["kmax"]) == (64, 32, 12, 51)
    assert s["k_stats"] == sgt.k_stats() and s["k_stats"]["max"] == 40
    sgt.k[2] = 33  # a copy: the summary does not move with the vector
    assert s["k"][2] == 40 and s["k"].device.type == "cpu"
    assert SaliencyGuidedTraining(_linear(), GuidedConfig(method="sgt"), num_samples=5,
                                  input_shape=(1, 8, 8)).k_summary()["k"] is None


def test_sgt_may_start_outside_smoots_bounds():
    sgt = SaliencyGuidedTraining(_linear(), GuidedConfig(method="sgt", k_init=0.9), num_samples=4,
                                 input_shape=(1, 8, 8))
    assert sgt.k_init == 57


def test_compiled_model_gives_the_eager_loss():
    model = _linear()
    compiled = torch.compile(model, backend="aot_eager")  # inductor's C++ build is too slow for a test
    x, y = _batch()
    index = torch.arange(12)
    eager = SaliencyGuidedTraining(model, GuidedConfig(), num_samples=12, input_shape=(1, 8, 8), seed=3)
    comp = SaliencyGuidedTraining(compiled, GuidedConfig(), num_samples=12, input_shape=(1, 8, 8), seed=3)
    for _ in range(2):
        a, b = eager.loss(x, y, index), comp.loss(x, y, index)
        torch.testing.assert_close(a.loss, b.loss, rtol=1e-5, atol=1e-6)
        assert torch.equal(eager.k, comp.k)
        b.loss.backward()
        assert model[1].weight.grad is not None
        model.zero_grad()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_smoot_step_on_gpu_matches_cpu_k():
    model = _linear()
    x, y = _batch()
    index = torch.arange(12)
    cpu = SaliencyGuidedTraining(model, GuidedConfig(), num_samples=12, input_shape=(1, 8, 8), seed=3)
    cpu.loss(x, y, index)
    gpu_model = _linear().cuda()
    gpu = SaliencyGuidedTraining(gpu_model, GuidedConfig(), num_samples=12, input_shape=(1, 8, 8),
                                 device="cuda", seed=3)
    out = gpu.loss(x.cuda(), y.cuda(), index)
    out.loss.backward()
    assert gpu.k.device.type == "cuda"
    # Same seed and masks; logits differ in rounding only, so k agrees but for rare ties.
    assert (gpu.k.cpu() == cpu.k).float().mean() >= 0.9
