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
# # 03 · Solutions: the baseline CNN
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/doggo-course/doggo/blob/main/solutions/03_baseline_solutions.ipynb) [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/doggo-course/doggo/blob/main/solutions/03_baseline_solutions.ipynb)
#
# Worked solutions to the exercises at the end of `notebooks/03_baseline`, then short answers
# to its questionnaire. Try each exercise yourself first.
#
# 03's trained model and log (`runs/demo/models/simple_cnn`) are the reference and are only
# read; every model here trains into `work_dir`. To keep this notebook to a few minutes,
# exercise 1 trains 12 epochs (compared with 03's first 12), exercise 2 trains 24 epochs
# instead of 40 (enough to see where early stopping would have stopped and what comes after),
# and exercise 3 trains 3 epochs at 128 px.

# %% tags=["parameters"]
data_dir = "data/demo"
models_dir = "runs/demo/models"  # 03's simple_cnn, read only
work_dir = "runs/demo/solutions/03_baseline"
image_size = 64  # 03's values
batch_size = 32
epochs = 20
learning_rate = 1e-3
patience = 5
seed = 42

# %% tags=[]
import shutil
import time

import keras
import numpy as np
import pandas as pd

from helpers.evaluation import mcnemar, topk_hits
from helpers.models import simple_cnn
from helpers.paths import project_path, split_dir
from helpers.plots import training_curves, use_style
from helpers.serving import read_card
from helpers.training import (
    augmentation,
    class_weights,
    compile_classifier,
    fit,
    make_dataset,
    make_datasets,
    seed_everything,
    split_labels,
)

use_style()
work = project_path(work_dir)
shutil.rmtree(work, ignore_errors=True)  # every run trains from scratch, so outputs repeat
splits = split_dir(data_dir)
datasets, classes, table = make_datasets(splits, image_size, batch_size, seed=seed)
weights = class_weights(split_labels(table, "train"), len(classes))
holdout_labels = split_labels(table, "holdout")
reference_dir = project_path(models_dir) / "simple_cnn"
reference_log = pd.read_csv(reference_dir / "training" / "log.csv")
reference_model = keras.models.load_model(reference_dir / "model.keras")
reference_hits = topk_hits(
    holdout_labels, reference_model.predict(datasets["holdout"], verbose=0), 1
)
print(
    f"03's model: holdout top-1 {reference_hits.mean():.1%} "
    f"(its metadata: {read_card(reference_dir).metrics['holdout_accuracy']:.1%})"
)


def train(name, train_ds, size=image_size, n_epochs=epochs, wait=patience):
    """Train a fresh simple CNN as 03 does (same seed) into work_dir/name; return model and log."""
    seed_everything(seed)
    model = simple_cnn(len(classes), size)
    compile_classifier(model, learning_rate)
    val = datasets["val"] if size == image_size else make_dataset(splits, "val", size, batch_size,
                                                                  table=table)  # fmt: skip
    fit(model, train_ds, val, run_dir=work / name, epochs=n_epochs, class_weight=weights,
        patience=wait, verbose=0)  # fmt: skip
    return model, pd.read_csv(work / name / "log.csv")


def receptive_field(model):
    """The side, in pixels, of the patch one unit after the model's last conv or pool sees."""
    field, step = 1, 1
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.MaxPooling2D):
            k = (
                layer.kernel_size[0]
                if isinstance(layer, keras.layers.Conv2D)
                else layer.pool_size[0]
            )
            field += (k - 1) * step
            step *= layer.strides[0]
    return field


# %% [markdown] tags=[]
# ## Exercise 1: train on the original's darkened photos
#
# *Predict before you run:* replace 03's augmentation with the original's darkening (every
# training photo times a random factor in [0.2, 0.8]). Will the validation loss and the
# holdout accuracy go up, down, or stay?
#
# The darkening is a small Keras layer, so it runs in the `tf.data` pipeline where 03's
# augmentation ran (`make_dataset(..., augment=...)`), seeded so the run repeats.


