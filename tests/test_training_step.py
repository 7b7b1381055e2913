"""The training step's forwards: two of B by default (the old one of 2B where BatchNorm or DDP
needs it), the same loss and gradients as the old formulation; a declared trunk forwarded once
for x, bit for bit the same step; the opt-in shared forward."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

import smoot_ext
from smoot_ext import allocator
from smoot_ext.cli import train as train_cli
from smoot_ext.models import build_model
from smoot_ext.training import loop
from smoot_ext.training.guided import GuidedConfig, SaliencyGuidedTraining
from smoot_ext.training.saliency import input_gradient, logits_and_input_gradient

B, SIDE = 16, 10


def _cnn(dropout: bool):
    torch.manual_seed(0)
    model = build_model("cnn", 1, 10, SIDE).train()
    if not dropout:  # p = 0: no draw, so every formulation sees the same network
        model.drop1.p = model.drop2.p = 0.0
    return model


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(B, 1, SIDE, SIDE, generator=g), torch.randint(0, 10, (B,), generator=g)


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def _old_step(model, sgt, x, y, index, gen_state, k_before):
    """The step as it was: one forward of [x; x_masked] (2B), cross-entropy on the logits."""
    cfg = sgt.config
    grad = input_gradient(model, x, y)
    k = k_before[index] if cfg.method == "smoot" else sgt.k_init
    x_masked, _ = smoot_ext.mask(x, grad, k, unit=cfg.unit, abs=cfg.abs, fill=cfg.fill,
                                 generator=torch.Generator().set_state(gen_state))
    logits, logits_masked = model(torch.cat([x, x_masked])).chunk(2)
    kl = F.kl_div(F.log_softmax(logits_masked, 1), F.log_softmax(logits, 1),
                  reduction="batchmean", log_target=True)
    loss = F.cross_entropy(logits, y) + cfg.lam * kl
    model.zero_grad(set_to_none=True)
    loss.backward()
    k_new = None
    if cfg.method == "smoot":
        k_new, _ = smoot_ext.update_k(logits.detach(), logits_masked.detach(), k, alpha=sgt.alpha,
                                      mu=cfg.mu, n=cfg.n, kmin=sgt.kmin, kmax=sgt.kmax)
    return loss.detach(), _grads(model), k_new


def _new_step(model, sgt, x, y, index):
    out = sgt.loss(x, y, index)
    model.zero_grad(set_to_none=True)
    out.loss.backward()
    return out.loss.detach(), _grads(model)


def _trainer(model, method, seed=4, **kw):
    sgt = SaliencyGuidedTraining(model, GuidedConfig(method=method, lam=0.7, **kw), num_samples=40,
                                 input_shape=(1, SIDE, SIDE), seed=seed)
    if method == "smoot":
        sgt.k = torch.randint(sgt.kmin, sgt.kmax + 1, (40,), generator=torch.Generator().manual_seed(2))
    return sgt


def _record_calls(model):
    """(training, batch, x requires grad) of every forward of ``model``."""
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append((m.training, a[0].shape[0], a[0].requires_grad)))
    return calls


@pytest.mark.parametrize("method", ["sgt", "smoot"])
@pytest.mark.parametrize("variant", ["two_forwards", "reused_trunk", "shared"])
def test_step_gives_the_old_formulations_loss_gradients_and_k(method, variant):
    # Without dropout the eval-mode saliency equals the train-mode one: the shared forward too
    # must reproduce the old step.
    model = _cnn(dropout=False)
    x, y = _batch()
    index = torch.arange(3, 3 + B)
    shared = variant == "shared"
    sgt = _trainer(model, method, shared_forward=shared, reuse_trunk=variant == "reused_trunk")
    assert sgt.reuse_trunk == (variant == "reused_trunk")
    k_before = None if sgt.k is None else sgt.k.clone()
    old_loss, old_grads, old_k = _old_step(model, sgt, x, y, index, sgt.generator.get_state(), k_before)
    calls = _record_calls(model)
    new_loss, new_grads = _new_step(model, sgt, x, y, index)
    torch.testing.assert_close(new_loss, old_loss, rtol=1e-5, atol=1e-6)
    for new, old in zip(new_grads, old_grads):
        torch.testing.assert_close(new, old, rtol=1e-4, atol=1e-6)
    if method == "smoot":
        assert torch.equal(sgt.k[index], old_k)
    # Forwards of B only; x requires grad only where the saliency is taken from it. A reused
    # trunk goes through model.trunk and model.head: forward runs for x_masked alone.
    assert calls == {"shared": [(True, B, True), (True, B, False)],
                     "reused_trunk": [(True, B, False)],
                     "two_forwards": [(False, B, True), (True, B, False), (True, B, False)]}[variant]


@pytest.mark.parametrize("method", ["sgt", "smoot"])
def test_reused_trunk_is_the_same_step_bit_for_bit_with_dropout(method):
    # The paper CNN as trained (dropout on): loss, gradients, k, the mask generator and the
    # global RNG after the step (dropout's draws) all equal those of the step with three forwards.
    x, y = _batch()
    index = torch.arange(3, 3 + B)
    got = []
    for reuse in (False, True):
        model = _cnn(dropout=True)
        sgt = _trainer(model, method, reuse_trunk=reuse)
        conv1 = _record_calls(model.conv1)
        torch.manual_seed(5)
        loss, grads = _new_step(model, sgt, x, y, index)
        got.append((loss, grads, None if sgt.k is None else sgt.k.clone(),
                    sgt.generator.get_state(), torch.get_rng_state(), conv1))
    (loss0, grads0, k0, gen0, rng0, conv0), (loss1, grads1, k1, gen1, rng1, conv1) = got
    assert torch.equal(loss1, loss0)
    assert all(torch.equal(a, b) for a, b in zip(grads1, grads0))
    assert k0 is None or torch.equal(k1, k0)
    assert torch.equal(gen1, gen0) and torch.equal(rng1, rng0)
    # One trunk forward fewer: x's (in train mode, requiring grad for the saliency) and x_masked's.
    assert conv0 == [(False, B, True), (True, B, False), (True, B, False)]
    assert conv1 == [(True, B, True), (True, B, False)]


def test_trunk_is_reused_only_where_the_step_forwards_the_model_itself(one_rank_group):
    def reuse(model, **kw):
        return SaliencyGuidedTraining(model, GuidedConfig(method="sgt", **kw), num_samples=B,
                                      input_shape=(1, SIDE, SIDE)).reuse_trunk
    assert reuse(_cnn(True)) and not reuse(_cnn(True), reuse_trunk=False)
    assert not reuse(_cnn(True), shared_forward=True)              # one forward of x already
    assert not reuse(torch.nn.parallel.DistributedDataParallel(_cnn(True)))  # DDP: its own forward
    assert not reuse(torch.compile(_cnn(True)))                    # compiled: its own forward
    assert not reuse(build_model("resnet", 1, 10, SIDE))           # declares no trunk
    with pytest.raises(ValueError, match="reuse_trunk: expected True or False, got 1"):
        GuidedConfig(reuse_trunk=1).validate()


def test_shared_forward_with_dropout_takes_the_saliency_in_train_mode():
    model = _cnn(dropout=True)
    x, y = _batch()
    sgt = _trainer(model, "sgt", shared_forward=True)
    calls = _record_calls(model)
    torch.manual_seed(5)
    out = sgt.loss(x, y, torch.arange(B))
    assert calls == [(True, B, True), (True, B, False)] and model.training
    assert all(p.grad is None for p in model.parameters())  # the saliency accumulates nothing
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    # The saliency is the gradient of this very forward (same dropout draw).
    torch.manual_seed(5)
    logits, grad = logits_and_input_gradient(model, x, y)
    torch.testing.assert_close(logits.detach(), out.logits)
    assert not torch.allclose(grad, input_gradient(model, x, y))
    with pytest.raises(ValueError, match=r"target: expected shape \(16,\)"):
        logits_and_input_gradient(model, x, y[:2])


def test_batchnorm_keeps_one_forward_of_2B():
    torch.manual_seed(0)
    model = build_model("resnet", 1, 10, SIDE).train()
    sgt = SaliencyGuidedTraining(model, GuidedConfig(method="sgt"), num_samples=B, input_shape=(1, SIDE, SIDE))
    assert sgt.one_forward
    calls = _record_calls(model)
    x, y = _batch()
    sgt.loss(x, y, torch.arange(B))
    assert calls == [(False, B, True), (True, 2 * B, False)]
    assert not SaliencyGuidedTraining(_cnn(True), GuidedConfig(), num_samples=B,
                                      input_shape=(1, SIDE, SIDE)).one_forward


@pytest.fixture
def one_rank_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("shared", [False, True])
def test_ddp_gets_one_forward_per_backward_and_the_same_gradients(one_rank_group, shared):
    x, y = _batch()
    index = torch.arange(B)
    plain = _cnn(dropout=False)
    loss, grads = _new_step(plain, _trainer(plain, "smoot", shared_forward=shared), x, y, index)
    inner = _cnn(dropout=False)
    ddp = torch.nn.parallel.DistributedDataParallel(inner)
    sgt = _trainer(ddp, "smoot", shared_forward=shared)
    assert sgt.one_forward and sgt.inner is inner
    calls = _record_calls(ddp)
    ddp_loss, ddp_grads = _new_step(inner, sgt, x, y, index)
    torch.testing.assert_close(ddp_loss, loss, rtol=1e-5, atol=1e-6)
    for a, b in zip(ddp_grads, grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    _new_step(inner, sgt, x, y, index)  # DDP checks that the first step's reduction finished
    assert calls == [(True, B if shared else 2 * B, False)] * 2


def test_shared_forward_option_reaches_the_trainer():
    parser = train_cli.build_parser()
    assert parser.parse_args([]).shared_forward is False
    cfg = loop.TrainConfig.from_options(vars(parser.parse_args(["--shared-forward"]))).resolved()
    assert cfg.guided.shared_forward is True
    with pytest.raises(ValueError, match="shared_forward: expected True or False, got 'yes'"):
        GuidedConfig(shared_forward="yes").validate()


def test_keep_freed_memory_reuses_large_blocks(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the user's own malloc settings win
    assert allocator.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    # In a fresh process: earlier tests in this one may already have made the setting.
    code = """
import json, resource, torch
from smoot_ext import allocator
assert not allocator.freed_memory_kept()
if not allocator.keep_freed_memory():
    print("null")
    raise SystemExit
assert allocator.freed_memory_kept()
conv, x = torch.nn.Conv2d(1, 64, 3), torch.rand(256, 1, 28, 28)
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.relu(conv(x)).sum().backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    faults = json.loads(proc.stdout)
    if faults is None:
        pytest.skip("not glibc")
    # A step's large activations (here 44 MB, above glibc's largest mmap threshold) are by
    # default mapped afresh and faulted in every step; kept, the heap settles and reuses them.
    assert min(faults[-3:]) < faults[0] // 20, faults
