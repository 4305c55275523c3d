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
#     display_name: doggo (reproducible)
#     language: python
#     name: doggo
# ---

# %% [markdown] tags=[]
# # 04 · Xception from scratch
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/doggo-course/doggo/blob/main/notebooks/04_xception_scratch.ipynb) [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/doggo-course/doggo/blob/main/notebooks/04_xception_scratch.ipynb)
#
# The small CNN of `03_baseline` was too shallow to tell breeds apart. Xception (Chollet, 2017)
# is a deep network of **depthwise-separable convolutions**: 36 convolutional layers in 14
# blocks, residual connections, and a **BatchNormalization** layer after almost every
# convolution. The original doggo.name trained it from random weights and reached **64.1%**
# top-1 on 188 breeds, with about 75,000 photos and 20 epochs on 4 GPUs. In this notebook you
# will learn:
#
# - how a deep architecture from `keras.applications` becomes a breed classifier with a new head;
# - what a depthwise-separable convolution is and why it is cheap;
# - how BatchNorm behaves differently in training and in inference, and how that can make a
#   model that is learning look as if it predicts one breed for every photo (and how to fix it);
# - what depth costs in time, and why training from random weights needs far more photos than we
#   have.

# %% tags=["parameters"]
data_dir = "data/demo"  # split/ from 02_split (full scale: "data/full")
models_dir = "runs/demo/models"  # the model is saved to <models_dir>/xception_scratch
image_size = 80  # pixels, square (full scale: 299, as the original; Xception needs at least 71)
batch_size = 32  # photos per step on each replica (GPU); on N GPUs a step trains on N batches
#   and learning rates are multiplied by N (linear scaling rule)
epochs = 4  # (full scale: 20)
learning_rate = 1e-3
dropout = 0.3
patience = 4  # epochs without a better val_loss before stopping early (full scale: 5)
bn_batches = 8  # batches used to recompute BatchNorm statistics before each validation; 0 keeps
#   Keras's moving averages, as the original did
cache = True  # keep decoded photos in memory (as uint8) after the first epoch: on for small runs,
#   off at full scale (75,000 photos at 299 px)
pipeline = "default"  # "fast" at full scale: each photo decoded once into shards of pixels in
#   <data_dir>/cache/, augmented by stateless ops in parallel (helpers.training.data.fast_dataset)
seed = 42

# %% [markdown] tags=[]
# The same set-up as `03_baseline`: seeds, deterministic ops, a strategy over all GPUs.