# %% tags=[]
class OriginalDarkening(keras.layers.Layer):
    """The original's brightness_range=[0.2, 0.8]: each photo times a factor in [0.2, 0.8]."""

    def __init__(self, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        shape = (keras.ops.shape(images)[0], 1, 1, 1)
        return images * keras.random.uniform(shape, 0.2, 0.8, seed=self.generator)


dark_train = make_dataset(splits, "train", image_size, batch_size, seed=seed, table=table,
                          augment=OriginalDarkening(seed))  # fmt: skip
dark_model, dark_log = train("darkened", dark_train, n_epochs=12, wait=12)
curves = pd.DataFrame({"03, val_accuracy": reference_log["val_accuracy"].iloc[:12].to_numpy(),
                       "darkened, val_accuracy": dark_log["val_accuracy"].to_numpy(),
                       "03, val_loss": reference_log["val_loss"].iloc[:12].to_numpy(),
                       "darkened, val_loss": dark_log["val_loss"].to_numpy()},
                      index=range(1, 13))  # fmt: skip
print(curves.round(3).to_string())
dark_hits = topk_hits(holdout_labels, dark_model.predict(datasets["holdout"], verbose=0), 1)
ours = reference_log["val_loss"].iloc[:12]
print(
    f"val_loss in 12 epochs: best darkened {dark_log['val_loss'].min():.3f}, 03 {ours.min():.3f}; "
    f"last darkened {dark_log['val_loss'].iloc[-1]:.3f}, 03 {ours.iloc[-1]:.3f}"
)
dark_only, ours_only, p_value = mcnemar(dark_hits, reference_hits)
print(
    f"holdout top-1 of the darkened model (its best epoch) {dark_hits.mean():.1%}, 03's model "
    f"{reference_hits.mean():.1%}: only the darkened right on {dark_only} photos, only 03's on "
    f"{ours_only}, McNemar p = {p_value:.2f}"
)
fig = training_curves(dark_log, "Simple CNN, trained on darkened photos", n_classes=len(classes),
                      reference=reference_log.iloc[:12], reference_label="03:")  # fmt: skip
assert dark_log["val_loss"].min() > ours.min()  # a worse best epoch
assert dark_log["val_loss"].iloc[-1] > ours.iloc[-1] + 0.3  # and it falls apart after it
assert p_value > 0.05  # the holdout cannot tell the two apart

# %% [markdown] tags=[]
# The validation loss: worse. Trained on photos half as bright as the ones it is tested on,
# the model reaches a higher best validation loss than 03's in the same 12 epochs (the dotted
# curves are 03's), and after its best epoch its validation loss climbs steeply while its
# training loss falls: what it learns about brightness and contrast is wrong for the
# validation photos, and it grows more confident in it. The darkened photos are a different
# distribution from the validation and holdout photos.
#
# The holdout accuracy: no difference that 120 photos can show. Early stopping kept the
# darkened model's best epoch, and the two models disagree on about two dozen photos, about as
# often one way as the other (McNemar's p, printed above, is far from 0.05). Top-1 looks
# only at each photo's highest score; the validation loss uses every probability, which is
# why it shows the harm where the holdout accuracy cannot. (12 epochs against 03's 20 for the
# holdout figure; the validation columns compare the same epochs.)

# %% [markdown] tags=[]
# ## Exercise 2: `epochs = 40`, `patience = 40`
#
# We train 24 epochs with early stopping out of the way (`patience` as long as the run), then
# read off where patience 5 would have stopped.

# %% tags=[]
long_model, long_log = train("long", datasets["train"], n_epochs=24, wait=24)
best_so_far = long_log["val_loss"].cummin()
stale = (long_log["val_loss"] > best_so_far.shift(1, fill_value=np.inf)).astype(int)
wait = stale.groupby((stale == 0).cumsum()).cumsum()  # epochs since the last improvement
stop = int(np.argmax(wait.to_numpy() >= patience)) + 1
best = int(long_log["val_loss"].idxmin()) + 1
gap = long_log["val_loss"] - long_log["loss"]
print(
    f"best val_loss at epoch {best}; with patience {patience} early stopping stops after "
    f"epoch {stop}"
)
print(
    f"val_loss - loss: {gap.iloc[4]:+.3f} at epoch 5, {gap.iloc[14]:+.3f} at epoch 15, "
    f"{gap.iloc[-1]:+.3f} at epoch {len(long_log)}"
)
fig = training_curves(long_log, "Simple CNN, 24 epochs", n_classes=len(classes))
widens = gap.iloc[-4:].mean() > gap.iloc[:4].mean()
print(
    f"the gap {'widens' if widens else 'does not widen'}: mean {gap.iloc[:4].mean():+.3f} over "
    f"epochs 1-4, {gap.iloc[-4:].mean():+.3f} over the last 4"
)
assert widens and stop < len(long_log)

# %% [markdown] tags=[]
# Yes: in the first epochs the two losses are within a few hundredths of each other (the
# training photos are augmented and dropout is on), and over the last epochs the training loss
# keeps falling while the validation loss stalls, so `val_loss - loss` grows: the model starts
# to memorise. Early stopping with patience 5 would have stopped at the epoch printed above,
# five epochs after the best one, and kept the best epoch's weights: the later epochs only
# widen the gap. (24 epochs instead of 40; the trend is already clear.)

# %% [markdown] tags=[]
# ## Exercise 3: `image_size = 128`
#
# Before training: the receptive field counts input pixels and does not depend on the image
# size, so one unit still sees the same small patch, now a smaller share of the photo. The
# dense layer's input is the last feature map, flattened: twice the side gives about four
# times the weights.

# %% tags=[]
sizes = {}
for size in (64, 128):
    m = simple_cnn(len(classes), size)
    sizes[size] = (receptive_field(m), m.get_layer("dense").count_params(), m.count_params())
    print(
        f"{size} px: receptive field {sizes[size][0]}x{sizes[size][0]} "
        f"({sizes[size][0] / size:.0%} of the width), dense layer {sizes[size][1]:,} weights, "
        f"{sizes[size][2]:,} in all"
    )
assert sizes[64][0] == sizes[128][0] and 4 < sizes[128][1] / sizes[64][1] < 5

# %% [markdown] tags=[]
# So expect each epoch to cost about four times as much (four times the pixels through every
# convolution, four times the dense weights), and no better accuracy from a short run: the
# model is larger, sees relatively less of the dog per unit, and has the same few photos to
# fit more weights. We train 3 epochs and compare with 03's first 3.

# %% tags=[]
big_train = make_dataset(splits, "train", 128, batch_size, seed=seed, table=table,
                         augment=augmentation(seed))  # fmt: skip
started = time.perf_counter()
big_model, big_log = train("size_128", big_train, size=128, n_epochs=3, wait=3)
big_seconds = (time.perf_counter() - started) / 3
small_seconds = (read_card(reference_dir).training_seconds or 0.0) / len(reference_log)
print(
    f"epoch at 128 px: time: {big_seconds:.1f} s; at 64 px (03's run): time: {small_seconds:.1f} s"
)
print(pd.DataFrame({"val_accuracy 64 px": reference_log["val_accuracy"].iloc[:3].to_numpy(),
                    "val_accuracy 128 px": big_log["val_accuracy"].to_numpy(),
                    "val_loss 64 px": reference_log["val_loss"].iloc[:3].to_numpy(),
                    "val_loss 128 px": big_log["val_loss"].to_numpy()},
                   index=range(1, 4)).round(3).to_string())  # fmt: skip

# %% tags=[]
assert big_log["val_accuracy"].max() <= reference_log["val_accuracy"].iloc[:3].max() + 0.05

# %% [markdown] tags=[]
# Each epoch at 128 px takes several times as long as at 64 px (the printed times; they vary
# from run to run and machine to machine), and three epochs bring no clear gain in
# validation accuracy over 03's first three (within 5 points, a dozen photos). A 7-million-weight dense layer fed by a few hundred photos
# per breed learns no faster; more pixels help only a model that can use them.

# %% [markdown] tags=[]
# ## Exercise 4: `cache = False`
#
# An epoch reads every training photo; with `cache = False` it decodes and resizes every JPEG
# again. We time one full pass over the training photos without a cache, one from a filled
# cache, and one training epoch (03's pipeline).


# %% tags=[]
def pass_seconds(dataset):
    """Seconds for one full pass over a dataset."""
    started = time.perf_counter()
    for _ in dataset:
        pass
    return time.perf_counter() - started


uncached = make_dataset(splits, "train", image_size, batch_size, seed=seed, table=table,
                        cache=False)  # fmt: skip
cached = make_dataset(splits, "train", image_size, batch_size, seed=seed, table=table, cache=True)
pass_seconds(cached)  # the first pass fills the cache
decode, from_cache = pass_seconds(uncached), pass_seconds(cached)
seed_everything(seed)
model = simple_cnn(len(classes), image_size)
compile_classifier(model, learning_rate)
model.fit(cached, epochs=1, verbose=0, shuffle=False)  # traces the training step once
started = time.perf_counter()
model.fit(cached, epochs=1, verbose=0, shuffle=False)
epoch_seconds = time.perf_counter() - started
print(
    f"decoding pass time: {decode:.2f} s; cached pass time: {from_cache:.2f} s; "
    f"training epoch (cached) time: {epoch_seconds:.2f} s"
)
assert from_cache < decode and decode / (decode + epoch_seconds) > 0.05

# %% [markdown] tags=[]
# A pass that decodes every JPEG takes far longer than a pass from the cache; decoding's
# share of an uncached epoch is the decoding time over the sum of the decoding and training
# times above (checked to be over 5%; the times vary from run to run). For this small CNN at
# 64 px, decoding every training JPEG is a noticeable share of the work, which is why 03 caches; at
# 299 px with Xception the model dominates, and at 75,000 photos the
# cache would not fit in memory: hence `cache = False` at full scale.

# %% [markdown] tags=[]
# ## Exercise 5: a third convolution + pooling block
#
# We build a copy of `simple_cnn` with a third block (128 filters) and compare.


# %% tags=[]
def three_block_cnn(num_classes: int, image_size: int) -> keras.Model:
    """simple_cnn with a third 3x3 convolution + 2x2 max-pooling block."""
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    for i, filters in enumerate((32, 64, 128), 1):
        x = keras.layers.Conv2D(filters, 3, activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(0.5)(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="logits")(x))


two, three = simple_cnn(len(classes), image_size), three_block_cnn(len(classes), image_size)
for name, m in (("two blocks", two), ("three blocks", three)):
    print(
        f"{name}: receptive field {receptive_field(m)} px, {m.count_params():,} parameters, "
        f"dense layer {m.get_layer('dense').count_params():,}"
    )
assert (
    receptive_field(three) > 2 * receptive_field(two) and three.count_params() < two.count_params()
)

# %% [markdown] tags=[]
# The receptive field more than doubles (the third 3x3 convolution works on a grid whose step
# is 4 pixels, and the third pooling doubles the step again), while the parameter count
# *falls* by more than half: the extra convolution adds about 74,000 weights, but the last
# feature map shrinks from 14x14x64 to 6x6x128, and the dense layer fed by it loses about a
# million. Depth buys a wider view for fewer weights; 04 takes that much further.

# %% [markdown] tags=[]
# ## Questionnaire: short answers
#
# 1. Read the file, decode the JPEG, resize to `image_size`, cache (decoded photos kept after
#    the first epoch), shuffle (training only), batch, augment (training only), prefetch (the
#    next batch is prepared while the model trains on this one).
# 2. As layers they run in the pipeline or inside a model, on CPU or GPU, seeded; they only
#    change photos in training mode, because validation must measure the photos as they are.
# 3. It multiplied every training photo by 0.2-0.8, so training photos were on average half as
#    bright as validation photos: a shift between training and test, not symmetric noise.
# 4. A raw score per class; softmax turns the scores into probabilities that sum to 1.
# 5. Chance accuracy (1/K) and loss ln K are what a uniform guess scores: a model at those
#    lines has learned nothing, so they show at a glance whether it learned anything.
# 6. Underfitting: both losses fall together and stay close. Memorising: the training loss
#    keeps falling while the validation loss stalls or rises, and the gap widens.
# 7. It connects every value of the flattened 14x14x64 feature map to 128 units: 12,544 x 128
#    weights, against a few thousand in each convolution.
