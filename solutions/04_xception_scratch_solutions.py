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
# # 04 · Solutions: Xception from scratch
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/doggo-course/doggo/blob/main/solutions/04_xception_scratch_solutions.ipynb) [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/doggo-course/doggo/blob/main/solutions/04_xception_scratch_solutions.ipynb)
#
# Worked solutions to the exercises at the end of `notebooks/04_xception_scratch`, then short
# answers to its questionnaire. Try each exercise yourself first.
#
# 04's trained model (`runs/demo/models/xception_scratch`) and 03's are the reference and are
# only read. An epoch of Xception on all ten breeds takes about a minute on a laptop CPU, so
# exercises 1-3, which train new models, use **three** of the ten breeds (about 250 training
# photos, 8 steps per epoch, a quarter of a minute each): the BatchNorm arithmetic is the same,
# only the number of steps is smaller, and we say where that matters. Exercises 4 and 5 use
# 04's own model on all ten breeds.

# %% tags=["parameters"]
data_dir = "data/demo"
models_dir = "runs/demo/models"  # 04's xception_scratch and 03's simple_cnn, read only
breeds = ["Chihuahua", "Golden Retriever", "Siberian Husky"]  # exercises 1-3 train on these
image_size = 80  # 04's values
batch_size = 32
learning_rate = 1e-3
dropout = 0.3
epochs = 8  # exercises 1 and 3; exercise 2 trains half as long
seed = 42

# %% tags=[]
import math

import keras
import numpy as np
import pandas as pd

from helpers.evaluation import mcnemar, topk_hits
from helpers.models import xception_scratch
from helpers.paths import project_path, split_dir
from helpers.plots import prediction_histogram, training_curves, use_style
from helpers.serving import read_card
from helpers.serving.model_dir import load_model_dir
from helpers.training import (
    augmentation,
    batch_norm_layers,
    batch_norm_statistics,
    class_weights,
    compile_classifier,
    make_dataset,
    read_split,
    seed_everything,
    split_labels,
)
from helpers.training.batch_norm import recompute_batch_norm_statistics

use_style()
splits = split_dir(data_dir)
full_table, full_classes = read_split(splits)
table = full_table[full_table["breed"].isin(breeds)].copy()
table["label"] = table["breed"].map({name: i for i, name in enumerate(breeds)}).astype(np.int32)


def photos(split, *, augment=None, shuffle=None):
    """04's pipeline for one split of the three breeds, cached in memory, augmented if asked."""
    return make_dataset(splits, split, image_size, batch_size, seed=seed, shuffle=shuffle,
                        augment=augment, table=table)  # fmt: skip


train_ds, val_ds = photos("train", augment=augmentation(seed)), photos("val")
bn_ds = photos("train", shuffle=True)  # un-augmented training photos, breeds mixed, as 04's
val_labels = split_labels(table, "val")
weights = class_weights(split_labels(table, "train"), len(breeds))
ln_k = math.log(len(breeds))
n_train = int((table["split"] == "train").sum())
steps = math.ceil(n_train / batch_size)
print(
    f"{len(breeds)} breeds: {n_train} training photos = {steps} steps per epoch, "
    f"{len(val_labels)} validation photos; ln K = {ln_k:.3f}, chance {1 / len(breeds):.0%}"
)


