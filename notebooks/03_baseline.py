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
# # 03 · A baseline: the original's small CNN
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/doggo-course/doggo/blob/main/notebooks/03_baseline.ipynb) [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/doggo-course/doggo/blob/main/notebooks/03_baseline.ipynb)
#
# Before reaching for a big pretrained network, train the simplest model that could work and
# measure it. The original doggo.name did exactly that: a two-layer convolutional network trained
# with Adam, which reached **2.4%** top-1 on 188 breeds (chance is 0.5%). In this notebook you will
# learn:
#
# - how a `tf.data` pipeline feeds photos from the split manifest: decode, resize, cache, shuffle,
#   batch, prefetch;
# - how augmentation works as Keras layers, and what the original's brightness bug did;
# - how much of a photo one unit of a small CNN can see (its receptive field);
# - how a shared training loop adds checkpoints, early stopping, logs and resume-after-a-kill;
# - how to read training curves: underfitting, overfitting, and chance.

# %% tags=["parameters"]
data_dir = "data/demo"  # split/ from 02_split (full scale: "data/full")
models_dir = "runs/demo/models"  # the model is saved to <models_dir>/simple_cnn
image_size = 64  # pixels, square (full scale: 299, as the original)
batch_size = 32  # photos per step on each replica (GPU); on N GPUs a step trains on N batches
#   and learning rates are multiplied by N (linear scaling rule)
epochs = 20
learning_rate = 1e-3
patience = 5  # epochs without a better val_loss before stopping early
cache = True  # keep decoded photos in memory (as uint8) after the first epoch: on for small runs,
#   off at full scale (75,000 photos at 299 px)
pipeline = "default"  # "fast" at full scale: each photo decoded once into shards of pixels in
#   <data_dir>/cache/, augmented by stateless ops in parallel (helpers.training.data.fast_dataset)
seed = 42

# %% [markdown] tags=[]
# We seed every random number generator and make TensorFlow's ops deterministic, so this
# notebook gives the same numbers each time it runs (in the `doggo` kernel, on any x86-64 CPU:
# see the README). `setup_hardware` picks a distribution strategy: all GPUs with mixed precision
# when there are GPUs (the original used 4), the CPU otherwise.

# %% tags=[]
import inspect
import math
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers import original
from helpers.models import simple_cnn
from helpers.paths import project_path, split_dir
from helpers.pipeline import current_parameters
from helpers.plots import array_grid, bench_log, training_curves, use_style
from helpers.serving import save_model_dir
from helpers.training import (
    augmentation,
    class_weights,
    compile_classifier,
    fit,
    holdout_metrics,
    make_datasets,
    model_card,
    seed_everything,
    setup_hardware,
    split_labels,
)

use_style()
seed_everything(seed)
hardware = setup_hardware()
print(f"{hardware.replicas} replica(s), {hardware.gpus} GPU(s), "
      f"mixed precision {hardware.mixed_precision}, XLA {hardware.jit_compile}")

# %% [markdown] tags=[]
# ## The input pipeline
#
# `make_datasets` reads `split.csv` and builds one `tf.data.Dataset` per split: read the file,
# decode the JPEG, resize it to `image_size` (squashed, as every doggo model expects), keep the
# decoded photos in memory after the first epoch (`cache`), shuffle the training photos, batch
# them, and prepare the next batch while the model trains on the current one (`prefetch`).

# %% tags=[]
splits = split_dir(data_dir)
datasets, classes, table = make_datasets(splits, image_size, batch_size, seed=seed, cache=cache,
                                         pipeline=pipeline)
names = [c["name"] for c in classes]
print(f"{len(classes)} breeds; chance is {1 / len(classes):.1%} top-1")
print(table["split"].value_counts().reindex(["train", "val", "holdout"]).to_string())

# %% [markdown] tags=[]
# ## Augmentation, and the original's bug
#
# Training photos get random changes, so the model sees a slightly different photo every epoch
# and cannot simply memorise pixels. In Keras these are layers; here is the whole stack:

# %% tags=[]
print(inspect.getsource(augmentation))

# %% [markdown] tags=[]
# Every change is symmetric around "no change". Here is one validation photo and eight
# augmented versions of it, as the model sees them.

# %% tags=[]
val_photos = np.concatenate([x.numpy() for x, _ in datasets["val"]])  # a full pass fills the cache
photo = val_photos[:1]
augment = augmentation(seed)
variants = [photo[0]] + [augment(photo, training=True)[0].numpy() for _ in range(8)]
fig = array_grid(variants, ["original"] + [f"augmented {i}" for i in range(1, 9)], ncols=9,
                 size=1.6)

# %% [markdown] tags=[]
# The original used Keras 2's `ImageDataGenerator(brightness_range=[0.2, 0.8])`, which multiplies
# each training photo's brightness by a random factor between 0.2 and 0.8: *every* training photo
# came out darker, while validation photos stayed as they were. Here it is on the same photo,
# then on a whole batch: the mean brightness of training photos with our augmentation and with
# the original's, against the validation photos the model is tested on.

# %% tags=[]
rng = np.random.default_rng(seed)


