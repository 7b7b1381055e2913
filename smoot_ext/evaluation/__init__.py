"""Saliency evaluation: Captum attributions, MoRF/LeRF/random removal curves with several
imputations, AUCs and SRG with bootstrap intervals, localisation, plots, report, and training
runs compared over seeds.

Where each thing has its one home: the statistics in ``results.STATISTICS``, the saliency
methods in ``attribution.METHODS``, the fills in ``imputation.FILLS``, the units in
``units.UNITS``, the localisation metrics in ``localization.LOCALISATION``. Only computing an
attribution needs captum (``attribute`` says so when it is missing); the comparison over seeds
(``seeds``) and everything else import without it.
"""
from .._extras import require

require("eval", "matplotlib", "tqdm")

from .attribution import ATTRIBUTION_METHODS, METHODS, AttributionConfig, attribute, check_methods  # noqa: E402
from .config import EvalConfig  # noqa: E402
from .imputation import FILLS, IMPUTATIONS, Imputation, check_fill, noisy_linear_impute, remove  # noqa: E402
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
from .units import UNITS, unit_scores  # noqa: E402

__all__ = [
    "ATTRIBUTION_METHODS", "DEFAULT_LEVELS", "DEFAULT_PERCENTAGES", "FILLS", "IMPUTATIONS", "LOCALISATION", "METHODS",
    "METRICS", "ORDERS", "PAPER_TABLES", "RANDOM", "STATISTICS", "UNITS",
    "AttributionConfig", "EvalConfig", "Imputation", "PerImage", "Statistic", "attribute", "auroc", "bootstrap",
    "check_fill", "check_levels", "check_methods", "check_orders", "evaluate_checkpoints", "levels_from_percentages",
    "noisy_linear_impute", "plot_removal_curves", "plot_saliency_grid", "precision_at_region", "remove",
    "removal_curves", "summarise", "t_interval", "trapezoid_auc", "unit_scores", "welch_interval", "write_report",
]
