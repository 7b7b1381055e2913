"""SGT and SMOOT in PyTorch Lightning 2.x: one callback beside your LightningModule.

    class Classifier(L.LightningModule):
        def __init__(self, num_samples):
            super().__init__()
            self.net = build_model("cnn", 1, 10, 28)
            self.sgt = SaliencyGuidedTraining(self.net, GuidedConfig(method="smoot"),
                                              num_samples=num_samples, input_shape=(1, 28, 28))

        def training_step(self, batch, batch_idx):
            x, y, index = batch                      # WithIndex(dataset) yields the index
            return self.sgt.loss(x, y, index).loss

    L.Trainer(callbacks=[SaliencyGuidedCallback()]).fit(Classifier(len(ds)), DataLoader(WithIndex(ds)))

``SaliencyGuidedCallback`` (given the ``SaliencyGuidedTraining``, or finding the one the module
holds as an attribute) does what the trainer around the loss must:

- puts the k vector on the module's device when fitting starts;
- calls ``sync_k`` at each training epoch's end (under DDP every rank then holds the same k; run
  before ``ModelCheckpoint``, which Lightning calls last, so checkpoints hold the synced k);
- logs ``k_min``, ``k_median``, ``k_max`` each epoch through the module's logger;
- saves the k vector and the mask generator in Lightning's checkpoints (the callback's state)
  and restores them on ``fit(ckpt_path=...)``. The generator saved is rank 0's: seed the
  ``SaliencyGuidedTraining`` alike on every rank and every rank draws alike.

Mixed precision (``precision="bf16-mixed"``) needs nothing more: the saliency gradient has the
input's dtype, so the masked batch does too, and the k update reads the logits as float32.
Under DDP, Lightning's wrapper runs the whole ``training_step`` as one forward, so the saliency
pass through the bare network inside it starts no gradient reduction.
"""
from __future__ import annotations

from .._extras import require

require("lightning", "lightning")

import lightning.pytorch as pl

from ..training.guided import SaliencyGuidedTraining


class SaliencyGuidedCallback(pl.Callback):
    """k on the module's device, synced each epoch, logged, and kept in checkpoints (see above).

    Args:
        sgt: the ``SaliencyGuidedTraining`` whose loss ``training_step`` returns; None: the one
            found among the LightningModule's attributes.
        log_k: log k min / median / max at each training epoch's end.
    """

    def __init__(self, sgt: SaliencyGuidedTraining | None = None, *, log_k: bool = True):
        if sgt is not None and not isinstance(sgt, SaliencyGuidedTraining):
            raise TypeError(f"sgt: expected a SaliencyGuidedTraining or None, got {type(sgt).__name__}")
        self.sgt, self.log_k = sgt, log_k
        self._pending = None  # a checkpoint's state that arrived before the module was known

    def setup(self, trainer, pl_module, stage):
        if self.sgt is None:
            found = [v for v in vars(pl_module).values() if isinstance(v, SaliencyGuidedTraining)]
            if len(found) != 1:
                raise ValueError(f"sgt: expected the LightningModule to hold exactly one "
                                 f"SaliencyGuidedTraining attribute, found {len(found)}; pass "
                                 f"SaliencyGuidedCallback(sgt=...)")
            self.sgt = found[0]
        if self._pending is not None:
            self.sgt.load_state_dict(self._pending)
            self._pending = None

    def on_fit_start(self, trainer, pl_module):
        self.sgt.to(pl_module.device)

    def on_train_epoch_end(self, trainer, pl_module):
        self.sgt.sync_k()
        if self.log_k and self.sgt.method != "baseline":
            k = self.sgt.k_stats()
            # Equal on every rank after sync_k: the reduction changes nothing but keeps Lightning's
            # epoch-level logging consistent across ranks.
            pl_module.log_dict({f"k_{s}": k[s] for s in ("min", "median", "max")},
                               on_step=False, on_epoch=True, sync_dist=True)

    def state_dict(self) -> dict:
        return {} if self.sgt is None else self.sgt.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if self.sgt is None:
            self._pending = state_dict
        else:
            self.sgt.load_state_dict(state_dict)