def original_brightness(images: np.ndarray) -> np.ndarray:
    """The original's augmentation: brightness times a factor drawn from [0.2, 0.8]."""
    return images * rng.uniform(0.2, 0.8, (len(images), 1, 1, 1))


fig = array_grid([photo[0]] + list(original_brightness(np.repeat(photo, 4, axis=0))),
                 ["original"] + ["brightness_range=[0.2, 0.8]"] * 4, ncols=5, size=2.0)
train_photos = np.concatenate([x.numpy() for x, _ in datasets["train"].take(4)])
brightness = {
    "validation photos": val_photos.mean(axis=(1, 2, 3)),
    "training, our augmentation": train_photos.mean(axis=(1, 2, 3)),
    "training, the original's": original_brightness(train_photos).mean(axis=(1, 2, 3)),
}
fig, ax = plt.subplots(figsize=(8, 3.5))
for label, values in brightness.items():
    ax.hist(values, bins=30, range=(0, 255), alpha=0.55, label=f"{label} (mean {values.mean():.0f})")
ax.set_xlabel("mean pixel value of a photo (0 = black, 255 = white)")
ax.set_ylabel("photos")
ax.set_title("Brightness of what the model trains on and is tested on")
ax.legend(frameon=False)
fig.tight_layout()

# %% [markdown] tags=[]
# Our training photos are as bright as the validation photos on average; the original's are
# about half as bright, so its model learned from photos unlike the ones it was tested on. The
# check below holds this notebook to that sentence.

# %% tags=[]
val_mean = brightness["validation photos"].mean()
ours_mean = brightness["training, our augmentation"].mean()
bug_mean = brightness["training, the original's"].mean()
assert abs(ours_mean / val_mean - 1) < 0.1 and 0.4 < bug_mean / val_mean < 0.6
print(f"training / validation brightness: ours {ours_mean / val_mean:.2f}, "
      f"the original's {bug_mean / val_mean:.2f}")

# %% [markdown] tags=[]
# ## The model
#
# Two convolution + max-pooling blocks, a dense layer and the output layer, as in the original.
# Rescaling to [0, 1] is a layer inside the model, so the saved model takes raw pixels. The
# output layer gives one **logit** per breed: a score that softmax turns into a probability.

# %% tags=[]
with hardware.strategy.scope():
    model = simple_cnn(len(classes), image_size)
    compile_classifier(model, learning_rate, jit_compile=hardware.jit_compile)
print(f"{model.count_params():,} parameters, "
      f"{model.get_layer('dense').count_params():,} of them in the dense layer")

# %% [markdown] tags=[]
# How much of the photo does one unit of the last convolutional block see? Each 3x3 convolution
# widens the view by 2 steps of its input grid, and each 2x2 pooling doubles the step. The
# receptive field is computed here from the model's own layers.

# %% tags=[]
field, step = 1, 1
for layer in model.layers:
    if isinstance(layer, keras.layers.Conv2D | keras.layers.MaxPooling2D):
        size = layer.kernel_size[0] if isinstance(layer, keras.layers.Conv2D) else layer.pool_size[0]
        field += (size - 1) * step
        step *= layer.strides[0]
print(f"each unit after the last pooling sees a {field}x{field}-pixel patch of the "
      f"{image_size}x{image_size} photo ({field / image_size:.0%} of its width)")

# %% [markdown] tags=[]
# ## Training
#
# Class weights make rare breeds count as much as common ones. `fit` keeps the best model by
# validation loss, stops early when it stops improving, logs every epoch to `log.csv`, and backs
# up after each epoch so an interrupted run resumes where it stopped. The demo takes about a
# minute on a 2-core CPU; the full run about an hour on 4 GPUs.

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
# The curves show loss and accuracy on the training photos (augmented) and the validation photos
# after each epoch; the dashed lines are chance, a uniform guess: accuracy 1/K and loss ln K. The
# faint dotted curves are the same model trained on all 120 breeds by the bench run
# (`params/bench.yaml`, committed in `results/bench/`), whose chance is 1/120 and ln 120 = 4.79.

# %% tags=[]
log = pd.read_csv(model_dir / "training" / "log.csv")
fig = training_curves(log, "Simple CNN", n_classes=len(classes),
                      reference=bench_log("simple_cnn"), reference_label="bench, 120 breeds:")
best = log.loc[log["val_loss"].idxmin()]
last = log.iloc[-1]
print(f"{len(log)} epochs; best val_loss {best['val_loss']:.3f} at epoch {int(best['epoch']) + 1} "
      f"(ln K = {math.log(len(classes)):.3f}); last epoch: train accuracy {last['accuracy']:.1%}, "
      f"val accuracy {last['val_accuracy']:.1%}")

# %% [markdown] tags=[]
# How to read them: a model that **underfits** has training and validation losses that fall
# together and stay close; one that **memorises** (overfits) keeps lowering its training loss
# while its validation loss stalls or rises. The cell below reads the second half of this run
# that way, and checks the one claim this lesson makes of the baseline: it learned something
# (its validation loss ends below ln K and its accuracy above chance), but not much.

