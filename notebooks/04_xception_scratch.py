# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # 04 · Xception from scratch
#
# The small CNN of `03_baseline` was too shallow to tell breeds apart. Xception (Chollet, 2017)
# is a deep network of depthwise-separable convolutions: 36 convolutional layers, residual
# connections, and a receptive field that covers the whole photo. The original doggo.name
# trained it from random weights and reached **64.1%** top-1 on 188 breeds. In this notebook you
# will learn:
#
# - how a deep architecture from `keras.applications` becomes a breed classifier with a new head;
# - what depth buys over the baseline, and what it costs in time;
# - why training from random weights still needs far more photos than we have.

# %% tags=["parameters"]
data_dir = "data/full"  # split/ from 02_split
models_dir = "models/full"  # the trained model is saved to <models_dir>/xception_scratch
image_size = 299  # pixels, square, as the original (Xception needs at least 71)
batch_size = 32
epochs = 20
learning_rate = 1e-3
dropout = 0.3
patience = 5
cache = False  # keep decoded photos in memory (as uint8) after the first epoch; needs
#   ~width*height*3 bytes per photo: on for small runs, off at full scale (75,000 photos at 299 px)
seed = 42

# %% tags=["injected-parameters"]
# Parameters
data_dir = "data/demo"
models_dir = "runs/demo/models"
seed = 42
cache = True
image_size = 96
batch_size = 32
epochs = 2
patience = 2


# %% [markdown] tags=[]
# The same set-up as `03_baseline`: seeds, deterministic ops, a strategy over all GPUs.

# %% tags=[]
from pathlib import Path

import pandas as pd

from helpers.data import class_weights, make_datasets, split_labels
from helpers.model_dir import save_model_dir
from helpers.models import xception_scratch
from helpers.paths import project_path, split_dir
from helpers.plots import training_curves, use_style
from helpers.train import (
    compile_classifier,
    fit,
    holdout_metrics,
    seed_everything,
    setup_hardware,
    training_metadata,
)

use_style()
seed_everything(seed)
hardware = setup_hardware()
print(f"{hardware.replicas} replica(s), {hardware.gpus} GPU(s), "
      f"mixed precision {hardware.mixed_precision}, XLA {hardware.jit_compile}")

# %% [markdown] tags=[]
# The input pipeline is the one from `03_baseline`, at Xception's resolution.

# %% tags=[]
splits = split_dir(data_dir)
datasets, classes, table = make_datasets(splits, image_size, batch_size, seed=seed, cache=cache)
print(f"{len(classes)} breeds, {image_size} px; chance is {1 / len(classes):.1%} top-1")

# %% [markdown] tags=[]
# ## The model
#
# `keras.applications.Xception(weights=None, include_top=False)` gives the convolutional body
# with random weights; we add global average pooling, dropout and a dense output layer.
# Xception's preprocessing (pixels to [-1, 1]) is a layer inside the model.

# %% tags=[]
with hardware.strategy.scope():
    model = xception_scratch(len(classes), image_size, dropout=dropout)
    compile_classifier(model, learning_rate, jit_compile=hardware.jit_compile)
backbone = model.get_layer("backbone")
print(f"{model.count_params():,} parameters in {len(backbone.layers)} layers "
      f"(the simple CNN of 03 had ~1.6 million, most in one dense layer)")

# %% [markdown] tags=[]
# ## Training
#
# Each training step costs about 30 times the simple CNN's. The demo (a few epochs at a small
# resolution) takes two to three minutes on a CPU; the full run (20 epochs at 299 px on 75,000
# photos) takes hours even on 4 GPUs, and resumes where it stopped if interrupted.

# %% tags=[]
model_dir = project_path(models_dir) / "xception_scratch"
history = fit(
    model,
    datasets["train"],
    datasets["val"],
    run_dir=model_dir / "training",
    epochs=epochs,
    class_weight=class_weights(split_labels(table, "train"), len(classes)),
    patience=patience,
    verbose=2,
)

# %% [markdown] tags=[]
# With random weights, every filter starts as noise: early epochs mostly learn colours and
# textures, and it takes many epochs and many photos before the network finds ears and muzzles.

# %% tags=[]
log = pd.read_csv(model_dir / "training" / "log.csv")
fig = training_curves(log, "Xception from scratch")

# %% [markdown] tags=[]
# ## Holdout accuracy

# %% tags=[]
metrics = holdout_metrics(model, datasets["holdout"])
print(f"holdout top-1 {metrics['holdout_accuracy']:.1%}, top-5 {metrics['holdout_top5']:.1%} "
      f"(chance {1 / len(classes):.1%}; the original: 64.1% top-1 on 188 breeds)")

# %% [markdown] tags=[]
# Depth helps a lot when there are enough photos and epochs; at demo scale (a few hundred
# photos, a few epochs, small images) Xception from scratch may not even beat the small CNN yet.
# Learning all of its 20 million weights from a few hundred photos per breed is the real
# limit: `05_xception_transfer` starts from weights that already know what dogs look like.

# %% tags=[]
metadata = training_metadata(
    name="xception_scratch",
    classes=classes,
    image_size=image_size,
    split_dir=splits,
    backbone="xception",
    weights=None,
    params={"image_size": image_size, "batch_size": batch_size, "epochs": epochs,
            "learning_rate": learning_rate, "dropout": dropout, "patience": patience,
            "seed": seed},
    metrics=metrics,
    training_seconds=history.training_seconds,
    provenance="notebooks/04_xception_scratch: Xception with random weights, trained from scratch",
)
saved = save_model_dir(model_dir, model, metadata)
print(f"saved {Path(saved).name}/ with {sorted(p.name for p in Path(saved).iterdir())}")

# %% [markdown] tags=[]
# ## Summary
#
# - Xception is the same kind of Keras model as the baseline: a body from `keras.applications`,
#   a new head, preprocessing inside, trained by the same `fit`.
# - Depth is what took the original from 2.4% to 64.1%; the price is compute, and without
#   pretrained weights, a hunger for photos.
#
# Next, `05_xception_transfer` starts from ImageNet weights instead of random ones.
