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
# # 05 · Solutions: transfer learning
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/doggo-course/doggo/blob/main/solutions/05_xception_transfer_solutions.ipynb) [![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/doggo-course/doggo/blob/main/solutions/05_xception_transfer_solutions.ipynb)
#
# Worked solutions to the exercises at the end of `notebooks/05_xception_transfer`, then short
# answers to its questionnaire. Try each exercise yourself first.
#
# 05's saved model and logs (`runs/demo/models/efficientnet_lite0_transfer`) are the reference
# and are only read; every model here trains into `work_dir`. The backbone's features are
# computed once, as 05 does, and exercises 1 and 2 train heads on them in seconds. Fine-tuning
# costs one to two minutes an epoch on a 2-core CPU, so exercises 3 and 4 train one epoch each
# instead of 2, compared with 05's first epoch.

# %% tags=["parameters"]
data_dir = "data/demo"
models_dir = "runs/demo/models"  # 05's efficientnet_lite0_transfer, read only
work_dir = "runs/demo/solutions/05_xception_transfer"
backbone = "efficientnet_lite0"  # 05's values
weights = "imagenet"
image_size = 224
batch_size = 32
head_epochs = 15
head_learning_rate = 1e-4
fine_tune_from = "block14_expand_conv"
learning_rate = 1e-4
backbone_lr_multiplier = 0.1
dropout = 0.5
patience = 5
seed = 42

# %% tags=[]
import json
import shutil
import time

import keras
import numpy as np
import pandas as pd

from helpers.evaluation import mcnemar
from helpers.models import (
    build_feature_extractor,
    copy_head_weights,
    head_only_model,
    imagenet_head_for,
    set_head_columns,
    transfer_classifier,
)
from helpers.paths import project_path, split_dir
from helpers.plots import training_curves, use_style
from helpers.serving.model_dir import load_model_dir
from helpers.training import (
    augmentation,
    backbone_features,
    class_weights,
    compile_classifier,
    features_dataset,
    fit,
    make_dataset,
    make_datasets,
    seed_everything,
    set_backbone_trainable,
    split_labels,
)

use_style()
work = project_path(work_dir)
shutil.rmtree(work, ignore_errors=True)  # every run trains from scratch, so outputs repeat
splits = split_dir(data_dir)
datasets, classes, table = make_datasets(splits, image_size, batch_size, seed=seed)
plain_train = make_dataset(splits, "train", image_size, batch_size, shuffle=False, cache=False,
                           table=table)  # fmt: skip
weights_by_class = class_weights(split_labels(table, "train"), len(classes))
reference_dir = project_path(models_dir) / f"{backbone}_transfer"
model_05, card_05 = load_model_dir(reference_dir)  # 05's saved model and its card
head_log_05 = pd.read_csv(reference_dir / "training" / "head" / "log.csv")
fine_log_05 = pd.read_csv(reference_dir / "training" / "fine_tune" / "log.csv")
ours = {k: v for k, v in globals().items() if k in card_05.params}
assert all(card_05.params[k] == v for k, v in ours.items()), "not 05's values"

seed_everything(seed)
features_model = build_feature_extractor(backbone, weights, image_size=image_size)
started = time.perf_counter()
train_features, train_labels = backbone_features(features_model, plain_train)
val_features, val_labels = backbone_features(features_model, datasets["val"])
print(
    f"{len(ours)} parameters checked against 05's model card; features of {len(train_labels)} "
    f"train and {len(val_labels)} validation photos, time: {time.perf_counter() - started:.0f} s"
)
train_features_ds = features_dataset(train_features, train_labels, batch_size, shuffle=True,
                                     seed=seed)  # fmt: skip
val_features_ds = features_dataset(val_features, val_labels, batch_size)


def new_head(init: str, lr: float, reseed: bool = True):
    """A compiled head as 05 builds it, from ImageNet's rows or random (seeded first)."""
    if reseed:
        seed_everything(seed)
    head = head_only_model(train_features.shape[1:], len(classes), dropout)
    compile_classifier(head, lr)
    if init == "imagenet":
        set_head_columns(head, *imagenet_head_for(backbone, classes, weights))
    return head


def train_head(name: str, init: str, lr: float, n_epochs: int = head_epochs, wait: int = patience):
    """Train a new head on the cached features into work_dir/name; return it and its log."""
    head = new_head(init, lr)
    fit(head, train_features_ds, val_features_ds, run_dir=work / name, epochs=n_epochs,
        class_weight=weights_by_class, patience=wait, verbose=0)  # fmt: skip
    return head, pd.read_csv(work / name / "log.csv")


untrained = new_head("imagenet", head_learning_rate).evaluate(
    val_features_ds, return_dict=True, verbose=0
)
best_05 = int(head_log_05["val_loss"].idxmin())  # the epoch 05's early stopping kept
print(
    f"05's head before training: validation top-1 {untrained['accuracy']:.1%}, loss "
    f"{untrained['loss']:.3f}; after stage 1 (epoch {best_05 + 1}, kept): "
    f"{head_log_05['val_accuracy'].iloc[best_05]:.1%}, {head_log_05['val_loss'].iloc[best_05]:.3f}"
)

# %% [markdown] tags=[]
# ## Exercise 1: `head_init = "random"`
#
# *Predict before you run:* how many epochs will a randomly initialised head need to reach the
# validation accuracy that ImageNet's rows give before any training (printed above)?
#
# We train it with 05's learning rate for longer than 05's 15 epochs, with early stopping out of
# the way, and find the first epoch that gets there.

# %% tags=[]
random_epochs = 60
random_head, random_log = train_head("random_head", "random", head_learning_rate,
                                     n_epochs=random_epochs, wait=random_epochs)  # fmt: skip
reached = random_log.index[random_log["val_accuracy"] >= untrained["accuracy"]]
first = f"epoch {reached[0] + 1}" if len(reached) else f"not within {random_epochs} epochs"
print(random_log.iloc[[0, 1, 2, 4, 9, 14, 29, 59]][["epoch", "accuracy", "loss", "val_accuracy",
                                                     "val_loss"]].assign(epoch=lambda d: d["epoch"] + 1).round(4).to_string(index=False))  # fmt: skip
print(
    f"at or above {untrained['accuracy']:.1%}: {first}; within 05's "
    f"{head_epochs} epochs the best is {random_log['val_accuracy'].iloc[:head_epochs].max():.1%}"
    f", val_loss {random_log['val_loss'].iloc[:head_epochs].min():.3f} (ImageNet's rows "
    f"untrained: {untrained['loss']:.3f})"
)
fig = training_curves(random_log, "Stage 1 from a random head", n_classes=len(classes),
                      reference=head_log_05, reference_label="05, ImageNet rows:")  # fmt: skip

# %% tags=[]
assert random_log["val_accuracy"].iloc[:head_epochs].max() < untrained["accuracy"] - 0.05
assert random_log["val_accuracy"].max() < untrained["accuracy"]
assert random_log["val_loss"].min() > untrained["loss"] + 0.1

# %% [markdown] tags=[]
# Far more than 05's 15 epochs: in this run it never gets there. After one epoch the random head
# is at 24% (chance is 10%), after 15 at 77%, and after 60, four times 05's budget, at 81%, with
# a validation loss of 0.50 against the 0.33 that ImageNet's rows give with no training at all
# (the dotted curves are 05's head, which starts there). The loss is still falling, slowly: at
# 05's gentle rate a random head needs many more epochs, and from 834 training photos it may
# never catch up with rows learned from about a thousand ImageNet photos per breed (the demo's
# photos come from ImageNet, which flatters those rows further). That is what
# `head_init = "imagenet"` buys: stage 1 starts where training from scratch does not arrive.

# %% [markdown] tags=[]
# ## Exercise 2: `head_learning_rate = 0.01`
#
# 100 times 05's rate, from ImageNet's rows, with 05's 15 epochs and patience 5.

# %% tags=[]
fast_head, fast_log = train_head("fast_head", "imagenet", 0.01)
print(fast_log[["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]]
      .assign(epoch=lambda d: d["epoch"] + 1).round(4).to_string(index=False))  # fmt: skip
kept = int(fast_log["val_loss"].idxmin()) + 1
fast = fast_head.evaluate(val_features_ds, return_dict=True, verbose=0)
print(
    f"early stopping kept epoch {kept} of {len(fast_log)}: validation top-1 {fast['accuracy']:.1%}"
    f", loss {fast['loss']:.3f}; 05's head (rate {head_learning_rate:g}) kept epoch "
    f"{best_05 + 1}: {head_log_05['val_loss'].iloc[best_05]:.3f}"
)
fig = training_curves(fast_log, "Stage 1 at learning rate 0.01", n_classes=len(classes),
                      reference=head_log_05, reference_label="05, rate 1e-4:")  # fmt: skip

# %% tags=[]
assert len(fast_log) < head_epochs  # early stopping cut the run short
assert fast_log["val_loss"].min() > untrained["loss"] + 0.05  # worse than no training at all
assert fast_log["accuracy"].iloc[-1] > fast_log["val_accuracy"].iloc[-1] + 0.03

# %% [markdown] tags=[]
# It rises at once and never gets back: one epoch at 0.01 takes the validation loss from the
# 0.33 the head started at to 0.56, epoch 2 brings it down to 0.42, and from then on it bounces
# between 0.42 and 0.57, while the training loss falls to 0.18 and the training accuracy
# (dropout on) climbs from 79% to 93%: the head memorises the training photos. Early stopping
# keeps epoch 2, the lowest validation loss, and stops five epochs later. Even that epoch is
# worse than ImageNet's rows before any training (the loss and top-1 printed above): steps 100
# times larger overwrite what ImageNet's rows knew with what fits 834 training photos, the trade
# 05 warned about. At 05's rate (dotted) the validation loss creeps down instead.

# %% [markdown] tags=[]
# ## Exercises 3 and 4: fine-tune more of the backbone, or faster
#
# Both start exactly where 05's stage 2 started, so that the one parameter we change is the
# only difference: a fresh copy of the pretrained backbone under 05's stage-1 head (the weights
# of its best epoch, `training/head/best.keras`), trained on the same augmented photos in the
# same order. `fit` records digests of the starting weights and of the data in `run.json`, and
# we check them against 05's. Two details make it exact: a new training dataset for each run (its
# augmentation layers' random state moves on as they are used, and 05's run started from a
# fresh one), and the layers built in 05's order after seeding (Keras seeds each new layer, the
# head's dropout included, from Python's random numbers). Checked once: with 05's own settings,
# this reproduces 05's first epoch to the last digit of its log. One epoch each (05 trained 2,
# at one to two minutes an epoch on 2 cores), compared with 05's first epoch.

# %% tags=[]
head_05 = keras.saving.load_model(reference_dir / "training" / "head" / "best.keras",
                                  compile=False).get_weights()  # fmt: skip


def fine_tune(name: str, from_layer: str, multiplier: float):
    """One epoch of 05's stage 2 from 05's stage-1 head, fine-tuning from `from_layer` with
    `multiplier`; return the model, its log, the seconds and whether it started as 05's did."""
    seed_everything(seed)
    extractor = build_feature_extractor(backbone, weights, image_size=image_size)
    train = make_dataset(splits, "train", image_size, batch_size, seed=seed, table=table,
                         augment=augmentation(seed))  # fmt: skip
    head = new_head("imagenet", head_learning_rate, reseed=False)  # as 05 built it, then
    head.set_weights(head_05)  # with 05's trained weights
    model = transfer_classifier(extractor, len(classes), dropout)
    copy_head_weights(head, model)
    set_backbone_trainable(model, True, from_layer=from_layer)
    compile_classifier(model, learning_rate, backbone_lr_multiplier=multiplier)
    started = time.perf_counter()
    fit(model, train, datasets["val"], run_dir=work / name, epochs=1,
        class_weight=weights_by_class, patience=patience, verbose=0)  # fmt: skip
    seconds = time.perf_counter() - started
    ran, ran_05 = (json.loads((d / "run.json").read_text())["fingerprint"]
                   for d in (work / name, reference_dir / "training" / "fine_tune"))  # fmt: skip
    same = all(ran[k] == ran_05[k] for k in ("initial weights", "train data", "validation data"))
    return model, pd.read_csv(work / name / "log.csv"), seconds, same


def moving(model: keras.Model) -> int:
    """How many weights fine-tuning trains (the head's included)."""
    return sum(int(w.numpy().size) for w in model.trainable_weights)


def drift(models: dict[str, keras.Model]) -> pd.DataFrame:
    """How far each block's convolution kernels moved from ImageNet's, per model: the size of
    the change over the size of the kernels (the untouched `features_model` is ImageNet's)."""
    pretrained = {w.path: keras.ops.convert_to_numpy(w) for w in features_model.weights}
    table = {}
    for label, model in models.items():
        change, size = {}, {}
        for w in model.get_layer("backbone").weights:
            if w.path.endswith("kernel"):
                block, w0 = w.path.split("_")[0], pretrained[w.path]
                change[block] = change.get(block, 0.0) + float(np.sum((w.numpy() - w0) ** 2))
                size[block] = size.get(block, 0.0) + float(np.sum(w0**2))
        table[label] = {b: np.sqrt(change[b] / size[b]) for b in change}
    return pd.DataFrame(table).loc[[f"block{i}" for i in range(8, 16)] + ["top"]]


def compare(log: pd.DataFrame, label: str) -> pd.DataFrame:
    """Epoch 1 of a fine-tuning log under 05's stage-1 head and 05's fine-tuning epoch 1."""
    columns = ["accuracy", "loss", "val_accuracy", "val_loss"]
    rows = {"05, stage 1 (head only)": head_log_05[columns].iloc[best_05],
            "05, fine-tuning epoch 1": fine_log_05[columns].iloc[0],
            f"{label}, epoch 1": log[columns].iloc[0]}  # fmt: skip
    return pd.DataFrame(rows).T


# %% [markdown] tags=[]
# ## Exercise 3: `fine_tune_from = "block10_expand_conv"`
#
# Four more MBConv blocks (10 to 13) move, on top of 05's top two (14 and 15) and the last
# 1x1 convolution.

# %% tags=[]
deep_model, deep_log, deep_seconds, same = fine_tune("from_block10", "block10_expand_conv",
                                                      backbone_lr_multiplier)  # fmt: skip
print(f"started as 05's stage 2 did (weights, photos, order): {same}")
print(compare(deep_log, "from block10").round(4).to_string())
print(
    f"weights that move: {moving(deep_model):,} (05: {moving(model_05):,}); the epoch took "
    f"time: {deep_seconds:.0f} s"
)
moved = drift({"05 (2 epochs)": model_05, "from block10 (1 epoch)": deep_model})
print("how far each block's kernels moved from ImageNet's:")
print(moved.map(lambda v: f"{v:.3%}").to_string())

# %% tags=[]
assert same
assert moving(deep_model) > 1.5 * moving(model_05)
assert (moved.loc["block10":"block13", "05 (2 epochs)"] == 0).all()
assert (moved.loc["block10":"block13", "from block10 (1 epoch)"] > 0).all()
assert deep_log["val_loss"].iloc[0] > fine_log_05["val_loss"].iloc[0] - 0.02  # not clearly better
assert abs(deep_log["val_accuracy"].iloc[0] - fine_log_05["val_accuracy"].iloc[0]) <= 3 / 240

# %% [markdown] tags=[]
# More weights move, validation does not improve in any way one could see. Almost twice as many
# weights train (2.8 million against 1.5), and the table shows blocks 10 to 13, untouched in 05,
# moving about as far as the top blocks do. Yet after one epoch the validation photos get the same
# top-1 as after 05's first epoch, 208 of 240, and a validation loss that differs in the third
# decimal (0.310 against 0.311). With 834 training photos there is little for the lower blocks to
# learn: their edges and textures already serve every breed, which is why fine-tuning starts at
# the top. What the change does cost is compute: every step now backpropagates through four more
# blocks and updates almost twice the weights. (One epoch, not 2; 05's second epoch lowered its
# validation loss by another 0.002. The printed time of the epoch depends as much on what else
# the machine is doing.)

# %% [markdown] tags=[]
# ## Exercise 4: `backbone_lr_multiplier = 1.0`
#
# 05's top two blocks, but at the head's rate, 1e-4, instead of 1e-5.

# %% tags=[]
one_model, one_log, _, same = fine_tune("one_rate", fine_tune_from, 1.0)
print(f"started as 05's stage 2 did (weights, photos, order): {same}")
print(compare(one_log, "one rate").round(4).to_string())
moved["one rate (1 epoch)"] = drift({"one rate": one_model})["one rate"]
print("how far each block's kernels moved from ImageNet's:")
print(moved.map(lambda v: f"{v:.3%}").to_string())
faster = (moved["one rate (1 epoch)"] / moved["05 (2 epochs)"]).loc[["block14", "block15", "top"]]
print(f"one rate against 05's 2 epochs at 0.1x, blocks 14, 15 and top: {faster.round(1).tolist()}")

# %% tags=[]
assert same
assert (faster > 2).all()  # one epoch at the full rate moved them further than 05's two
assert abs(one_log["val_loss"].iloc[0] - fine_log_05["val_loss"].iloc[0]) < 0.03
assert abs(one_log["val_accuracy"].iloc[0] - fine_log_05["val_accuracy"].iloc[0]) <= 3 / 240

# %% [markdown] tags=[]
# The backbone moves much faster, validation hardly notices. In one epoch at the full rate the
# top blocks' kernels moved six to seven times as far as in 05's two epochs at 0.1x (the last
# column against the first). Yet the validation loss after that epoch is 0.308 against 05's
# 0.311, with one photo fewer right (86.25% against 86.67%): differences this small, after one
# epoch, say neither "better" nor "worse". The training loss of the epoch is a little higher
# (0.473 against 0.461): the features shift under the head while it learns. So at demo scale
# and this short, one rate changes little that one can measure. The 0.1x guards long runs: over
# the original's 20 epochs of the whole of Xception, pretrained filters moving ten times faster
# would drift ever further from what 1.3 million ImageNet photos taught them, towards what fits
# a few hundred photos per breed. (One epoch, not 2, as in exercise 3.)

# %% [markdown] tags=[]
# ## Exercise 5: mirrored photos, on 360 photos
#
# 05's saved model on the validation and holdout photos together, each photo as it is and
# mirrored, as 05 did on the holdout alone.

# %% tags=[]
labels, plain_logits, mirror_logits, mirror_seconds = [], [], [], 0.0
for split in ("val", "holdout"):
    labels.append(split_labels(table, split))
    plain_logits.append(model_05.predict(datasets[split], verbose=0))
    started = time.perf_counter()
    mirror_logits.append(model_05.predict(datasets[split].map(lambda x, y: (x[:, :, ::-1, :], y)),
                                          verbose=0))  # fmt: skip
    mirror_seconds += time.perf_counter() - started
y = np.concatenate(labels)
plain = np.concatenate(plain_logits)
both = plain + np.concatenate(mirror_logits)
plain_hits, flip_hits = plain.argmax(axis=1) == y, both.argmax(axis=1) == y
fixed, broke, p_value = mcnemar(flip_hits, plain_hits)
n_holdout = len(labels[1])
print(
    f"holdout alone, with mirroring: {flip_hits[-n_holdout:].mean():.1%} (05's model card: "
    f"{card_05.metrics['holdout_accuracy']:.1%}, test_time_flip {card_05.test_time_flip})"
)
print(
    f"{len(y)} photos: top-1 {plain_hits.mean():.1%} without mirroring, {flip_hits.mean():.1%} "
    f"with; mirroring fixed {fixed} and broke {broke}: p = {p_value:.2f}"
)
print(f"the mirrored pass over {len(y)} photos, time: {mirror_seconds:.0f} s")

# %% tags=[]
assert abs(flip_hits[-n_holdout:].mean() - card_05.metrics["holdout_accuracy"]) < 1e-6
assert p_value > 0.05

# %% [markdown] tags=[]
# Not on this evidence. On the 360 photos mirroring fixed 6 and broke 3: top-1 goes from 86.7% to
# 87.5%, three photos, and McNemar's p = 0.51 says a split at least this uneven of 9
# disagreements comes by chance about half the time. Three times 05's 120 photos did not make
# the gain visible; the bench run's 1,439 photos showed +0.7 points at p = 0.13, likely but
# still not proven. The cost is certain: a second pass of the whole network for every photo,
# twice the compute in 06 and twice the latency in the app (the mirrored pass alone took the
# time printed). Worth it where compute is cheap and a fraction of a point matters (batch
# evaluation); not where every answer must be fast. (The validation photos chose 05's epochs,
# which flatters both answers alike; the comparison between them stays fair.)

# %% [markdown] tags=[]
# ## Questionnaire: short answers
#
# 1. Filters already trained on 1.3 million photos: edges, textures, fur, eyes, faces, up to
#    whole dog parts, and an output layer with a row for each of 120 dog breeds. 04's random
#    weights had to learn all that from a few hundred photos per breed.
# 2. With the backbone frozen and the photos not augmented, a photo's features are the same every
#    epoch, so one pass computes them and the head trains on the vectors. In stage 2 the
#    backbone's weights change at every step and the photos are augmented anew each epoch, so
#    the features must be computed again: forward and backward through the whole network.
# 3. Its weights are a row per class over the same pooled features: where a breed is an ImageNet
#    class (matched by WordNet id), the head copies that class's row and bias. It needs the
#    same backbone with the same ImageNet weights (features in the order the rows expect), and
#    breeds that carry their WordNet id; other breeds start random.
# 4. Adam divides each step by the running size of the gradient, so multiplying a gradient by
#    0.1 divides that size by 10 too, and the step stays the same; multiplying the learning
#    rate makes the step 10 times smaller.
# 5. Batches of 32 photos of a new data set give noisy, shifted statistics; updating ImageNet's
#    moving means and variances with them would change the features under the head that was
#    just trained on them. A frozen BatchNorm in Keras 3 runs in inference mode, with
#    ImageNet's statistics.
# 6. Only the photos on which the two answers disagree: how many one gets right that the other
#    gets wrong, and the reverse; with no real difference each is a coin toss. Two accuracies
#    alone hide the pairing: the same hard photos are wrong for both, and a gap of a few photos
#    means little if they disagree on many.
