"""How fast does each doggo model train on this machine, and what does the feature cache save?

Prints one table: training images/s of the simple CNN, Xception from scratch and the transfer
model (EfficientNet-Lite; random weights, speed does not depend on them): its head on cached
features, the same head through the frozen backbone every step, fine-tuning the top two blocks,
and the one-off feature pass (`helpers.training.backbone_features`, and compiled), at the demo
settings (params/demo.yaml) and the bench settings (params/bench.yaml). Batches are synthetic and
held in memory, so only the model is measured: warm-up steps, then timed steps. Then the
feature-cache speedup of stage one: per epoch, and for a whole stage one of --epochs epochs
including the feature pass. --quick: demo settings only, fewer steps.
    python benchmarks/training_speed.py [--quick] [--epochs 30] [--settings demo bench]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from helpers.models import head_only_model, simple_cnn, transfer_classifier, xception_scratch
from helpers.models.backbones import build_feature_extractor, top_blocks_layer
from helpers.training import backbone_features, compile_classifier, set_backbone_trainable

# (classes, CNN px and batch, Xception px and batch, Lite backbone, px and batch) from params/.
SETTINGS = {
    "demo": dict(classes=10, cnn=(64, 32), xception=(96, 32), lite=("lite0", 224, 32)),
    "bench": dict(classes=120, cnn=(96, 64), xception=(96, 32), lite=("lite2", 260, 64)),
}


def batch_of(batch: int, shape: tuple[int, ...], classes: int) -> tuple[tf.Tensor, tf.Tensor]:
    """A synthetic batch: uniform values in [0, 255] and random labels."""
    x = tf.random.uniform((batch, *shape), 0, 255)
    return x, tf.random.uniform((batch,), 0, classes, dtype=tf.int32)


def rate(step: Callable[[], object], batch: int, warmup: int, seconds: float) -> float:
    """Images/s of `step` after `warmup` calls: timed calls until `seconds` pass (at least 2)."""
    for _ in range(warmup):
        step()
    steps, start = 0, time.perf_counter()
    while steps < 2 or time.perf_counter() - start < seconds:
        step()
        steps += 1
    return steps * batch / (time.perf_counter() - start)


def train_rate(
    model: keras.Model, batch: int, classes: int, timing: dict, lr_multiplier: float | None = None
) -> float:
    """Training images/s of a model (compiled here, as the notebooks do) on one in-memory batch."""
    compile_classifier(model, 1e-3, backbone_lr_multiplier=lr_multiplier)
    x, y = batch_of(batch, model.input_shape[1:], classes)
    return rate(lambda: model.train_on_batch(x, y), batch, **timing)


def feature_pass_rates(backbone: keras.Model, batch: int, classes: int, timing: dict) -> dict:
    """Images/s of the one-off feature pass as notebook 05 runs it (backbone_features calls the
    backbone eagerly) and compiled (predict_on_batch)."""
    x, y = batch_of(batch, backbone.input_shape[1:], classes)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat(4)
    return {
        "feature pass": rate(lambda: backbone_features(backbone, ds), 4 * batch, **timing),
        "feature pass, compiled": rate(lambda: backbone.predict_on_batch(x), batch, **timing),
    }


def lite_rates(variant: str, size: int, batch: int, classes: int, timing: dict) -> dict:
    """Images/s of the transfer model's stage one (cached or not), fine-tuning, feature pass."""
    backbone = build_feature_extractor(f"efficientnet_{variant}", None, image_size=size)
    rates = feature_pass_rates(backbone, batch, classes, timing)
    head = head_only_model(backbone.output_shape[1:], classes)
    rates["head on cached features"] = train_rate(head, batch, classes, timing)
    model = transfer_classifier(backbone, classes)
    rates["head through frozen backbone"] = train_rate(model, batch, classes, timing)
    top_two = top_blocks_layer(f"efficientnet_{variant}", 2)
    set_backbone_trainable(model, True, from_layer=top_two)
    rates[f"fine-tune from {top_two}"] = train_rate(model, batch, classes, timing, 0.1)
    return rates


def measure(name: str, timing: dict) -> list[tuple[str, str, int, int, float]]:
    """Rows (settings, model, px, batch, images/s) for one settings file."""
    s = SETTINGS[name]
    classes, (cnn_px, cnn_batch), (x_px, x_batch) = s["classes"], s["cnn"], s["xception"]
    rows = [
        (name, "simple CNN", cnn_px, cnn_batch,
         train_rate(simple_cnn(classes, cnn_px), cnn_batch, classes, timing)),
        (name, "Xception from scratch", x_px, x_batch,
         train_rate(xception_scratch(classes, x_px), x_batch, classes, timing)),
    ]  # fmt: skip
    variant, size, batch = s["lite"]
    for label, value in lite_rates(variant, size, batch, classes, timing).items():
        rows.append((name, f"Lite{variant[-1]}: {label}", size, batch, value))
    keras.backend.clear_session()
    return rows


def print_table(rows: list[tuple[str, str, int, int, float]], epochs: int) -> None:
    """Print the markdown table and the feature-cache speedups."""
    print("| settings | model | px | batch | ms/step | img/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for settings, model, px, batch, ips in rows:
        print(f"| {settings} | {model} | {px} | {batch} | {1000 * batch / ips:.0f} | {ips:.1f} |")
    for settings in dict.fromkeys(r[0] for r in rows):
        ips = {r[1].split(": ")[-1]: r[4] for r in rows if r[0] == settings}
        cached, frozen = ips["head on cached features"], ips["head through frozen backbone"]
        # Per image, a cached stage one pays one feature pass, then `epochs` cheap epochs.
        whole = [
            (epochs / frozen) / (1 / ips[feats] + epochs / cached)
            for feats in ("feature pass", "feature pass, compiled")
        ]
        print(f"{settings}: feature cache speedup of stage one {cached / frozen:,.0f}x per epoch, "
              f"{whole[0]:.1f}x for {epochs} epochs including the feature pass "
              f"({whole[1]:.1f}x with the compiled feature pass)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="demo only, 1 warm-up, 2 steps")
    parser.add_argument("--epochs", type=int, default=30, help="stage one epochs (bench: 30)")
    parser.add_argument(
        "--settings", nargs="+", choices=SETTINGS, help="default: all (quick: demo)"
    )
    args = parser.parse_args()
    args.settings = args.settings or (["demo"] if args.quick else list(SETTINGS))
    keras.utils.set_random_seed(0)
    timing = dict(warmup=1, seconds=1.0) if args.quick else dict(warmup=3, seconds=10.0)
    rows = [row for name in args.settings for row in measure(name, timing)]
    print_table(rows, args.epochs)


if __name__ == "__main__":
    main()
