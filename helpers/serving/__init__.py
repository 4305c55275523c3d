"""Serving a model (the app, `python -m helpers.serving`, and 03-06 saving and loading
model directories): everything app/ imports from helpers besides the shared top-level modules."""

from helpers.model_card import ModelCard, read_card
from helpers.serving.default_model import default_model_dir
from helpers.serving.explain import compiled_grad_cam, grad_cam, overlay
from helpers.serving.model_dir import save_model_dir
from helpers.serving.predict import Predictor, image_to_array

__all__ = [
    "ModelCard",
    "Predictor",
    "compiled_grad_cam",
    "default_model_dir",
    "grad_cam",
    "image_to_array",
    "overlay",
    "read_card",
    "save_model_dir",
]
