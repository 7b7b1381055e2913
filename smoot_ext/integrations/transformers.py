"""SGT and SMOOT in the Hugging Face Trainer, for image classifiers that take ``pixel_values``.

    trainer = SaliencyGuidedTrainer(model=ViTForImageClassification(config), args=TrainingArguments(...),
                                    train_dataset=WithIndex(train_set), guided=GuidedConfig(method="smoot"))
    trainer.train()                              # or train(resume_from_checkpoint=True)

``train_dataset`` yields dicts with ``pixel_values``, ``label`` (or ``labels``) and ``index``
(:class:`.indexed.WithIndex` adds it to any dataset). The Trainer:

- keeps the ``index`` column through its data collator (``remove_unused_columns`` drops only what
  neither the model's forward nor this trainer reads);
- trains on ``SaliencyGuidedTraining.loss`` of the model's logits (evaluation keeps the model's
  own loss and leaves k alone); the loss is a batch mean, so gradient accumulation divides it;
- calls ``sync_k`` at each epoch's end and before each checkpoint (under torchrun every rank then
  holds the same k) and logs ``k_min``, ``k_median``, ``k_max`` each epoch;
- writes the k vector and the mask generator into each checkpoint folder (``STATE_FILE``, one
  per process under torchrun, as the Trainer's own RNG states) and reads them back in
  ``train(resume_from_checkpoint=...)``.

``trainer.guided`` is the ``SaliencyGuidedTraining`` (k, ``k_stats()``). Text models come with
sequences.
"""
from __future__ import annotations

import contextlib
import os

from .._extras import require

require("hf", "transformers", "accelerate")

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from ..training.checkpoint import save_checkpoint
from ..training.guided import GuidedConfig, SaliencyGuidedTraining

STATE_FILE = "smoot_state.pt"  # smoot_state_<rank>.pt for each process under torchrun


def state_file(folder: str, rank: int, world_size: int) -> str:
    name = STATE_FILE if world_size == 1 else STATE_FILE.replace(".pt", f"_{rank}.pt")
    return os.path.join(folder, name)


@contextlib.contextmanager
def _returning_logits(model: torch.nn.Module):
    """Inside the block ``model(x)`` returns the logits tensor, not the output object:
    ``SaliencyGuidedTraining`` reads logits, and DDP around ``model`` still sees its forward."""
    handle = model.register_forward_hook(lambda module, args, output: output.logits)
    try:
        yield
    finally:
        handle.remove()


class SaliencyGuidedTrainer(Trainer):
    """A ``Trainer`` whose training loss is SGT's or SMOOT's (see the module docstring).

    Args (beyond the Trainer's):
        guided: a :class:`GuidedConfig` (method, lambda, k fractions, ...).
        input_shape: one sample's shape; None: that of the first training sample's input.
        input_key, index_key: the names of the input and index columns.
        mask_seed: seeds the random fill's generator; None: ``args.seed`` (plus the rank).
    """

    def __init__(self, *args, guided: GuidedConfig, input_shape=None, input_key: str = "pixel_values",
                 index_key: str = "index", mask_seed: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(guided, GuidedConfig):
            raise TypeError(f"guided: expected a GuidedConfig, got {type(guided).__name__}")
        if self.train_dataset is None:
            raise ValueError("train_dataset: expected the training set (SMOOT keeps one k per "
                             "sample), got None")
        if input_shape is None:
            first = self.train_dataset[0]
            if input_key not in first or index_key not in first:
                raise KeyError(f"train_dataset: expected items with {input_key!r} and {index_key!r} "
                               f"(wrap it in WithIndex), got keys {sorted(first)}")
            input_shape = tuple(first[input_key].shape)
        self.input_key, self.index_key = input_key, index_key
        seed = self.args.seed if mask_seed is None else mask_seed
        self._guided_args = dict(num_samples=len(self.train_dataset), input_shape=tuple(input_shape),
                                 device=self.args.device, seed=seed + self.args.process_index)
        self.guided = SaliencyGuidedTraining(self.model, guided, **self._guided_args)
        self.loss_is_scaled_for_ga = False  # a batch mean: the Trainer divides it
        self.add_callback(_GuidedState(self))

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if self.index_key not in self._signature_columns:
            self._signature_columns.append(self.index_key)

    def _guided_for(self, model: torch.nn.Module) -> SaliencyGuidedTraining:
        """The k state bound to the model the Trainer steps (DDP-wrapped under torchrun)."""
        if self.guided.model is not model:
            bound = SaliencyGuidedTraining(model, self.guided.config, **self._guided_args)
            bound.load_state_dict(self.guided.state_dict())
            self.guided = bound
        return self.guided

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        index = inputs.pop(self.index_key, None)
        if not model.training:  # evaluation: the model's own loss; k is left alone
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if index is None or "labels" not in inputs:
            got = sorted(inputs) + ([self.index_key] if index is not None else [])
            raise KeyError(f"inputs: expected {self.index_key!r} and 'labels' in the training batch "
                           f"(wrap the dataset in WithIndex), got {got}")
        sgt = self._guided_for(model)
        with _returning_logits(self.accelerator.unwrap_model(model)):
            out = sgt.loss(inputs[self.input_key], inputs["labels"], index)
        return (out.loss, {"logits": out.logits}) if return_outputs else out.loss

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"resume_from_checkpoint: no checkpoint found in {self.args.output_dir}")
        if resume_from_checkpoint:
            path = state_file(resume_from_checkpoint, self.args.process_index, self.args.world_size)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"resume_from_checkpoint: {resume_from_checkpoint!r} has no "
                                        f"{os.path.basename(path)} (not written by SaliencyGuidedTrainer?)")
            self.guided.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return super().train(resume_from_checkpoint=resume_from_checkpoint or None, **kwargs)


class _GuidedState(TrainerCallback):
    """sync_k and k logging at each epoch's end; the k state into each checkpoint folder."""

    def __init__(self, trainer: SaliencyGuidedTrainer):
        self.trainer = trainer

    def on_epoch_end(self, args, state, control, **kwargs):
        sgt = self.trainer.guided
        sgt.sync_k()
        if sgt.method != "baseline":
            k = sgt.k_stats()
            self.trainer.log({f"k_{s}": k[s] for s in ("min", "median", "max")})

    def on_save(self, args, state, control, **kwargs):
        sgt = self.trainer.guided
        sgt.sync_k()  # a mid-epoch checkpoint holds every rank's updates too
        folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        save_checkpoint(state_file(folder, args.process_index, args.world_size), sgt.state_dict())