# %% tags=[]
second = log.iloc[len(log) // 2 - 1:]
train_drop = second["loss"].iloc[0] - second["loss"].iloc[-1]
val_drop = second["val_loss"].iloc[0] - second["val_loss"].min()
state = ("starting to memorise: the training loss falls faster than the validation loss"
         if val_drop < train_drop / 2 else "still underfitting: both losses fall together")
print(f"epochs {int(second['epoch'].iloc[0]) + 1}-{len(log)}: training loss fell by "
      f"{train_drop:.3f}, validation loss by {val_drop:.3f}; the model is {state}")
assert best["val_loss"] < math.log(len(classes)) - 0.1, "the baseline learned nothing"
assert best["val_accuracy"] > 1.5 / len(classes), "the baseline is no better than chance"

# %% [markdown] tags=[]
# ## Holdout accuracy
#
# The holdout split was never used for training or for choosing the best epoch, so it measures
# how the model does on photos it has never seen. Top-5 counts a photo as right when the true
# breed is among the model's five highest scores.

# %% tags=[]
metrics = holdout_metrics(model, datasets["holdout"])
print(f"holdout top-1 {metrics['holdout_accuracy']:.1%}, top-5 {metrics['holdout_top5']:.1%} "
      f"(chance {1 / len(classes):.1%} and {5 / len(classes):.0%}; "
      f"{original.top1_text('simple_cnn')})")

# %% [markdown] tags=[]
# Why so weak? Look back at two numbers printed above. One unit of the last convolutional
# block sees only the small patch given by the receptive field, far too little to take in
# the ears, muzzle and coat that tell breeds apart, so the dense layer has to assemble breeds
# from many small patches. And that dense layer holds almost all of the model's weights, fed by
# a few hundred photos per breed: trained for longer, its training loss goes on falling while
# its validation loss stalls (exercise 2 below shows it). Deeper networks (04) see the whole
# photo; pretrained features (05) bring what a million other photos taught.
#
# Finally we save the model with everything needed to use it: the class names, image size and
# preprocessing travel in `metadata.json` beside `model.keras`.

# %% tags=[]
card = model_card(
    name="simple_cnn",
    classes=classes,
    image_size=image_size,
    split_dir=splits,
    params=current_parameters("03_baseline", globals()),
    metrics=metrics,
    training_seconds=history.training_seconds,
    provenance="notebooks/03_baseline: the original doggo.name small CNN, trained from scratch",
)
saved = save_model_dir(model_dir, model, card)
print(f"saved {Path(saved).name}/ with {sorted(p.name for p in Path(saved).iterdir())}")

# %% [markdown] tags=[]
# ## Summary
#
# - A `tf.data` pipeline and Keras augmentation layers feed the model; our augmentation keeps
#   training photos as bright as validation photos, unlike the original's.
# - The small CNN learns a little, well above chance on 10 breeds but far from useful; on 188
#   breeds the original's barely beat chance (2.4%). It is the baseline every later model must
#   beat.
# - The trained model is a directory: `model.keras` plus `metadata.json`, read by
#   `helpers.serving`, `06_evaluate` and the app.

# %% [markdown] tags=[]
# ## Questionnaire
#
# 1. Name the stages of the `tf.data` pipeline, in order, and what each is for.
# 2. Why is augmentation a set of layers, and why is it switched off at validation?
# 3. What exactly was wrong with the original's `brightness_range=[0.2, 0.8]`?
# 4. What is a logit, and what turns logits into probabilities?
# 5. What do chance accuracy and a loss of ln K mean for a model, and why are they drawn?
# 6. How do you tell underfitting from memorising in the two training curves?
# 7. Why does the dense layer hold almost all of the simple CNN's weights?

# %% [markdown] tags=[]
# ## Exercises
#
# 1. *Predict before you run:* replace the augmentation with the original's darkening (multiply
#    each training photo by a random factor in [0.2, 0.8], as `original_brightness` does) inside
#    the training pipeline. Will the validation loss and the holdout accuracy go up, down, or
#    stay? Train and compare.
# 2. Set `epochs = 40` and `patience = 40`: does the gap between the training and validation
#    curves widen? At which epoch would early stopping have stopped?
# 3. Double `image_size` to 128. Recompute the receptive field and the dense layer's size before
#    you train: what do you expect to happen to the speed and to the accuracy?
# 4. Set `cache = False` and time an epoch: how much of an epoch is decoding JPEGs?
# 5. Add a third convolution + pooling block to `helpers.models.simple_cnn` (in a copy): how do
#    the receptive field and the parameter count change?
#
# ## Further research
#
# - TensorFlow's guide "Better performance with the tf.data API"
#   (tensorflow.org/guide/data_performance): profile 03's pipeline and find which step a GPU
#   would wait for.
# - Araujo, Norris and Sim (2019), "Computing Receptive Fields of Convolutional Neural Networks"
#   (Distill): check the receptive field of `simple_cnn` by hand with their formula.
# - Replace `Flatten` with `GlobalAveragePooling2D` (Lin et al., 2013, "Network In Network",
#   arXiv:1312.4400 introduced it): how many weights are left, and what happens to accuracy?
#
# Next, `04_xception_scratch` trains a deep network, still from random weights.
