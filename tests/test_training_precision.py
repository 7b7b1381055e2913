"""smoot-train --precision: the step under torch.autocast (bf16 on the CPU, fp16 with a GradScaler
on CUDA), float32 otherwise; fp16 without CUDA is a clear error."""
import pytest
import torch

from smoot_ext.cli.train import main
from smoot_ext.training.guided import SaliencyGuidedTraining
from smoot_ext.training.loop import TrainConfig, train


def _run(tmp_path, precision, device="cpu"):
    return train(TrainConfig(dataset="digits", subset=64, test_subset=32, batch_size=32, epochs=1,
                             precision=precision, device=device, out=str(tmp_path / precision),
                             threads=1, progress=False))


@pytest.fixture
def autocast_seen(monkeypatch):
    """(autocast on?, its dtype, the logits' dtype) of each training step."""
    seen = []
    real_loss = SaliencyGuidedTraining.loss

    def recording_loss(self, x, y, index):
        out = real_loss(self, x, y, index)
        seen.append((torch.is_autocast_enabled(x.device.type), torch.get_autocast_dtype(x.device.type),
                     out.logits.dtype))
        return out

    monkeypatch.setattr(SaliencyGuidedTraining, "loss", recording_loss)
    return seen


def test_bf16_steps_run_under_autocast_and_32_does_not(tmp_path, autocast_seen):
    full = _run(tmp_path, "32")
    assert autocast_seen == [(False, torch.bfloat16, torch.float32)] * 2
    half = _run(tmp_path, "bf16")
    assert autocast_seen[2:] == [(True, torch.bfloat16, torch.bfloat16)] * 2
    a, b = full.history[0], half.history[0]
    assert a["train_loss"] != b["train_loss"] and abs(a["train_loss"] - b["train_loss"]) < 0.05
    assert b["k_min"] < b["k_max"]  # SMOOT's k moved from bf16 logits
    assert torch.load(tmp_path / "bf16" / "checkpoint.pt", weights_only=False)["meta"]["config"]["precision"] == "bf16"


def test_fp16_without_cuda_names_the_option(tmp_path, capsys):
    with pytest.raises(ValueError, match="precision: fp16 \\(with a GradScaler\\) needs a CUDA device, got cpu"):
        _run(tmp_path, "fp16")
    with pytest.raises(SystemExit):
        main(["--precision", "fp8", "--out", str(tmp_path / "x")])
    assert "--precision: invalid choice: 'fp8'" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 with a GradScaler runs on CUDA")
def test_fp16_on_cuda_scales_and_resumes_its_scaler(tmp_path, autocast_seen):
    first = _run(tmp_path, "fp16", device="cuda")
    assert autocast_seen == [(True, torch.float16, torch.float16)] * 2
    state = torch.load(tmp_path / "fp16" / "checkpoint.pt", weights_only=False)
    assert state["scaler"]["scale"] > 0 and first.history[0]["k_min"] < first.history[0]["k_max"]
    resumed = train(TrainConfig(out=str(tmp_path / "fp16"), resume=True, epochs=2, progress=False))
    assert len(resumed.history) == 2 and all(torch.isfinite(torch.tensor(r["train_loss"])) for r in resumed.history)
