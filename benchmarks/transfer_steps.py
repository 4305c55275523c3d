"""What each step adds to the transfer model's top-1 on the bench split (issue: aim for 90%).

Every step runs on frozen ImageNet backbones' pooled features, cached in <data_dir>/features/
so re-runs take seconds: ImageNet's own output rows (zero-shot); a new head, random or started
from those rows; gentler head training; test-time horizontal flips; a larger test size, then
training at it too; and, measured but not used by params/bench.yaml, the head retrained on
train+val and ensembles with other backbones. Steps are chosen on val; holdout is only reported.
    python benchmarks/transfer_steps.py [--data-dir data/bench] [--backbone NAME] [--size N]
        [--ensemble NAME@SIZE,NAME@SIZE]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import tensorflow as tf

from helpers.formats import SPLITS
from helpers.models import head_only_model, set_head_columns
from helpers.models.backbones import build_feature_extractor, get_backbone, imagenet_head_for
from helpers.paths import project_path, split_dir
from helpers.training import (
    backbone_features,
    compile_classifier,
    features_dataset,
    fit,
    seed_everything,
)
from helpers.training.data import make_dataset, read_split

FEATURE_SECONDS: dict[str, float] = {}  # "<backbone>@<size>" -> seconds computing features


class Features:
    """Pooled features of one backbone at one size, computed once and cached on disk."""

    def __init__(self, name: str, size: int, data_dir: str, table):
        self.name, self.size, self.data_dir, self.table = name, size, data_dir, table

    def __call__(self, split: str, flip: bool = False) -> np.ndarray:
        suffix = "-flip" if flip else ""
        file = f"{self.name}-{self.size}-{split}{suffix}.npz"
        path = project_path(self.data_dir) / "features" / file
        if path.exists():
            return np.load(path)["features"]
        start = time.perf_counter()
        ds = make_dataset(split_dir(self.data_dir), split, self.size, 64, shuffle=False,
                          cache=False, table=self.table)  # fmt: skip
        if flip:
            ds = ds.map(lambda x, y: (tf.image.flip_left_right(x), y))
        model = build_feature_extractor(self.name, "imagenet", image_size=self.size)
        features, _ = backbone_features(model, ds)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, features=features)
        key = f"{self.name}@{self.size}"
        FEATURE_SECONDS[key] = FEATURE_SECONDS.get(key, 0.0) + time.perf_counter() - start
        return features

    def views(self, split: str, flip: bool) -> list[np.ndarray]:
        """The split's features, plus those of its mirrored photos when `flip`."""
        return [self(split), self(split, True)] if flip else [self(split)]


class Head:
    """A dense head trained on cached features; `probs` averages logits over views."""

    def __init__(self, init, n_features: int, n_classes: int, lr: float, dropout: float):
        self.model = head_only_model((n_features,), n_classes, dropout=dropout)
        compile_classifier(self.model, lr)
        if init is not None:
            set_head_columns(self.model, *init, np.ones(n_classes, bool))

    def train(self, x, y, x_val=None, y_val=None, epochs: int = 60, seed: int = 42) -> int:
        """Train (early stopping on val_loss when val is given); return the best epoch."""
        seed_everything(seed)
        val = None if x_val is None else features_dataset(x_val, y_val, 256)
        with tempfile.TemporaryDirectory() as run_dir:
            history = fit(self.model, features_dataset(x, y, 64, shuffle=True, seed=seed), val,
                          run_dir=run_dir, epochs=epochs, patience=5, tensorboard=False,
                          verbose=0)  # fmt: skip
        losses = history.history.get("val_loss")
        return int(np.argmin(losses)) + 1 if losses else epochs

    def probs(self, views: list[np.ndarray]) -> np.ndarray:
        """Softmax of the logits averaged over views of the same photos (plain, mirrored)."""
        logits = np.mean([self.model.predict(v, batch_size=1024, verbose=0) for v in views], 0)
        return tf.nn.softmax(logits).numpy()


