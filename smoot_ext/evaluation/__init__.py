"""Saliency evaluation: Captum attributions, MoRF/LeRF/random removal curves with several
imputations, AUCs and SRG with bootstrap intervals, localisation, plots, report."""
from .._extras import require

require("eval", "captum", "matplotlib", "tqdm")

from .attribution import ATTRIBUTION_METHODS, AttributionConfig, attribute, check_methods, unit_scores
from .imputation import IMPUTATIONS, Imputation, check_fill, noisy_linear_impute, remove
from .localization import auroc, precision_at_region
from .perturbation import DEFAULT_LEVELS, ORDERS, check_levels, check_orders, removal_curves
from .plots import plot_removal_curves, plot_saliency_grid
from .report import PAPER_TABLES, write_report
from .runner import RANDOM, EvalConfig, PerImage, evaluate_checkpoints
from .statistics import bootstrap, t_interval, trapezoid_auc, welch_interval
from .summary import summarise

DEFAULT_PERCENTAGES = tuple(round(100 * v) for v in DEFAULT_LEVELS)  # the levels in percent (older options)

__all__ = [
    "DEFAULT_LEVELS", "DEFAULT_PERCENTAGES", "IMPUTATIONS", "ATTRIBUTION_METHODS", "ORDERS", "PAPER_TABLES", "RANDOM",
    "AttributionConfig", "EvalConfig", "Imputation", "PerImage", "attribute", "auroc", "bootstrap",
    "check_fill", "check_levels", "check_methods", "check_orders", "evaluate_checkpoints", "noisy_linear_impute",
    "plot_removal_curves", "plot_saliency_grid", "precision_at_region", "remove", "removal_curves", "summarise",
    "t_interval", "trapezoid_auc", "unit_scores", "welch_interval", "write_report",
]
