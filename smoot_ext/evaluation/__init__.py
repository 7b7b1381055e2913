"""Saliency evaluation: the metrics library and the pipeline that writes a report. It imports
nothing from the trainer but its model loader (``training.checkpoint.load_model``, lazily);
experiments that train and score over seeds are ``smoot_ext.study``.

Where each concept lives (one home each):

- the saliency methods (Captum): ``attribution.METHODS``, ``attribute``;
- the removal fills (the op's, ROAD's): ``imputation.IMPUTATIONS``; the removable units (pixel,
  feature, step, element): ``units.REMOVAL_UNITS``;
- removal curves (MoRF, LeRF, random): ``perturbation.removal_curves``; the per-image outcome
  recorded along them: ``results.METRICS``; the statistics (AUCs, SRG, ERASER's
  comprehensiveness and sufficiency): ``results.STATISTICS``;
- localisation against known regions: ``localization.LOCALISATION``;
- the official SGT code's MoRF accuracy (the SMOOT paper's Table 2 protocol): ``sgt_morf``;
- intervals (bootstrap, t, Welch) and their one ``mean [lo, hi]`` wording: ``statistics``;
- one evaluation's options: ``config.EvalConfig``; scoring: ``runner``; summary: ``summary``;
  files: ``report`` and ``plots`` (render only); checkpoints to report: ``pipeline``.

Only computing an attribution needs captum (``attribute`` says so when it is missing); everything
else imports without it.
"""
from .._extras import require

require("eval", "matplotlib", "tqdm")

from .attribution import ATTRIBUTION_METHODS, METHODS, AttributionConfig, attribute, check_methods  # noqa: E402
from .config import EvalConfig  # noqa: E402
from .imputation import IMPUTATIONS, Imputation, check_fill, noisy_linear_impute, remove  # noqa: E402
from .localization import LOCALISATION, auroc, precision_at_region  # noqa: E402
from .perturbation import (  # noqa: E402
    DEFAULT_LEVELS,
    DEFAULT_PERCENTAGES,
    check_levels,
    check_orders,
    levels_from_percentages,
    removal_curves,
)
from .plots import plot_removal_curves, plot_saliency_grid  # noqa: E402
from .report import PAPER_TABLES, write_report  # noqa: E402
from .results import METRICS, ORDERS, RANDOM, STATISTICS, PerImage, Statistic  # noqa: E402
from .runner import evaluate_checkpoints  # noqa: E402
from .statistics import bootstrap, t_interval, trapezoid_auc, welch_interval  # noqa: E402
from .summary import summarise  # noqa: E402
from .units import REMOVAL_UNITS, unit_scores  # noqa: E402

__all__ = [
    "ATTRIBUTION_METHODS", "DEFAULT_LEVELS", "DEFAULT_PERCENTAGES", "IMPUTATIONS", "LOCALISATION", "METHODS",
    "METRICS", "ORDERS", "PAPER_TABLES", "RANDOM", "STATISTICS", "REMOVAL_UNITS",
    "AttributionConfig", "EvalConfig", "Imputation", "PerImage", "Statistic", "attribute", "auroc", "bootstrap",
    "check_fill", "check_levels", "check_methods", "check_orders", "evaluate_checkpoints", "levels_from_percentages",
    "noisy_linear_impute", "plot_removal_curves", "plot_saliency_grid", "precision_at_region", "remove",
    "removal_curves", "summarise", "t_interval", "trapezoid_auc", "unit_scores", "welch_interval", "write_report",
]

# Renamed so that each name has one meaning (FILLS and UNITS are the op's, smoot_ext.ops).
_RENAMED = {"FILLS": "IMPUTATIONS", "UNITS": "REMOVAL_UNITS"}


def __getattr__(name: str):
    if name in _RENAMED:
        import warnings

        warnings.warn(f"smoot_ext.evaluation.{name} is now {_RENAMED[name]}; the old name goes in the "
                      "next release", DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