def zero_shot_probs(init, views: list[np.ndarray]) -> np.ndarray:
    """ImageNet's own output rows for the breeds, softmax over the breeds only."""
    kernel, bias = init
    return tf.nn.softmax(np.mean([v @ kernel + bias for v in views], 0)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data/bench")
    parser.add_argument("--backbone", default="efficientnet_lite2")
    parser.add_argument("--size", type=int, default=340, help="the larger size to test, train")
    parser.add_argument("--ensemble", default="efficientnet_lite1@277,efficientnet_lite0@224",
                        help="other backbones to average with, each tested at a size")  # fmt: skip
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    table, classes = read_split(split_dir(args.data_dir))
    y = {s: table.loc[table["split"] == s, "label"].to_numpy() for s in SPLITS}
    n, seed = len(classes), args.seed
    rows: list[tuple[str, np.ndarray, np.ndarray]] = []  # step, val probs, holdout probs

    def add(step: str, probs: tuple[np.ndarray, np.ndarray]) -> None:
        rows.append((step, *probs))
        top1 = [
            np.mean(p.argmax(1) == y[s]) for p, s in zip(probs, ("val", "holdout"), strict=True)
        ]
        print(f"{step}: val {top1[0]:.2%}, holdout {top1[1]:.2%}", flush=True)

    def head_on(feats: Features, init, lr=1e-4, dropout=0.5, flip=True, test=None):
        """Train a head on `feats` (early stopping on val); probabilities on `test` features."""
        head = Head(init, feats("train").shape[1], n, lr, dropout)
        epochs = head.train(feats("train"), y["train"], feats("val"), y["val"], seed=seed)
        test = test or feats
        return head, epochs, (head.probs(test.views("val", flip)),
                              head.probs(test.views("holdout", flip)))  # fmt: skip

    name = args.backbone
    native = Features(name, get_backbone(name).image_size, args.data_dir, table)
    kernel, bias, found = imagenet_head_for(name, classes)
    init = (kernel, bias) if found.all() else None
    size = f"{native.size} px"
    add(f"{name} at {size}: ImageNet's own rows (zero-shot)",
        tuple(zero_shot_probs(init, [native(s)]) for s in ("val", "holdout")))  # fmt: skip
    add("new head, random init (lr 1e-3, dropout 0.2)",
        head_on(native, None, 1e-3, 0.2, flip=False)[2])  # fmt: skip
    add("new head from ImageNet's rows (lr 1e-3, dropout 0.2)",
        head_on(native, init, 1e-3, 0.2, flip=False)[2])  # fmt: skip
    add("+ gentler head training (lr 1e-4, dropout 0.5)", head_on(native, init, flip=False)[2])
    add("+ test-time flip", head_on(native, init)[2])
    large = Features(name, args.size, args.data_dir, table)
    add(
        f"+ tested at {args.size} px (head trained at {size})", head_on(native, init, test=large)[2]
    )
    _, epochs, final = head_on(large, init)
    add(f"+ trained at {args.size} px too: the params/bench.yaml recipe", final)

    # Measured, not used: more data for the head, and more backbones.
    full = Head(init, large("train").shape[1], n, 1e-4, 0.5)
    full.train(np.concatenate([large("train"), large("val")]),
               np.concatenate([y["train"], y["val"]]), epochs=epochs, seed=seed)  # fmt: skip
    add(f"(not used) head retrained on train+val for {epochs} epochs (val is then seen)",
        tuple(full.probs(large.views(s, True)) for s in ("val", "holdout")))  # fmt: skip
    members = [final]
    for part in filter(None, args.ensemble.split(",")):
        other, other_size = part.split("@")
        other_native = Features(other, get_backbone(other).image_size, args.data_dir, table)
        k, b, ok = imagenet_head_for(other, classes)
        test = Features(other, int(other_size), args.data_dir, table)
        members.append(head_on(other_native, (k, b) if ok.all() else None, test=test)[2])
        add(f"(not used) + mean probabilities with {other} at {other_size} px",
            (np.mean([m[0] for m in members], 0), np.mean([m[1] for m in members], 0)))  # fmt: skip

    base = np.mean(rows[0][2].argmax(1) == y["holdout"])
    print(f"\nval photos: {len(y['val'])}, holdout photos: {len(y['holdout'])}, breeds: {n}")
    spent = ", ".join(f"{k} {v:.0f}" for k, v in FEATURE_SECONDS.items()) or "0 (all cached)"
    print(f"feature seconds this run: {spent}")
    print("| step | val top-1 | holdout top-1 | holdout top-5 | vs first row |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for step, p_val, p_hold in rows:
        top1 = np.mean(p_hold.argmax(1) == y["holdout"])
        top5 = np.mean((np.argsort(-p_hold, axis=1)[:, :5] == y["holdout"][:, None]).any(1))
        val = np.mean(p_val.argmax(1) == y["val"])
        print(f"| {step} | {val:.1%} | {top1:.1%} | {top5:.1%} | {100 * (top1 - base):+.1f} pts |")


if __name__ == "__main__":
    main()