# %% tags=[]
import math
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from helpers import original
from helpers.models import xception_scratch
from helpers.paths import project_path, split_dir
from helpers.pipeline import current_parameters
from helpers.plots import bench_log, prediction_histogram, training_curves, use_style
from helpers.serving import read_card, save_model_dir
from helpers.training import (
    PreciseBatchNorm,
    batch_norm_layers,
    batch_norm_statistics,
    class_weights,
    compile_classifier,
    fit,
    holdout_metrics,
    make_dataset,
    make_datasets,
    model_card,
    seed_everything,
    set_batch_norm_statistics,
    setup_hardware,
    split_labels,
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
datasets, classes, table = make_datasets(splits, image_size, batch_size, seed=seed, cache=cache,
                                         pipeline=pipeline)
names = [c["name"] for c in classes]
n_train = int((table["split"] == "train").sum())
steps_per_epoch = math.ceil(n_train / batch_size)
print(f"{len(classes)} breeds, {image_size} px; chance is {1 / len(classes):.1%} top-1; "
      f"{n_train} training photos = {steps_per_epoch} steps per epoch")

# %% [markdown] tags=[]
# ## Depthwise-separable convolutions
#
# An ordinary 3x3 convolution mixes space and channels at once: every output channel has a 3x3
# filter over *every* input channel. A depthwise-separable one does it in two cheap steps: a
# 3x3 filter per input channel (depthwise), then a 1x1 convolution that mixes channels
# (pointwise). Here is the difference for one of Xception's middle layers, 728 channels in and
# out.

# %% tags=[]
probe = keras.Input((19, 19, 728))
ordinary = keras.layers.Conv2D(728, 3, padding="same", use_bias=False)
separable = keras.layers.SeparableConv2D(728, 3, padding="same", use_bias=False)
ordinary(probe), separable(probe)
ratio = ordinary.count_params() / separable.count_params()
print(f"3x3 convolution: {ordinary.count_params():,} weights; depthwise-separable: "
      f"{separable.count_params():,} ({ratio:.1f}x fewer)")

# %% [markdown] tags=[]
# ## The model
#
# `keras.applications.Xception(weights=None, include_top=False)` gives the convolutional body
# with random weights; we add global average pooling, dropout and a dense output layer whose 10
# numbers per photo are the **logits**: scores that softmax turns into probabilities.
# Xception's preprocessing (pixels to [-1, 1]) is a layer inside the model.

# %% tags=[]
with hardware.strategy.scope():
    model = xception_scratch(len(classes), image_size, dropout=dropout)
    compile_classifier(model, learning_rate, jit_compile=hardware.jit_compile)
backbone = model.get_layer("backbone")
print(f"{model.count_params():,} parameters in {len(backbone.layers)} layers, "
      f"{len(batch_norm_layers(model))} of them BatchNormalization "
      "(the simple CNN of 03 had ~1.6 million parameters, most in one dense layer)")

# %% [markdown] tags=[]
# ## BatchNorm in training and in inference
#
# During training, a BatchNorm layer normalizes each channel with the mean and variance of the
# **current batch**, and keeps a moving average of them for later: `moving = 0.99 * moving +
# 0.01 * batch`. At inference (validation, holdout, the app) it uses the **moving averages**,
# which start at mean 0 and variance 1. After `n` training steps a share `0.99**n` of those
# starting values is still in the average. The original trained for thousands of steps, so the
# start was long forgotten; our demo takes only a few dozen.

# %% tags=[]
for n in (steps_per_epoch, steps_per_epoch * epochs, 1640 * 20):
    print(f"after {n:>6,} steps, {0.99 ** n:6.1%} of the starting variance 1 is left")

# %% [markdown] tags=[]
# What the variance *should* be depends on the layer: the first layer's convolution outputs of
# a random network have a variance far below 1. If a layer divides by the square root of a
# too-large variance, its output shrinks, the next layer shrinks it again, and after 40 layers
# almost nothing of the photo is left: every photo gets the same features and the same answer.
#
# So before each validation we **recompute** every BatchNorm layer's statistics from a few
# training batches with the current weights ("precise BatchNorm", Wu & Johnson 2021). This is
# the core of `helpers.training.batch_norm.recompute_batch_norm_statistics`:
#
# ```python
# for k, (images, _) in enumerate(dataset.take(batches)):
#     for bn in batch_norm_layers(model):
#         bn.momentum = k / (k + 1)     # batch k gets weight 1/(k+1): a running mean
#     model(images, training=True)      # training mode: normalize by batch, update the averages
# ```
#
# The `PreciseBatchNorm` callback does this before each validation and puts Keras's own moving
# averages back before the next epoch, so training itself is exactly what it would have been;
# we keep Keras's averages to compare with.

# %% tags=[]
bn_photos = make_dataset(splits, "train", image_size, batch_size, shuffle=True, seed=seed,
                         cache=False, table=table,
                         pipeline=pipeline)  # un-augmented training photos, breeds mixed
precise = PreciseBatchNorm(bn_photos, bn_batches)

# %% [markdown] tags=[]
# ## Training
#
# Each training step costs about 20 times the simple CNN's. The demo takes about five minutes on
# a 2-core CPU (about a minute per epoch); the full run (20 epochs at 299 px over about 52,000
# training photos) takes hours even on 4 GPUs, and resumes where it stopped if interrupted.

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
    callbacks=[precise] if bn_batches else [],
    verbose=2,
)

# %% [markdown] tags=[]
# The validation numbers above were measured with the recomputed statistics. The dashed lines
# mark chance: a model that guesses uniformly has accuracy 1/K and loss ln K. The faint dotted
# curves are the bench run's Xception on all 120 breeds (2 epochs at 96 px; chance 1/120, ln 120
# = 4.79), also with recomputed statistics.

# %% tags=[]
log = pd.read_csv(model_dir / "training" / "log.csv")
fig = training_curves(log, "Xception from scratch", n_classes=len(classes),
                      reference=bench_log("xception_scratch"), reference_label="bench, 120 breeds:")
