"""SaliencyGuidedTrainer with the real Hugging Face Trainer on the CPU: a tiny ViT from a config on
resized digits, SGT and SMOOT; the index survives the collator, k is logged, saved and restored
on resume, evaluation leaves it alone, and two torchrun processes hold the same k."""
from pathlib import Path

import pytest
import torch
from hf_cases import arguments, digits, tiny_resnet, tiny_vit
from torchrun import run_two_processes

from smoot_ext import GuidedConfig, SaliencyGuidedTraining
from smoot_ext.integrations.transformers import STATE_FILE, SaliencyGuidedTrainer

HERE = Path(__file__).resolve().parent


def _trainer(out, method, data, model=tiny_vit, **kwargs):
    return SaliencyGuidedTrainer(model=model(), args=arguments(out, **kwargs), train_dataset=data,
                                 guided=GuidedConfig(method=method))


@pytest.fixture
def steps(monkeypatch):
    """(the k vector, the mask generator's state) as each training step began."""
    calls = []
    real_loss = SaliencyGuidedTraining.loss

    def recording_loss(self, x, y, index):
        calls.append((None if self.k is None else self.k.clone(), self.generator.get_state()))
        return real_loss(self, x, y, index)

    monkeypatch.setattr(SaliencyGuidedTraining, "loss", recording_loss)
    return calls


@pytest.mark.parametrize("method", ["sgt", "smoot"])
def test_vit_trains_logs_and_resumes_with_its_k(tmp_path, steps, method):
    data = digits()
    whole = _trainer(tmp_path, method, data)
    whole.train()
    sgt = whole.guided
    assert len(steps) == 2 * 3  # every training step ran SGT's loss: the index column reached compute_loss
    if method == "sgt":
        assert sgt.k is None
    else:
        assert (sgt.k != sgt.k_init).any()
        logged = [row for row in whole.state.log_history if "k_max" in row]
        assert [row["epoch"] for row in logged] == [1.0, 2.0]
        assert (logged[-1]["k_min"], logged[-1]["k_median"], logged[-1]["k_max"]) == \
            (sgt.k.min().item(), sgt.k.median().item(), sgt.k.max().item())
    # Evaluation is the model's own loss: no masking, k untouched.
    before = None if sgt.k is None else sgt.k.clone()
    assert "eval_loss" in whole.evaluate(eval_dataset=data)
    assert len(steps) == 6 and (before is None or torch.equal(before, whole.guided.k))

    saved = torch.load(tmp_path / "checkpoint-3" / STATE_FILE)  # after epoch 1 of 2
    resumed = _trainer(tmp_path, method, data)
    resumed.train(resume_from_checkpoint=True if method == "sgt" else str(tmp_path / "checkpoint-3"))
    if method == "smoot":  # epoch 2 again, from the saved k and mask generator
        assert len(steps) == 6 + 3 and not torch.equal(saved["k"], sgt.k)
        k, state = steps[6]
        assert torch.equal(k, saved["k"]) and torch.equal(state, saved["generator"])
        assert torch.equal(k, steps[3][0]) and torch.equal(state, steps[3][1])  # as the unstopped run
    else:  # True: the last checkpoint, after epoch 2: nothing left to train
        assert len(steps) == 6
    assert torch.equal(resumed.guided.generator.get_state(), whole.guided.generator.get_state())


def test_resume_equals_the_unstopped_run_weights_and_k(tmp_path):
    # A ResNet: transformers 5.x saves a ViT's weights under their old names and its resume does
    # not rename them back (huggingface/transformers#43701), so a resumed ViT is not the same model.
    data = digits()
    whole = _trainer(tmp_path, "smoot", data, model=tiny_resnet)
    whole.train()
    resumed = _trainer(tmp_path, "smoot", data, model=tiny_resnet)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert torch.equal(resumed.guided.k, whole.guided.k) and (whole.guided.k != whole.guided.k_init).any()
    assert torch.equal(resumed.guided.generator.get_state(), whole.guided.generator.get_state())
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_clear_errors_for_a_dataset_without_the_index_and_a_foreign_checkpoint(tmp_path):
    plain = [{"pixel_values": torch.zeros(1, 16, 16), "label": 0}] * 4
    with pytest.raises(KeyError, match="expected items with 'pixel_values' and 'index' \\(wrap it in WithIndex\\)"):
        _trainer(tmp_path, "smoot", plain)
    (tmp_path / "checkpoint-1").mkdir()
    with pytest.raises(FileNotFoundError, match="has no smoot_state.pt"):
        _trainer(tmp_path, "smoot", digits(8)).train(resume_from_checkpoint=str(tmp_path / "checkpoint-1"))


WORKER = """
import sys
sys.path.insert(0, {here!r})
from hf_cases import arguments, digits, tiny_resnet, tiny_vit
from torchrun import run_two_processes
from smoot_ext import GuidedConfig
from smoot_ext.integrations.transformers import SaliencyGuidedTrainer

SaliencyGuidedTrainer(model=tiny_vit(), args=arguments(sys.argv[1], per_device_train_batch_size=16),
                      train_dataset=digits(128), guided=GuidedConfig(method="smoot")).train()
"""


def test_torchrun_two_gloo_processes_save_equal_k_after_each_epoch(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(here=str(HERE)))
    out = tmp_path / "run"
    run_two_processes(script, str(out), HF_HUB_OFFLINE="1")
    k_init = 16 * 16 // 2
    for step in (4, 8):  # 128 samples, 2 ranks of batch 16: 4 steps per epoch
        k0, k1 = (torch.load(out / f"checkpoint-{step}" / f"smoot_state_{r}.pt")["k"] for r in (0, 1))
        assert torch.equal(k0, k1)
        assert (k0 != k_init).float().mean() > 0.5  # both ranks' samples moved
