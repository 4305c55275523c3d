"""Is doggo's tf.data input pipeline fast enough, and how does it compare with the original's?

Prints one table: images/s of `helpers.training.data.make_dataset`'s two pipelines, first epoch
and second epoch, with and without augmentation, against Keras 2's
`ImageDataGenerator.flow_from_directory` (the original's loader, from the `tf-keras` package) on
the same files, image size and batch size; plus the simple CNN's training speed at the same
settings, to show whether the input pipeline could be what limits training.
- default: parallel decode + resize, memory cache, shuffle, batch, the Keras augmentation layers.
- fast (`pipeline="fast"`): the decode-once shards of pixels, written before the timed epochs
  (their one-time cost is printed too), so epoch 1 is a new run's cold start on an existing
  cache; records kept in memory from epoch 2; stateless augmentation, one warp per photo.
Files: the first N photos of the first B breeds of ../shared/datasets/stanford-dogs-120, as
symlinks in class folders in a temporary directory. The plain rows read all 120 breeds (7,200
photos): a training split several times the shuffle buffer (2,048), as every real one is (bench
10,048, full about 36,000), or a cold epoch would time little but filling the buffer. The
augmented rows are bound by the work on each photo and read 20 breeds (1,200 photos).
Each row is the best of `--repeats` rounds in which all pipelines take turns.
    python benchmarks/input_pipeline.py [--quick] [--breeds 20] [--plain-breeds 120]
        [--per-breed 60] [--size 299] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import keras
import pandas as pd
import tensorflow as tf

import helpers
from helpers.models import simple_cnn
from helpers.training import compile_classifier
from helpers.training.data import augmentation, fast_augmentation, fast_dataset, make_dataset

DATASET = (
    Path(helpers.__file__).resolve().parents[1].parent / "shared" / "datasets" / "stanford-dogs-120"
)
# brightness_range is the original's (notebooks/03_baseline); the rest is a typical Keras 2 set.
ORIGINAL_AUGMENTATION = dict(
    rotation_range=20,
    width_shift_range=0.1,
    height_shift_range=0.1,
    zoom_range=0.1,
    horizontal_flip=True,
    brightness_range=[0.2, 0.8],
)


def build_tree(
    root: Path, breeds: int, per_breed: int, source: Path = DATASET
) -> tuple[Path, Path]:
    """Symlink the photos of `source` into root/images/<breed>/ and write a train-only split
    manifest."""
    rows = []
    for folder in sorted(p for p in source.iterdir() if p.is_dir())[:breeds]:
        (root / "images" / folder.name).mkdir(parents=True)
        for photo in sorted(folder.glob("*.jpg"))[:per_breed]:
            (root / "images" / folder.name / photo.name).symlink_to(photo)
            rows.append({"path": f"{folder.name}/{photo.name}", "breed": folder.name})
    split_dir = root / "split"
    split_dir.mkdir()
    table = pd.DataFrame(rows).assign(wnid="", split="train")
    table.to_csv(split_dir / "split.csv", index=False)
    classes = [{"name": name, "wnid": None} for name in sorted(table["breed"].unique())]
    info = {"raw_dir": str(root / "images"), "classes": classes}
    (split_dir / "split.json").write_text(json.dumps(info))
    for photo in (root / "images").rglob("*.jpg"):
        photo.read_bytes()  # into the page cache: every pipeline then reads warm files
    return root / "images", split_dir


def epoch_rates(batches: Callable[[], Iterable], n: int, epochs: int = 2) -> list[float]:
    """Images per second of each of `epochs` passes over `batches()` (n images per pass)."""
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _batch in batches():
            pass
        rates.append(n / (time.perf_counter() - start))
    return rates


def best_of(measures: dict[str, Callable[[], list[float]]], repeats: int) -> dict[str, list[float]]:
    """The best epoch-1 and epoch-2 rates of each measure over `repeats` rounds, the measures
    taking turns within a round, so a busy moment of a shared machine slows all of them alike
    and the best round shows what the code can do."""
    best: dict[str, list[float]] = {}
    for _ in range(repeats):
        for name, measure in measures.items():
            rates = measure()
            best[name] = [max(pair) for pair in zip(best.get(name, rates), rates, strict=True)]
    return best


def tf_data_rates(split_dir: Path, size: int, batch: int, n: int, augment: bool) -> list[float]:
    """Epoch 1 (decode) and epoch 2 (cached) images/s of doggo's training pipeline."""
    ds = make_dataset(split_dir, "train", size, batch, augment=augmentation(0) if augment else None)
    return epoch_rates(lambda: ds, n)


def cache_write_rate(split_dir: Path, cache_dir: Path, size: int, n: int) -> float:
    """Images/s of writing the fast pipeline's shards from the JPEGs (once per data set)."""
    start = time.perf_counter()
    fast_dataset(split_dir, "train", size, 32, cache_dir=cache_dir, progress=False)
    return n / (time.perf_counter() - start)


def fast_rates(
    split_dir: Path, cache_dir: Path, size: int, batch: int, n: int, augment: bool
) -> list[float]:
    """Epoch 1 (shards from disk) and epoch 2 (records in memory) images/s, fast pipeline."""
    ds = fast_dataset(
        split_dir,
        "train",
        size,
        batch,
        memory_cache=True,
        augment=fast_augmentation(0) if augment else None,
        cache_dir=cache_dir,
        progress=False,
    )
    return epoch_rates(lambda: ds, n)