best = log.loc[log["val_loss"].idxmin()]
print(f"best epoch {int(best['epoch']) + 1}: val_loss {best['val_loss']:.3f} "
      f"(ln K = {math.log(len(classes)):.3f}), val accuracy {best['val_accuracy']:.1%}")

# %% [markdown] tags=[]
# ## The collapse, made visible
#
# Now the comparison: the same trained weights, validated once with Keras's moving averages (what
# the original's `fit` would have used) and once with the recomputed statistics. The histogram
# counts how many validation photos are predicted as each breed; a healthy model spreads its
# answers over the breeds, about as many as there are photos of each.

# %% tags=[]
val_labels = split_labels(table, "val")
recomputed = batch_norm_statistics(model)
set_batch_norm_statistics(model, precise.keras_statistics[int(best["epoch"])])
keras_pred = np.argmax(model.predict(datasets["val"], verbose=0), axis=1)
keras_eval = model.evaluate(datasets["val"], return_dict=True, verbose=0)
set_batch_norm_statistics(model, recomputed)
precise_pred = np.argmax(model.predict(datasets["val"], verbose=0), axis=1)
fig = prediction_histogram(keras_pred, names, "Validation answers with Keras's moving averages")
fig = prediction_histogram(precise_pred, names, "Validation answers with recomputed statistics")
print(f"Keras's moving averages: {len(set(keras_pred))} distinct breeds predicted for "
      f"{len(val_labels)} photos, accuracy {np.mean(keras_pred == val_labels):.1%}, "
      f"val_loss {keras_eval['loss']:.3f}")
print(f"recomputed statistics:   {len(set(precise_pred))} distinct breeds, "
      f"accuracy {np.mean(precise_pred == val_labels):.1%}")

# %% [markdown] tags=[]
# Where does it go wrong? Compare the variance each BatchNorm layer divides by, Keras's moving
# average against the one recomputed from real batches, for the first layers and the last.

# %% tags=[]
keras_stats = precise.keras_statistics[int(best["epoch"])]
rows = [(bn.name, float(k[1].mean()), float(r[1].mean()))
        for bn, k, r in zip(batch_norm_layers(model), keras_stats, recomputed, strict=True)]
variances = pd.DataFrame(rows, columns=["layer", "Keras moving variance", "recomputed variance"])
print(pd.concat([variances.head(4), variances.tail(2)]).round(4).to_string(index=False))

# %% [markdown] tags=[]
# The check below turns the lesson into a test that fails the run: the model learned (its best
# validation loss is below ln K, the loss of a uniform guess) and the recomputed statistics do
# better than Keras's moving averages on the same weights.

# %% tags=[]
ln_k = math.log(len(classes))
distinct = len(set(keras_pred))
if distinct <= 2:
    verdict = f"collapses: {distinct} breed(s) for all {len(val_labels)} photos"
else:
    verdict = f"answers with {distinct} of the {len(classes)} breeds"
print(f"With Keras's moving averages the model {verdict}, loss {keras_eval['loss']:.3f} against "
      f"ln K = {ln_k:.3f} for a uniform guess. Recomputed: {len(set(precise_pred))} breeds, "
      f"loss {best['val_loss']:.3f}.")
assert best["val_loss"] < ln_k - 0.05, "Xception did not learn: its val_loss is not below ln K"
assert best["val_loss"] < keras_eval["loss"], "recomputed statistics did not beat Keras's"

# %% [markdown] tags=[]
# ## Holdout accuracy
#
# The model now holds the recomputed statistics; the saved model keeps them.

# %% tags=[]
metrics = holdout_metrics(model, datasets["holdout"])
print(f"holdout top-1 {metrics['holdout_accuracy']:.1%}, top-5 {metrics['holdout_top5']:.1%} "
      f"(chance {1 / len(classes):.1%} and {5 / len(classes):.0%}; "
      f"{original.top1_text('xception_scratch')})")
baseline_dir = project_path(models_dir) / "simple_cnn"
if baseline_dir.is_dir():
    baseline = read_card(baseline_dir).metrics["holdout_accuracy"]
    print(f"the simple CNN of 03 on the same photos: {baseline:.1%} top-1")

