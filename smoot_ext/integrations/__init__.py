"""smoot_ext inside other trainers: the few lines each one needs.

- :mod:`.indexed`: ``WithIndex``, any map-style dataset with each sample's index added (SMOOT
  keeps one k per training sample); no extra needed;
- :mod:`.lightning`: ``SaliencyGuidedCallback`` for PyTorch Lightning 2.x      [extra: lightning]
- :mod:`.transformers`: ``SaliencyGuidedTrainer``, a Hugging Face ``Trainer``    [extra: hf]

The last two are imported on their own (``from smoot_ext.integrations.lightning import ...``), so
that this package needs neither library.
"""
from .indexed import WithIndex

__all__ = ["WithIndex"]