class KerasStatistics(keras.callbacks.Callback):
    """Keep every BatchNorm layer's moving averages at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.by_epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch.append(batch_norm_statistics(self.model))


def train(n_epochs, momentum=None):
    """Train a fresh Xception as 04 does (same seed), with Keras's fit and no recomputation;
    return the model, its log and the moving averages after each epoch."""
    seed_everything(seed)
    model = xception_scratch(len(breeds), image_size, dropout=dropout)
    if momentum is not None:
        for bn in batch_norm_layers(model):
            bn.momentum = momentum
    compile_classifier(model, learning_rate)
    statistics = KerasStatistics()
    # Keras's own fit, without 04's early stopping: we want the weights after the last epoch.
    history = model.fit(train_ds, validation_data=val_ds, epochs=n_epochs, class_weight=weights,
                        callbacks=[statistics], shuffle=False, verbose=0)  # fmt: skip
    log = pd.DataFrame(history.history).rename_axis("epoch").reset_index()
    return model, log, statistics.by_epoch


# %% [markdown] tags=[]
# ## Exercise 1: `bn_batches = 0`
#
# *Predict:* with no recomputation, every validation uses Keras's moving averages, which after
# a few dozen steps still hold most of their starting values. Expect the collapse of 04 at
# every epoch: the model gives every photo about the same answer, so the validation loss sits
# at or above ln K, whatever the training loss does. Training is the same with or without
# recomputation (04's callback puts Keras's averages back before each epoch), so this run also
# serves exercise 3. About two and a half minutes.

# %% tags=[]
model, log, keras_by_epoch = train(epochs)
print(
    log[["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]].round(3).to_string(index=False)
)
fig = training_curves(log, "Xception from scratch, 3 breeds, Keras's moving averages",
                      n_classes=len(breeds))  # fmt: skip
keras_pred = np.argmax(model.predict(val_ds, verbose=0), axis=1)
keras_loss = model.evaluate(val_ds, return_dict=True, verbose=0)["loss"]
recompute_batch_norm_statistics(model, bn_ds, steps)  # now the same weights, recomputed
precise_pred = np.argmax(model.predict(val_ds, verbose=0), axis=1)
precise_loss = model.evaluate(val_ds, return_dict=True, verbose=0)["loss"]
print(
    f"after epoch {epochs}: Keras's averages val_loss {keras_loss:.3f}, "
    f"{len(set(keras_pred))} distinct breed(s) predicted, accuracy "
    f"{np.mean(keras_pred == val_labels):.1%}; recomputed val_loss {precise_loss:.3f}, "
    f"accuracy {np.mean(precise_pred == val_labels):.1%}"
)
fig = prediction_histogram(keras_pred, breeds, "Validation answers with Keras's moving averages")

# %% tags=[]
assert log["val_loss"].min() > ln_k - 0.05, "Keras's averages did not collapse"
assert log["loss"].iloc[-1] < log["loss"].iloc[0], "the training loss did not fall"
assert precise_loss < ln_k - 0.05 < keras_loss

# %% [markdown] tags=[]
# As predicted: the validation loss never gets below ln K (the dashed line), while the
# training loss, measured with each batch's own statistics, falls. The model *is* learning,
# and the recomputed statistics show it on the very same weights (a validation loss below
# ln K, an accuracy above chance, printed above), but with Keras's averages the features
# have all but vanished by the last layer, and every photo gets almost the same answer.
# Without recomputation, the log alone would have told you the model learned nothing, and
# early stopping would have kept an arbitrary epoch.

# %% [markdown] tags=[]
# ## Exercise 2: BatchNorm momentum 0.9
#
# *Predict:* with momentum 0.9 a moving average forgets ten times faster: after the 32 steps of
# 4 epochs, `0.9**32` = 3% of the start is left instead of 72%. Is 3% of a variance of 1 small
# enough? Compare it with the real variances in 04's table before you run. About a minute and
# a half.

# %% tags=[]
fast_model, fast_log, _ = train(4, momentum=0.9)
print(fast_log[["epoch", "loss", "val_loss", "val_accuracy"]].round(3).to_string(index=False))
fast_pred = np.argmax(fast_model.predict(val_ds, verbose=0), axis=1)
fast_keras = [float(variance.mean()) for _, variance in batch_norm_statistics(fast_model)]
recompute_batch_norm_statistics(fast_model, bn_ds, steps)
fast_real = [float(variance.mean()) for _, variance in batch_norm_statistics(fast_model)]
fast_loss = fast_model.evaluate(val_ds, return_dict=True, verbose=0)["loss"]
left = 0.9 ** (4 * steps)
below = sum(real < left for real in fast_real)
too_big = sum(k > 2 * r for k, r in zip(fast_keras, fast_real, strict=True))
print(
    f"momentum 0.9, Keras's own averages: best val_loss {fast_log['val_loss'].min():.3f} "
    f"(ln K = {ln_k:.3f}), {len(set(fast_pred))} distinct breed(s) predicted after epoch 4; "
    f"recomputed: val_loss {fast_loss:.3f}"
)
print(
    f"left of the start after {4 * steps} steps: {left:.3f}; {below} of {len(fast_real)} "
    f"BatchNorm layers have a real variance below that; Keras's moving variance is more than "
    f"twice the real one in {too_big} of them"
)
fig = training_curves(fast_log, "Xception from scratch, 3 breeds, BatchNorm momentum 0.9",
                      n_classes=len(breeds), reference=log.iloc[:4],
                      reference_label="momentum 0.99:")  # fmt: skip
half = len(fast_real) // 2
assert fast_log["val_loss"].min() > ln_k - 0.05 and below > half and too_big > half

# %% [markdown] tags=[]
# No, not in four epochs. The validation loss with Keras's averages stays at ln K, as with
# momentum 0.99 (the dotted curves), and the model still gives one answer. The leftover 3% of
# the start is small against 1 but large against what these layers really have: most of them
# have a real variance below it, and in most the moving variance is still more than twice the
# real one (the counts printed above), and 36 layers compound the error. Momentum 0.9 would
# need about twice as many steps to bring the leftover under those variances; and the faster
# an average forgets, the fewer batches it rests on, so the noisier it is. (Recomputed, these
# weights validate above ln K as well: after 32 steps they are not good yet. Exercise 1's
# weights, after 64 steps, were.) Recomputing gets the statistics right at once, whatever the
# momentum, and leaves training as it was.

# %% [markdown] tags=[]
# ## Exercise 3: eight epochs instead of four
#
# Exercise 1's run trained 8 epochs. The moving variance after `n` steps
# is `0.99**n` times its start (1) plus the rest, a weighted mean of the batch variances seen.
# When the true variance is small, the leftover start dominates. The table compares, for the
# first four BatchNorm layers and the last two, Keras's moving variance after 4 and 8 epochs
# (32 and 64 steps here) with the variance recomputed for the final weights.

# %% tags=[]
recomputed = batch_norm_statistics(model)
rows = [(bn.name, float(k4[1].mean()), float(k8[1].mean()), float(r[1].mean()))
        for bn, k4, k8, r in zip(batch_norm_layers(model), keras_by_epoch[3], keras_by_epoch[-1],
                                 recomputed, strict=True)]  # fmt: skip
columns = ["layer", f"Keras, {4 * steps} steps", f"Keras, {epochs * steps} steps", "recomputed"]
variances = pd.DataFrame(rows, columns=columns)
print(pd.concat([variances.head(4), variances.tail(2)]).round(4).to_string(index=False))
for n in (4 * steps, epochs * steps, 27 * 8):
    print(f"after {n:>3} steps {0.99**n:.0%} of the starting variance 1 is left")
ratios = variances.iloc[:, 2] / variances.iloc[:, 3]  # Keras after 8 epochs / recomputed
fell = variances.iloc[:, 2] < variances.iloc[:, 1]
print(
    f"Keras's variance after {epochs} epochs: {ratios.median():.0f}x the recomputed one in the "
    f"median layer, more than twice it in {(ratios > 2).sum()} of {len(ratios)} layers; lower "
    f"than after 4 epochs in {fell.sum()} of them"
)
assert ratios.median() > 5 and (ratios > 2).mean() > 0.75 and fell.mean() > 0.75

# %% [markdown] tags=[]
# Closer, but nowhere near. In most layers Keras's moving variance falls between 4 and 8
# epochs, about as fast as `0.99**n` predicts (0.73 to 0.53 in the table against 72% and 53%
# left of the start), because for those layers the leftover start *is* almost all of the
# moving variance: their real variances (the recomputed column) are a small fraction of 1. So
# the moving variances stay many times too large (the printed factors). In 04's run on ten
# breeds an epoch is 27 steps, and 8 epochs are 216 steps: 11% of the start is left, still far
# more than most layers' real variance. Only thousands of steps (the original's 32,800) make
# the start negligible; recomputing gets the right value at once.

# %% [markdown] tags=[]
# ## Exercise 4: `bn_batches = 2` and `bn_batches = 27`
#
# On 04's own model (ten breeds): recompute the statistics from 1, 2, 8 (04's setting) and 27
# batches (all of an epoch's training photos) and validate each time. Each recomputation
# starts from scratch: its running mean does not depend on what the layers held before.

# %% tags=[]
scratch, card = load_model_dir(project_path(models_dir) / "xception_scratch")
compile_classifier(scratch, learning_rate)
full_bn = make_dataset(splits, "train", image_size, batch_size, shuffle=True, seed=seed,
                       cache=False, table=full_table)  # fmt: skip
full_val = make_dataset(splits, "val", image_size, batch_size, table=full_table)
n_full = int((full_table["split"] == "train").sum())
full_steps = math.ceil(n_full / batch_size)
rows = []
for n in (1, 2, 8, full_steps):
    recompute_batch_norm_statistics(scratch, full_bn, n)
    result = scratch.evaluate(full_val, return_dict=True, verbose=0)
    rows.append((n, min(n * batch_size, n_full), result["loss"], result["accuracy"]))
by_batches = pd.DataFrame(rows, columns=["batches", "photos", "val_loss", "val_accuracy"])
print(by_batches.round(3).to_string(index=False))
print(f"04's log at its best epoch (8 batches): val_loss "
      f"{pd.read_csv(project_path(models_dir) / 'xception_scratch/training/log.csv')['val_loss'].min():.3f}; "
      f"ln K = {math.log(len(full_classes)):.3f}")  # fmt: skip
loss = by_batches.set_index("batches")["val_loss"]
assert all(abs(loss[n] - loss[full_steps]) < 0.1 for n in (1, 2, 8))

# %% [markdown] tags=[]
# Very few batches are enough: one batch (32 photos) already gives about the validation loss of
# all 27, and 2 or 8 (04's setting) stay within about two hundredths of it, up or down: the
# differences are noise from which photos were drawn, not a trend.
# A BatchNorm layer estimates one mean and one variance per channel, each from every pixel
# of every photo in the batch, so even one batch is tens of thousands of values per channel
# in the first layers. (04's own log differs a little from the 8-batch row: each of its
# recomputations drew other training batches.) That is why 04 can afford to recompute before
# every validation: a few forward passes against an epoch's 27 forward-and-backward ones.

# %% [markdown] tags=[]
# ## Exercise 5: depth against 03's simple CNN
#
# Both models' answers on the same 120 holdout photos, and McNemar's test on the photos where
# they disagree (06 does the same for every pair of models).

# %% tags=[]
holdout = {}
for name in ("simple_cnn", "xception_scratch"):
    m, c = load_model_dir(project_path(models_dir) / name)
    ds = make_dataset(splits, "holdout", c.image_size, batch_size, table=full_table)
    holdout[name] = topk_hits(split_labels(full_table, "holdout"), m.predict(ds, verbose=0), 1)
    print(f"{name}: holdout top-1 {holdout[name].mean():.1%} at {c.image_size} px "
          f"(its metadata: {read_card(project_path(models_dir) / name).metrics['holdout_accuracy']:.1%})")  # fmt: skip
cnn_only, xception_only, p = mcnemar(holdout["simple_cnn"], holdout["xception_scratch"])
print(
    f"only the CNN right: {cnn_only} photos; only Xception right: {xception_only}; "
    f"McNemar p = {p:.2f}"
)
assert not (holdout["xception_scratch"].mean() > holdout["simple_cnn"].mean() and p < 0.05)

# %% [markdown] tags=[]
# No. Xception from scratch, with 20 million weights and 36 convolutions, does not beat the
# 1.6-million-weight CNN here: the accuracies are a few photos apart and the test cannot tell
# them from a coin toss (p well above 0.05). Depth needs many photos and many steps to pay
# off; with a few hundred photos per breed and four epochs it cannot. The original got 64.1%
# from scratch with 75,000 photos and 20 epochs; `05_xception_transfer` gets there with
# ImageNet's weights instead.

# %% [markdown] tags=[]
# ## Questionnaire: short answers
#
# 1. A 3x3 filter per input channel (space), then a 1x1 convolution across channels (mixing):
#    for 728 channels about 9 times fewer weights and multiplications than a 3x3 convolution
#    over all channels at once.
# 2. In training, by the variance of the current batch (per channel); at inference by the
#    moving average of those variances that training kept.
# 3. Each step keeps 99% of the average (momentum 0.99): after `n` steps `0.99**n` of the
#    starting value is still in it, 34% after 04's 108 steps.
# 4. A layer that divides by too large a variance shrinks its output; the next layer shrinks
#    it again, and after dozens of layers the features are almost zero for every photo, so
#    the logits are almost the biases: one answer, loss near ln K.
# 5. It changes the moving means and variances, to averages over batches under the final
#    weights; the weights themselves, and so training, stay exactly as they were.
# 6. How many photos go to each breed: a collapsed model puts (almost) all of them on one,
#    which an accuracy near chance does not say.
