"""What the Lightning tests share (also imported by their DDP worker): digits with an index, a
LightningModule around SaliencyGuidedTraining, and a callback that records k after each epoch."""
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from smoot_ext import GuidedConfig, SaliencyGuidedTraining
from smoot_ext.data import load_dataset
from smoot_ext.integrations import WithIndex


def digits(n: int = 96) -> WithIndex:
    """n scikit-learn digits as a plain (x, y) dataset, wrapped to yield the index."""
    b = load_dataset("digits", subset=n)
    return WithIndex(TensorDataset(b.train.images, b.train.labels))


def seeded_loader(dataset, batch_size: int = 32) -> DataLoader:
    """An order fixed by (seed, epoch): Lightning calls set_epoch on the sampler each epoch."""
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


class Guided(pl.LightningModule):
    """``net`` trained by ``SaliencyGuidedTraining.loss`` with Adadelta; records each step's loss
    and sample indices."""

    def __init__(self, net: torch.nn.Module, num_samples: int, input_shape, method: str = "smoot"):
        super().__init__()
        self.net = net
        self.sgt = SaliencyGuidedTraining(net, GuidedConfig(method=method), num_samples=num_samples,
                                          input_shape=input_shape, seed=0)
        self.losses, self.indices = [], []

    def training_step(self, batch, batch_idx):
        x, y, index = batch
        out = self.sgt.loss(x, y, index)
        self.losses.append(out.loss.detach().float())
        self.indices.append(index.cpu())
        return out.loss

    def configure_optimizers(self):
        return torch.optim.Adadelta(self.parameters(), lr=1.0)


class RecordK(pl.Callback):
    """k after each training epoch (listed after SaliencyGuidedCallback: after its sync_k)."""

    def __init__(self):
        self.k = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.k.append(pl_module.sgt.k.cpu().clone())


def trainer(max_epochs: int, callbacks, **kwargs) -> pl.Trainer:
    """A quiet CPU Trainer (no progress bar, summary or checkpoints unless passed)."""
    options = dict(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False,
                   enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    return pl.Trainer(callbacks=callbacks, **{**options, **kwargs})
