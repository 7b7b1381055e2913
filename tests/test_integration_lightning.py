"""SaliencyGuidedCallback with real Lightning on the CPU: a fit equals the plain loop, k is synced
across DDP ranks, survives a checkpoint, reaches the logger, and timm models and bf16 work."""
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning_cases import Guided, RecordK, digits, seeded_loader, trainer
from torchrun import run_two_processes

from smoot_ext.integrations.lightning import SaliencyGuidedCallback
from smoot_ext.models import build_model

HERE = Path(__file__).resolve().parent


def _cnn():
    torch.manual_seed(0)
    return build_model("cnn", 1, 10, 8)


def test_fit_equals_the_plain_loop_losses_and_k_each_epoch(tmp_path):
    data = digits()
    module = Guided(_cnn(), len(data), (1, 8, 8))
    record = RecordK()
    fit = trainer(2, [SaliencyGuidedCallback(), record], logger=CSVLogger(tmp_path))
    torch.manual_seed(1)  # the paper CNN's dropout draws: the same stream in both runs
    fit.fit(module, seeded_loader(data))

    plain = Guided(_cnn(), len(data), (1, 8, 8))
    opt = plain.configure_optimizers()
    loader = seeded_loader(data)
    plain.train()
    torch.manual_seed(1)
    ks = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        for step, batch in enumerate(loader):
            loss = plain.training_step(batch, step)
            opt.zero_grad()
            loss.backward()
            opt.step()
        plain.sgt.sync_k()
        ks.append(plain.sgt.k.clone())

    assert len(module.losses) == 2 * 3
    assert torch.equal(torch.stack(module.losses), torch.stack(plain.losses))
    assert all(torch.equal(a, b) for a, b in zip(record.k, ks))
    assert not torch.equal(ks[0], ks[1]) and (ks[1] != module.sgt.k_init).any()  # k moved
    # k min / median / max of each epoch reached the logger.
    rows = (Path(fit.logger.log_dir) / "metrics.csv").read_text().splitlines()
    header, values = rows[0].split(","), [dict(zip(rows[0].split(","), r.split(","))) for r in rows[1:]]
    assert {"k_min", "k_median", "k_max"} <= set(header)
    last = [v for v in values if v["k_max"]][-1]
    assert float(last["k_min"]) == ks[1].min().item() and float(last["k_max"]) == ks[1].max().item()
    assert float(last["k_median"]) == ks[1].median().item()


def _small_net():
    # No dropout: Lightning does not restore the global RNG on resume, the callback the rest.
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 6 * 6, 10))


def test_resume_from_a_mid_run_checkpoint_equals_the_unstopped_run(tmp_path):
    data = digits()
    whole = Guided(_small_net(), len(data), (1, 8, 8))
    saved = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_epochs=1, filename="{epoch}")
    trainer(4, [SaliencyGuidedCallback(), saved], enable_checkpointing=True).fit(whole, seeded_loader(data))

    ckpt = tmp_path / "epoch=1.ckpt"  # after 2 of 4 epochs
    state = torch.load(ckpt, weights_only=False)["callbacks"]
    (k_saved,) = [s["k"] for s in state.values() if "k" in s]
    assert (k_saved != whole.sgt.k_init).any() and not torch.equal(k_saved, whole.sgt.k)
    resumed = Guided(_small_net(), len(data), (1, 8, 8))
    trainer(4, [SaliencyGuidedCallback()]).fit(resumed, seeded_loader(data), ckpt_path=str(ckpt))

    assert torch.equal(resumed.sgt.k, whole.sgt.k)
    assert torch.equal(resumed.sgt.generator.get_state(), whole.sgt.generator.get_state())
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_timm_model_with_bf16_mixed_masks_in_the_input_dtype(monkeypatch):
    import timm

    import smoot_ext.training.guided as guided

    seen = []

    def recording_mask(x, grad, k, **kw):
        out = real_mask(x, grad, k, **kw)
        seen.append((x.dtype, grad.dtype, out[0].dtype, torch.get_autocast_dtype("cpu"),
                     torch.is_autocast_enabled("cpu")))
        return out

    real_mask = guided.mask
    monkeypatch.setattr(guided, "mask", recording_mask)
    data = digits(64)
    torch.manual_seed(0)
    net = timm.create_model("test_vit", pretrained=False, img_size=8, patch_size=4, in_chans=1, num_classes=10)
    module = Guided(net, len(data), (1, 8, 8))
    trainer(1, [SaliencyGuidedCallback(module.sgt)], precision="bf16-mixed").fit(module, seeded_loader(data))
    assert len(seen) == 2 and all(s == (torch.float32,) * 3 + (torch.bfloat16, True) for s in seen)
    assert all(torch.isfinite(loss) for loss in module.losses)
    assert (module.sgt.k != module.sgt.k_init).any()


def test_callback_needs_exactly_one_saliency_guided_training():
    data = digits(32)
    module = Guided(_small_net(), len(data), (1, 8, 8))
    module.other = module.sgt
    with pytest.raises(ValueError, match="sgt: expected the LightningModule to hold exactly one"):
        trainer(1, [SaliencyGuidedCallback()]).fit(module, seeded_loader(data))
    with pytest.raises(TypeError, match="sgt: expected a SaliencyGuidedTraining or None, got Sequential"):
        SaliencyGuidedCallback(module.net)


WORKER = """
import os, sys, torch
sys.path.insert(0, {here!r})
from lightning_cases import Guided, RecordK, digits, trainer
from smoot_ext.integrations.lightning import SaliencyGuidedCallback
from smoot_ext.models import build_model
from torch.utils.data import DataLoader

torch.manual_seed(0)
data = digits(128)
module = Guided(build_model("cnn", 1, 10, 8), len(data), (1, 8, 8))
record = RecordK()
fit = trainer(2, [SaliencyGuidedCallback(), record], devices=2, strategy="ddp")
fit.fit(module, DataLoader(data, batch_size=16, shuffle=True))
seen = torch.cat(module.indices[len(module.indices) // 2:])  # the last epoch's
torch.save({{"k": record.k, "seen": seen}}, os.path.join(sys.argv[1], f"rank{{fit.global_rank}}.pt"))
"""


def test_ddp_two_gloo_processes_hold_equal_k_after_every_epoch(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(here=str(HERE)))
    run_two_processes(script, str(tmp_path))
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert len(r0["k"]) == len(r1["k"]) == 2
    assert all(torch.equal(a, b) for a, b in zip(r0["k"], r1["k"]))
    # Each rank's own updates reached the common vector: k moved on samples of both ranks.
    for r in (r0, r1):
        assert (r0["k"][-1][r["seen"]] != 32).float().mean() > 0.3
