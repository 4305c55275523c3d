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
# # 03 · A baseline: the original's small CNN
#
# Before reaching for a big pretrained network, train the simplest model that could work and
# measure it. The original doggo.name did exactly that: a two-layer convolutional network trained
# with Adam, which reached **2.4%** top-1 on 188 breeds (chance is 0.5%). In this notebook you will
# learn:
#
# - how a `tf.data` pipeline feeds photos from the split manifest: decode, resize, cache, shuffle,
#   batch, prefetch;
# - how augmentation works as Keras layers, and the original's brightness bug;
# - how a shared training loop adds checkpoints, early stopping, logs and resume-after-a-kill;
# - why a small CNN trained from scratch barely beats chance on fine-grained breeds.

# %% tags=["parameters"]
data_dir = "data/full"  # split/ from 02_split
models_dir = "models/full"  # the trained model is saved to <models_dir>/simple_cnn
image_size = 299  # pixels, square, as the original
batch_size = 32
epochs = 20
learning_rate = 1e-3
patience = 5  # epochs without a better val_loss before stopping early
cache = False  # keep decoded photos in memory (as uint8) after the first epoch; needs
#   ~width*height*3 bytes per photo: on for small runs, off at full scale (75,000 photos at 299 px)
seed = 42

# %% tags=["injected-parameters"]
# Parameters
data_dir = "data/demo"
models_dir = "runs/demo/models"
seed = 42
cache = True
image_size = 64
batch_size = 32
epochs = 5
patience = 3


# %% [markdown] tags=[]
# We seed every random number generator and make TensorFlow's ops deterministic, so this
# notebook gives the same numbers each time it runs on the same machine. `setup_hardware` picks a
# distribution strategy: all GPUs with mixed precision when there are GPUs (the original used 4),
# the CPU otherwise.

# %% tags=[]
from pathlib import Path

import pandas as pd

from helpers.data import class_weights, make_datasets, split_labels
from helpers.model_dir import save_model_dir
from helpers.models import simple_cnn
from helpers.paths import project_path, split_dir
from helpers.plots import array_grid, training_curves, use_style
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
# ## The input pipeline
#
# `make_datasets` reads `split.csv` and builds one `tf.data.Dataset` per split. Decoding runs in
# parallel, decoded images can be kept in memory after the first epoch (`cache`), and the next batch is
# prepared while the model trains on the current one.

# %% tags=[]
splits = split_dir(data_dir)
datasets, classes, table = make_datasets(splits, image_size, batch_size, seed=seed, cache=cache)
print(f"{len(classes)} breeds; chance is {1 / len(classes):.1%} top-1")
print(table["split"].value_counts().reindex(["train", "val", "holdout"]).to_string())

# %% [markdown] tags=[]
# ## Augmentation, and the original's bug
#
# Training photos get random flips, small rotations, zooms, shifts, and contrast and brightness
# changes, so the model sees a slightly different photo every epoch. Every change is symmetric
# around "no change". The original used Keras 2's `brightness_range=[0.2, 0.8]`, which multiplies
# brightness by 0.2 to 0.8: *every* training photo came out darker while validation photos
# stayed bright, a mismatch between what the model learned from and what it was tested on.
#
# Here is the start of one training batch as the model sees it, augmented.

# %% tags=[]
images, labels = next(iter(datasets["train"]))
names = [classes[int(i)]["name"] for i in labels[:12]]
fig = array_grid(images[:12].numpy(), names, ncols=6)

# %% [markdown] tags=[]
# ## The model
#
# Two convolution + max-pooling blocks, a dense layer and the output layer, as in the original.
# Rescaling to [0, 1] is a layer inside the model, so the saved model takes raw pixels.

# %% tags=[]
with hardware.strategy.scope():
    model = simple_cnn(len(classes), image_size)
    compile_classifier(model, learning_rate, jit_compile=hardware.jit_compile)
print(f"{model.count_params():,} parameters, "
      f"{model.get_layer('dense').count_params():,} of them in the dense layer")

# %% [markdown] tags=[]
# ## Training
#
# Class weights make rare breeds count as much as common ones. `fit` keeps the best model by
# validation loss, stops early when it stops improving, logs every epoch to `log.csv`, and backs
# up after each epoch so an interrupted run resumes where it stopped. The demo takes under a
# minute on a CPU; the full run about an hour on 4 GPUs.

# %% tags=[]
model_dir = project_path(models_dir) / "simple_cnn"
train_labels = split_labels(table, "train")
history = fit(
    model,
    datasets["train"],
    datasets["val"],
    run_dir=model_dir / "training",
    epochs=epochs,
    class_weight=class_weights(train_labels, len(classes)),
    patience=patience,
    verbose=2,
)

# %% [markdown] tags=[]
# The curves show the classic small-CNN story: training loss falls while validation loss stalls.

# %% tags=[]
log = pd.read_csv(model_dir / "training" / "log.csv")
fig = training_curves(log, "Simple CNN")

# %% [markdown] tags=[]
# ## Holdout accuracy
#
# The holdout split was never used for training or for choosing the best epoch, so it measures
# how the model does on photos it has never seen.

# %% tags=[]
metrics = holdout_metrics(model, datasets["holdout"])
print(f"holdout top-1 {metrics['holdout_accuracy']:.1%}, top-5 {metrics['holdout_top5']:.1%} "
      f"(chance {1 / len(classes):.1%}; the original: 2.4% top-1 on 188 breeds)")

# %% [markdown] tags=[]
# Why so weak? Two convolutions see only 5x5-pixel patches, far too small for the ears, muzzles and
# coats that separate breeds, and flattening the feature map feeds millions of weights in the dense
# layer from a few hundred photos per breed: the model memorises the training photos instead of
# learning breeds. Deeper networks (04) and pretrained features (05) fix both.
#
# Finally we save the model with everything needed to use it: the class names, image size and
# preprocessing travel in `metadata.json` beside `model.keras`.

# %% tags=[]
metadata = training_metadata(
    name="simple_cnn",
    classes=classes,
    image_size=image_size,
    split_dir=splits,
    backbone=None,
    weights=None,
    params={"image_size": image_size, "batch_size": batch_size, "epochs": epochs,
            "learning_rate": learning_rate, "patience": patience, "seed": seed},
    metrics=metrics,
    training_seconds=history.training_seconds,
    provenance="notebooks/03_baseline: the original doggo.name small CNN, trained from scratch",
)
saved = save_model_dir(model_dir, model, metadata)
print(f"saved {Path(saved).name}/ with {sorted(p.name for p in Path(saved).iterdir())}")

# %% [markdown] tags=[]
# ## Summary
#
# - A `tf.data` pipeline and Keras augmentation layers feed the model; augmentation keeps
#   training and validation photos alike in brightness, unlike the original.
# - The small CNN lands far from useful accuracy, as it did for the original: it is the baseline
#   every later model must beat.
# - The trained model is a directory: `model.keras` plus `metadata.json`, read by
#   `helpers.predict`, `06_evaluate` and the app.
#
# Next, `04_xception_scratch` trains a deep network, still from random weights.
