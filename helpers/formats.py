"""The names of doggo's files and splits (docs/formats.md), in one place, importable without
TensorFlow (the app, 01 and 02 use them too)."""

from __future__ import annotations

SCRAPE_MANIFEST = "manifest.csv"  # 01: one row per candidate photo, kept or rejected and why
SPLIT_CSV = "split.csv"  # 02: one row per kept photo and the split it belongs to
SPLIT_JSON = "split.json"  # 02: the class list, fractions and the parameters of the split
SPLITS = ("train", "val", "holdout")  # in this order wherever splits are listed
MODEL_FILE = "model.keras"  # a saved model directory: the Keras model ...
METADATA_FILE = "metadata.json"  # ... and its model card (helpers.model_card)
PER_BREED_CSV = "per_breed_holdout.csv"  # 06, beside the best model: precision/recall/F1 per breed
# What every saved model takes (docs/formats.md); its own scaling is a layer inside the model.
MODEL_INPUT = "RGB float32 in [0, 255], squashed with bilinear antialiased resize"
