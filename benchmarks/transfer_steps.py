"""What each step adds to the transfer model's holdout top-1 on the bench split (issue: aim 90%).

Steps, each on frozen ImageNet backbones' cached features (no fine-tuning): a random new head;
a head started from ImageNet's rows for these breeds; + test-time horizontal flips; + an
ensemble of backbones. Features are cached in <data_dir>/features/ so re-runs take seconds.
    python benchmarks/transfer_steps.py [--data-dir data/bench] [--backbones NAME,NAME]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import tensorflow as tf

from helpers.backbones import build_feature_extractor, get_backbone, imagenet_head_for
from helpers.data import make_dataset, read_split
from helpers.models import head_only_model, set_head_columns
from helpers.paths import project_path, split_dir
from helpers.train import (
    backbone_features,
    compile_classifier,
    features_dataset,
    fit,
    seed_everything,
)


def cached_features(name: str, data_dir: str, split: str, flip: bool, table) -> np.ndarray:
    """Return (and cache on disk) pooled features of one split, optionally of mirrored photos."""
    size = get_backbone(name).image_size
    path = (
        project_path(data_dir) / "features" / f"{name}-{size}-{split}{'-flip' if flip else ''}.npz"
    )
    if path.exists():
        return np.load(path)["features"]
    ds = make_dataset(split_dir(data_dir), split, size, 64, shuffle=False, cache=False, table=table)
    if flip:
        ds = ds.map(lambda x, y: (tf.image.flip_left_right(x), y))
    features, _ = backbone_features(build_feature_extractor(name, "imagenet"), ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, features=features)
    return features


def train_head(name, classes, x_train, y_train, x_val, y_val, init: str, seed: int):
    """Return a head trained on cached features (30 epochs, early stopping on val_loss)."""
    seed_everything(seed)
    head = head_only_model(x_train.shape[1:], len(classes), dropout=0.2)
    compile_classifier(head, 1e-3)
    if init == "imagenet":
        set_head_columns(head, *imagenet_head_for(name, classes))
    with tempfile.TemporaryDirectory() as run_dir:
        fit(head, features_dataset(x_train, y_train, 64, shuffle=True, seed=seed),
            features_dataset(x_val, y_val, 256), run_dir=run_dir, epochs=30, patience=3,
            tensorboard=False, verbose=0)  # fmt: skip
    return head


def probs(head, features: np.ndarray) -> np.ndarray:
    """Return softmax probabilities of a head on features."""
    return tf.nn.softmax(head.predict(features, batch_size=1024, verbose=0)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data/bench")
    parser.add_argument("--backbones", default="efficientnet_lite2,efficientnet_lite0")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    table, classes = read_split(split_dir(args.data_dir))
    labels = {
        s: table.loc[table["split"] == s, "label"].to_numpy() for s in ("train", "val", "holdout")
    }
    rows, tta_probs = [], []
    for name in args.backbones.split(","):
        start = time.perf_counter()
        x = {s: cached_features(name, args.data_dir, s, False, table) for s in labels}
        flipped = cached_features(name, args.data_dir, "holdout", True, table)
        seconds = time.perf_counter() - start
        for init in ("random", "imagenet"):
            head = train_head(
                name, classes, x["train"], labels["train"], x["val"], labels["val"], init, args.seed
            )
            p = probs(head, x["holdout"])
            rows.append(
                (f"{name}: {init} head", np.mean(p.argmax(1) == labels["holdout"]), seconds)
            )
        p_tta = (p + probs(head, flipped)) / 2
        tta_probs.append(p_tta)
        rows.append(
            (
                f"{name}: imagenet head + flip TTA",
                np.mean(p_tta.argmax(1) == labels["holdout"]),
                seconds,
            )
        )
    if len(tta_probs) > 1:
        ensemble = np.mean(tta_probs, axis=0)
        rows.append(
            (
                "ensemble of the above (mean of TTA probabilities)",
                np.mean(ensemble.argmax(1) == labels["holdout"]),
                0.0,
            )
        )
    base = rows[0][1]
    print(f"holdout photos: {len(labels['holdout'])}, breeds: {len(classes)}")
    print("| step | holdout top-1 | vs first row | feature time s |\n| --- | ---: | ---: | ---: |")
    for step, top1, seconds in rows:
        print(f"| {step} | {top1:.1%} | {100 * (top1 - base):+.1f} pts | {seconds:.0f} |")


if __name__ == "__main__":
    main()
