"""Does the full-scale fast path keep the GPUs busy, for each of the three models?

One short run for a lent GPU machine (under 8 minutes on one H200): the shared Stanford Dogs
photos at 299 px through `pipeline="fast"` (decode-once shards of pixels, stateless augmentation
in parallel maps), then each model of helpers.models (simple CNN, Xception from scratch, the
EfficientNet-Lite2 ImageNet backbone fully fine-tuned: the offline stand-in for the full run's
Xception) trained for a few hundred steps with mixed precision under a MirroredStrategy over all
GPUs. Prints images/s of the pipeline alone, of each model on one in-memory batch (the model
alone) and of each model fed by the pipeline; the pipeline limits training when the last is
clearly below the model alone. `--smoke` runs the same code on a CPU in about a minute (tiny
sizes, 2 steps): the test in tests/code runs it.
    python benchmarks/gpu_check.py [--smoke] [--steps 200] [--batch 128] [--per-breed 50]
        [--dataset ../shared/datasets/stanford-dogs-120] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

# input_pipeline is this script's neighbour (its folder is on sys.path when run as a script).
from input_pipeline import DATASET, build_tree

from helpers.models import (
    build_feature_extractor,
    simple_cnn,
    transfer_classifier,
    xception_scratch,
)
from helpers.training import compile_classifier, set_backbone_trainable
from helpers.training.data import fast_augmentation, fast_dataset
from helpers.training.hardware import use_xla

FULL = dict(breeds=120, per_breed=50, size=299, batch=128, steps=200, warmup=10,
            backbone="efficientnet_lite2")  # fmt: skip
SMOKE = dict(breeds=3, per_breed=8, size=72, batch=4, steps=2, warmup=1,
             backbone="efficientnet_lite0")  # fmt: skip


class StepTimer(keras.callbacks.Callback):
    """Seconds from the end of the warm-up steps to the end of the last step; reading the loss
    waits for the device, so queued steps are counted where they ran."""

    def __init__(self, warmup: int):
        super().__init__()
        self.warmup, self.start, self.seconds = warmup, 0.0, 0.0

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.warmup - 1:
            float((logs or {})["loss"])
            self.start = time.perf_counter()

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.start


def build_models(name: str, classes: int, size: int, backbone: str) -> keras.Model:
    """One of the three doggo models at `size` px, all weights trainable."""
    if name == "simple CNN":
        return simple_cnn(classes, size)
    if name == "Xception from scratch":
        return xception_scratch(classes, size)
    model = transfer_classifier(build_feature_extractor(backbone, "imagenet", image_size=size),
                                classes, dropout=0.2)  # fmt: skip
    set_backbone_trainable(model, True)
    return model


def training_rate(
    model: keras.Model, ds: tf.data.Dataset, batch: int, steps: int, warmup: int
) -> float:
    """Training images/s over `steps` steps of `ds` after `warmup` steps."""
    timer = StepTimer(warmup)
    model.fit(ds, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0)
    return steps * batch / timer.seconds


def pipeline_rate(ds: tf.data.Dataset, batch: int, steps: int, warmup: int) -> float:
    """Images/s of the input pipeline alone."""
    iterator = iter(ds)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and steps, for a CPU")
    parser.add_argument("--steps", type=int, help="timed training steps per model")
    parser.add_argument("--batch", type=int, help="global batch size")
    parser.add_argument("--per-breed", type=int, help="photos per breed (of the first 120)")
    parser.add_argument("--dataset", type=Path, default=DATASET, help="breed folders of JPEGs")
    parser.add_argument("--cache-dir", help="keep the shards here (default: a temporary folder)")
    xla_help = "auto: as helpers.training.hardware.use_xla (one replica only)"
    parser.add_argument("--xla", choices=("auto", "on", "off"), default="auto", help=xla_help)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    settings = {**(SMOKE if args.smoke else FULL)}
    given = {"steps": args.steps, "batch": args.batch, "per_breed": args.per_breed}
    settings.update({k: v for k, v in given.items() if v})
    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy()  # every local GPU; the CPU when there is none
    replicas = strategy.num_replicas_in_sync
    keras.mixed_precision.set_global_policy("mixed_float16" if gpus else "float32")
    jit = use_xla(len(gpus), replicas, None if args.xla == "auto" else args.xla == "on")
    print(f"{len(gpus)} GPU(s), {replicas} replica(s), mixed precision {bool(gpus)}, XLA {jit}")
    with tempfile.TemporaryDirectory() as tmp:
        _, split_dir = build_tree(
            Path(tmp), settings["breeds"], settings["per_breed"], args.dataset
        )
        cache_dir = Path(args.cache_dir or Path(tmp) / "cache")
        results = run_checks(split_dir, cache_dir, settings, strategy, jit)
    print_table(results, settings, replicas)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": settings, **results}, indent=1))


def run_checks(split_dir: Path, cache_dir: Path, settings: dict, strategy, jit: bool) -> dict:
    """Write the shards, then time the pipeline alone and each model alone and fed by it."""
    size, batch, steps, warmup = (settings[k] for k in ("size", "batch", "steps", "warmup"))
    start = time.perf_counter()
    ds = fast_dataset(split_dir, "train", size, batch, seed=0, augment=fast_augmentation(0),
                      drop_remainder=True, cache_dir=cache_dir)  # fmt: skip
    photos = settings["breeds"] * settings["per_breed"]
    cache_seconds = time.perf_counter() - start
    ds = ds.repeat()
    results = {
        "cache_write_img_s": photos / cache_seconds,
        "pipeline_img_s": pipeline_rate(ds, batch, steps, warmup),
        "models": {},
    }
    one_batch = tf.data.Dataset.from_tensors(next(iter(ds))).repeat()
    for name in ("simple CNN", "Xception from scratch", f"{settings['backbone']} fine-tuned"):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = build_models(name, settings["breeds"], size, settings["backbone"])
            compile_classifier(model, 1e-4, jit_compile=jit)
        alone = training_rate(model, one_batch, batch, steps, warmup)
        fed = training_rate(model, ds, batch, steps, warmup)
        results["models"][name] = {"params": model.count_params(), "model_alone_img_s": alone,
                                   "training_img_s": fed}  # fmt: skip
        print(f"{name}: model alone {alone:.0f} img/s, fed by the pipeline {fed:.0f} img/s")
    return results


def print_table(results: dict, settings: dict, replicas: int) -> None:
    """Print the markdown table."""
    print(f"\n{settings['breeds'] * settings['per_breed']} photos at {settings['size']} px, "
          f"global batch {settings['batch']}, {replicas} replica(s), {settings['steps']} timed "
          f"steps; shards written at {results['cache_write_img_s']:.0f} img/s")  # fmt: skip
    print("| model | parameters | pipeline alone img/s | model alone img/s | training img/s | "
          "training / model alone |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in results["models"].items():
        print(f"| {name} | {row['params']:,} | {results['pipeline_img_s']:.0f} | "
              f"{row['model_alone_img_s']:.0f} | {row['training_img_s']:.0f} | "
              f"{row['training_img_s'] / row['model_alone_img_s']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
