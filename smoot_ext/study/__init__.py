"""The study: experiments that train models (``smoot_ext.training``) and score them
(``smoot_ext.evaluation``), over seeds. It sits above both; neither imports it.

Where each concept lives:

- :mod:`.experiment`: ``ReproduceConfig`` and ``reproduce``, the runs behind `smoot-reproduce`
  (train each method and seed, score each final checkpoint, skip what is done);
- :mod:`.records`: the score record, one small JSON file per run and seed (write, read, name);
- :mod:`.comparison`: the comparison over seeds (t intervals, paired and Welch differences),
  ``summary.{json,csv,md}``;
- :mod:`.plots`: its figures (removal curves with bands over seeds, SMOOT's k per epoch).
"""
from .comparison import compare, summarise_runs
from .experiment import ReproduceConfig, reproduce
from .records import read_score_files, run_name, score_path

__all__ = ["ReproduceConfig", "compare", "read_score_files", "reproduce", "run_name", "score_path",
           "summarise_runs"]
