"""Saliency evaluation: Captum attributions, accuracy-drop curves, localisation, plots, report."""
from .accuracy_drop import DEFAULT_PERCENTAGES, FILLS, auc, check_percentages, correct_after_removal
from .attribution import METHODS, AttributionConfig, attribute, check_methods, unit_scores
from .localization import auroc, precision_at_region
from .plots import plot_curves, plot_saliency_grid
from .report import PAPER_TABLES, write_report
from .runner import RANDOM, EvalConfig, evaluate

__all__ = [
    "DEFAULT_PERCENTAGES", "FILLS", "METHODS", "PAPER_TABLES", "RANDOM", "AttributionConfig", "EvalConfig",
    "attribute", "auc", "auroc", "check_methods", "check_percentages", "correct_after_removal", "evaluate",
    "plot_curves", "plot_saliency_grid", "precision_at_region", "unit_scores", "write_report",
]
