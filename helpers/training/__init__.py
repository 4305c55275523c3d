"""Training (03-05): tf.data pipelines, hardware, layer-wise Adam, fit with resume, precise
BatchNorm, the two-stage transfer recipe and the model card saved next to a model."""

from helpers.training.batch_norm import (
    PreciseBatchNorm,
    batch_norm_layers,
    batch_norm_statistics,
    set_batch_norm_statistics,
)
from helpers.training.data import (
    augmentation,
    class_weights,
    make_dataset,
    make_datasets,
    read_split,
    split_labels,
)
from helpers.training.hardware import seed_everything, setup_hardware
from helpers.training.loop import fit
from helpers.training.metadata import holdout_metrics, model_card
from helpers.training.optimizer import LayerwiseAdam, compile_classifier
from helpers.training.transfer import backbone_features, features_dataset, set_backbone_trainable

__all__ = [
    "LayerwiseAdam",
    "PreciseBatchNorm",
    "augmentation",
    "backbone_features",
    "batch_norm_layers",
    "batch_norm_statistics",
    "class_weights",
    "compile_classifier",
    "features_dataset",
    "fit",
    "holdout_metrics",
    "make_dataset",
    "make_datasets",
    "model_card",
    "read_split",
    "seed_everything",
    "set_backbone_trainable",
    "set_batch_norm_statistics",
    "setup_hardware",
    "split_labels",
]