# %% [markdown] tags=[]
# Top-5 counts a photo as right when the true breed is among the model's five highest scores.
# At demo scale Xception from scratch is above chance but far from useful, and no better than
# the small CNN (compare the two lines above; `06_evaluate` tests the difference on the same
# photos): 20 million weights cannot be learned from a few hundred photos per breed in a few
# epochs. The original's 64.1% came from about 300 times as many training steps, at almost four
# times the resolution. That is
# the real limit, and `05_xception_transfer` sidesteps it: it starts from weights that already
# know what dogs look like.
#
# Finally the model is saved with its metadata, as in `03`.

# %% tags=[]
card = model_card(
    name="xception_scratch",
    classes=classes,
    image_size=image_size,
    split_dir=splits,
    backbone="xception",
    params=current_parameters("04_xception_scratch", globals()),
    metrics=metrics,
    training_seconds=history.training_seconds,
    provenance="notebooks/04_xception_scratch: Xception with random weights, trained from "
    "scratch, BatchNorm statistics recomputed before each validation",
)
saved = save_model_dir(model_dir, model, card)
print(f"saved {Path(saved).name}/ with {sorted(p.name for p in Path(saved).iterdir())}")

# %% [markdown] tags=[]
# ## Summary
#
# - Xception is the same kind of Keras model as the baseline: a body from `keras.applications`,
#   a new head, preprocessing inside, trained by the same `fit`.
# - Depthwise-separable convolutions make a deep network affordable: about 9 times fewer
#   weights than ordinary convolutions of the same shape.
# - BatchNorm uses batch statistics in training and moving averages in inference. After a short
#   run those averages still remember their start, and the error compounds over 40 layers until
#   every photo gets the same answer: a model that learns in training and collapses in
#   validation. Recomputing the statistics for the final weights fixes it.
# - From random weights, depth needs far more photos and steps than a CPU demo has; the
#   original's 64.1% took 20 epochs over about 52,000 training photos.

# %% [markdown] tags=[]
# ## Questionnaire
#
# 1. How does a depthwise-separable convolution split the work of an ordinary one, and why does
#    it need about 9 times fewer weights here?
# 2. What does a BatchNorm layer divide by in training, and what at inference?
# 3. Why do Keras's moving averages still remember their starting values after a short run?
# 4. How does a too-large variance in one layer turn into one answer for every photo 40 layers on?
# 5. What does recomputing the statistics change, and what does it leave exactly as it was?
# 6. What does the prediction histogram show that the accuracy alone hides?

# %% [markdown] tags=[]
# ## Exercises
#
# 1. *Predict before you run:* set `bn_batches = 0` (no recomputation) and run up to the training
#    cell (the comparison after it needs the recomputed statistics). What will the validation
#    loss be after each epoch? Check your answer against ln K.
# 2. Change the BatchNorm momentum of every layer to 0.9 before training (loop over
#    `batch_norm_layers(model)`), again with `bn_batches = 0`: does the collapse go away? Why?
# 3. Train for 8 epochs instead of 4: how close do Keras's moving variances come to the
#    recomputed ones in the variance table?
# 4. Try `bn_batches = 2` and `bn_batches = 27` (every training batch of an epoch): how many
#    batches does a good estimate need?
# 5. Compare the holdout accuracy with 03's on the same photos (06 does it with a paired test):
#    is depth paying off at this scale?
#
# ## Further research
#
# - Ioffe and Szegedy (2015), "Batch Normalization" (arXiv:1502.03167), and Wu and Johnson
#   (2021), "Rethinking 'Batch' in BatchNorm" (arXiv:2105.07576), whose "precise BatchNorm" is
#   what 04 does: what else do they find goes wrong with batch statistics?
# - Chollet (2017), "Xception: Deep Learning with Depthwise Separable Convolutions"
#   (arXiv:1610.02357): how does Xception differ from Inception V3, and what did the change buy
#   on ImageNet and on JFT?
# - Group normalization (Wu and He, 2018, arXiv:1803.08494; `keras.layers.GroupNormalization`)
#   uses no batch statistics at all. Would it avoid 04's collapse, and what would it cost?
#
# Next, `05_xception_transfer` starts from ImageNet weights instead of random ones.
