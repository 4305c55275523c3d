"""Zero-shot accuracy of the embedded default model on the shared Stanford Dogs photos, and speed.

Prints one table: top-1/top-5 over the 120 breeds (argmax restricted to them) and the is-a-dog
rate, then images per second at batch 1 and 32 for EfficientNet-Lite0/1/2 and Xception (random
weights, 299 px) on this machine. `--limit N` keeps N photos per breed for a quick run.
    python benchmarks/zero_shot.py [--limit N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import helpers

DATASET = (
    Path(helpers.__file__).resolve().parents[1].parent / "shared" / "datasets" / "stanford-dogs-120"
)
CHUNK = 256  # photos decoded at a time, to bound memory


def zero_shot(limit: int | None) -> dict[str, float]:
    """Return top-1, top-5 and is-a-dog rate of the default model on the shared photos."""
    from helpers.serving.default_model import default_model_dir
    from helpers.serving.predict import Predictor, images_to_array

    predictor = Predictor(default_model_dir())
    wnids = [c["wnid"] for c in predictor.classes]
    folders = sorted(p for p in DATASET.iterdir() if p.is_dir())
    files = [f for d in folders for f in sorted(d.glob("*.jpg"))[:limit]]
    labels = np.array([wnids.index(f.parent.name.split("-")[0]) for f in files])
    columns = np.array(sorted(set(labels)))  # the 120 Stanford breeds among the model's classes
    top1 = top5 = dogs = 0
    for start in range(0, len(files), CHUNK):
        batch = images_to_array(files[start : start + CHUNK], predictor.image_size)
        probs = predictor.probabilities(batch)
        ranked = columns[np.argsort(-probs[:, columns], axis=1)[:, :5]]
        truth = labels[start : start + CHUNK]
        top1 += int((ranked[:, 0] == truth).sum())
        top5 += int((ranked == truth[:, None]).any(axis=1).sum())
        dogs += int((probs[:, predictor.dog_classes].sum(1) >= predictor.threshold).sum())
    n = len(files)
    return {"photos": n, "top1": top1 / n, "top5": top5 / n, "is_dog": dogs / n}


def speed(name: str, weights: str | None, batch: int, repeats: int) -> float:
    """Return images per second of a backbone's ImageNet classifier at one batch size."""
    import tensorflow as tf

    from helpers.models.backbones import build_imagenet_classifier, get_backbone

    model = build_imagenet_classifier(name, weights=weights)
    size = get_backbone(name).image_size
    call = tf.function(lambda x: model(x, training=False))
    x = tf.random.uniform((batch, size, size, 3), 0, 255)
    call(x)  # trace and warm up
    start = time.perf_counter()
    for _ in range(repeats):
        call(x).numpy()
    return batch * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="photos per breed (default: all 120)")
    args = parser.parse_args()
    started = time.perf_counter()
    result = zero_shot(args.limit)
    seconds = time.perf_counter() - started
    print(f"Zero-shot, embedded default model, {result['photos']} photos, {seconds:.0f} s")
    print("| top-1 (120 breeds) | top-5 | is-a-dog rate |\n|---|---|---|")
    print(f"| {result['top1']:.2%} | {result['top5']:.2%} | {result['is_dog']:.2%} |\n")
    print("| backbone | weights | px | img/s batch 1 | img/s batch 32 |\n|---|---|---|---|---|")
    models = [(f"efficientnet_lite{i}", "imagenet") for i in range(3)] + [("xception", None)]
    for name, weights in models:
        from helpers.models.backbones import get_backbone

        one = speed(name, weights, 1, 20 if args.limit else 50)
        many = speed(name, weights, 32, 2 if args.limit else 5)
        size = get_backbone(name).image_size
        print(f"| {name} | {weights or 'random'} | {size} | {one:.1f} | {many:.1f} |", flush=True)


if __name__ == "__main__":
    main()
