"""Evaluating the models (06_evaluate): predictions, metrics, confusion, robustness, comparison
and calibration."""

from helpers.evaluation.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    probs_to_logits,
    reliability_diagram,
    save_temperature,
)
from helpers.evaluation.comparison import (
    comparison_bar_chart,
    comparison_table,
    model_label,
    model_role,
    per_breed_chart,
)
from helpers.evaluation.confusion import (
    confident_mistakes,
    confusion_counts,
    confusion_matrix_normalized,
    gallery,
    most_confused_pairs,
    plot_confusion,
    similarity_order,
    uncertain_correct,
)
from helpers.evaluation.metrics import (
    bootstrap_ci,
    macro_f1,
    mcnemar,
    paired_comparison,
    per_breed_report,
    summary_row,
    top_k_accuracy,
    topk_hits,
)
from helpers.evaluation.predictions import class_mapping, predict_split, restrict_probabilities
from helpers.evaluation.robustness import corruptions, robustness_table

__all__ = [
    "apply_temperature",
    "bootstrap_ci",
    "class_mapping",
    "comparison_bar_chart",
    "comparison_table",
    "confident_mistakes",
    "confusion_counts",
    "confusion_matrix_normalized",
    "corruptions",
    "expected_calibration_error",
    "fit_temperature",
    "gallery",
    "macro_f1",
    "mcnemar",
    "model_label",
    "model_role",
    "most_confused_pairs",
    "paired_comparison",
    "per_breed_chart",
    "per_breed_report",
    "plot_confusion",
    "predict_split",
    "probs_to_logits",
    "reliability_diagram",
    "restrict_probabilities",
    "robustness_table",
    "save_temperature",
    "similarity_order",
    "summary_row",
    "top_k_accuracy",
    "topk_hits",
    "uncertain_correct",
]