def keras2_rates(image_dir: Path, size: int, batch: int, n: int, augment: bool) -> list[float]:
    """Epoch 1 and 2 images/s of the original's ImageDataGenerator.flow_from_directory."""
    from tf_keras.preprocessing.image import ImageDataGenerator

    generator = ImageDataGenerator(rescale=1 / 255, **(ORIGINAL_AUGMENTATION if augment else {}))
    flow = generator.flow_from_directory(
        str(image_dir), target_size=(size, size), batch_size=batch, class_mode="sparse", seed=0
    )
    return epoch_rates(lambda: (flow[i] for i in range(len(flow))), n)


def cnn_rate(classes: int, size: int, batch: int, steps: int) -> float:
    """Training images/s of the simple CNN on one in-memory batch (the model alone)."""
    model = compile_classifier(simple_cnn(classes, size), 1e-3)
    x = tf.random.uniform((batch, size, size, 3), 0, 255)
    y = tf.random.uniform((batch,), 0, classes, dtype=tf.int32)
    for _ in range(2):
        model.train_on_batch(x, y)  # trace and warm up
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 breeds x 32 photos, fewer steps")
    parser.add_argument("--breeds", type=int, default=20, help="for the augmented rows")
    parser.add_argument("--plain-breeds", type=int, default=120, help="for the plain rows")
    parser.add_argument("--per-breed", type=int, default=60)
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best of each is kept")
    args = parser.parse_args()
    if args.quick:
        args.breeds, args.plain_breeds, args.per_breed, args.repeats = 5, 5, 32, 1
    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        trees, sizes, measures = {}, {}, {}
        for label, breeds in (("plain", args.plain_breeds), ("augmented", args.breeds)):
            trees[label] = build_tree(Path(tmp) / label, breeds, args.per_breed)
            sizes[label] = sum(1 for _ in trees[label][0].rglob("*.jpg"))
        cache_dir = Path(tmp) / "cache"
        written = {
            label: cache_write_rate(split_dir, cache_dir / label, args.size, sizes[label])
            for label, (_, split_dir) in trees.items()
        }
        for label, (image_dir, split_dir) in trees.items():
            augment, n = label == "augmented", sizes[label]
            measures[f"ImageDataGenerator, {label}"] = partial(
                keras2_rates, image_dir, args.size, args.batch, n, augment
            )
            measures[f"default, {label}"] = partial(
                tf_data_rates, split_dir, args.size, args.batch, n, augment
            )
            measures[f"fast, {label}"] = partial(
                fast_rates, split_dir, cache_dir / label, args.size, args.batch, n, augment
            )
        rows = best_of(measures, args.repeats)
        # Last, as it cannot be switched off again: the notebooks' setting (seed_everything), under
        # which tf.data runs maps holding stateful ops (the Keras layers' seeds) on one thread.
        tf.config.experimental.enable_op_determinism()
        _, split_dir = trees["augmented"]
        label, n = "augmented, op determinism", sizes["augmented"]
        determinism = {
            f"default, {label}": partial(tf_data_rates, split_dir, args.size, args.batch, n, True),
            f"fast, {label}": partial(
                fast_rates, split_dir, cache_dir / "augmented", args.size, args.batch, n, True
            ),
        }
        rows.update(best_of(determinism, args.repeats))
    cnn = cnn_rate(args.breeds, args.size, args.batch, steps=3 if args.quick else 10)
    print_table(rows, cnn, written, sizes, args)


def print_table(
    rows: dict[str, list[float]],
    cnn: float,
    written: dict[str, float],
    sizes: dict[str, int],
    args: argparse.Namespace,
) -> None:
    """Print the markdown table and the ratios."""
    print(f"\nplain rows: {sizes['plain']} photos ({args.plain_breeds} breeds); augmented rows: "
          f"{sizes['augmented']} photos ({args.breeds} breeds); {args.per_breed} per breed, "
          f"{args.size} px, batch {args.batch}")  # fmt: skip
    print("| pipeline | epoch 1 img/s | epoch 2 img/s | epoch 1 vs ImageDataGenerator | "
          "epoch 2 vs ImageDataGenerator | slower epoch / CNN training |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (first, second) in rows.items():
        base = rows["ImageDataGenerator, " + name.split(", ")[1]]  # without determinism
        print(f"| {name} | {first:.0f} | {second:.0f} | {first / base[0]:.1f}x | "
              f"{second / base[1]:.1f}x | {min(first, second) / cnn:.1f}x |")  # fmt: skip
    print(f"| simple CNN training step (model only) | {cnn:.0f} | {cnn:.0f} | | | 1.0x |")
    for label, rate in written.items():
        print(f"fast: writing the {label} rows' shards once (decode + resize + write): "
              f"{rate:.0f} img/s")  # fmt: skip
    for label in ("plain", "augmented"):
        base = rows[f"ImageDataGenerator, {label}"]
        for name in ("default", "fast"):
            ours = rows[f"{name}, {label}"]
            print(f"{label}: {name}/ImageDataGenerator epoch 1 {ours[0] / base[0]:.1f}x, "
                  f"epoch 2 {ours[1] / base[1]:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
