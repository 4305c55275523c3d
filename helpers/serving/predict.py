"""Predict dog breeds with a saved model directory; shared by the CLI, the app and the notebooks.

Usage: `python -m helpers.serving [--model DIR] [--top-k K] [--json] PATH...`
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from helpers.images import ImageError, decode_image, to_rgb
from helpers.paths import MODELS_DIR, is_url

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)
BATCH_SIZE = 32
# Metric names (flat, or nested as {"holdout": {"accuracy": ...}}) that rank trained models.
RANKING_METRICS = ("holdout_accuracy", "holdout_acc", "holdout_top1", "val_accuracy", "val_acc",
                   "val_top1")  # fmt: skip

ImageSource = Image.Image | bytes | str | Path


@dataclass
class Prediction:
    """One image's answer: top-k dog breeds, the dog probability mass, or an error."""

    path: str | None = None
    top_k: list[dict[str, Any]] = field(default_factory=list)
    is_dog: bool | None = None
    dog_probability: float | None = None
    error: str | None = None

    def to_json(self) -> str:
        """Return the prediction as one line of JSON."""
        return json.dumps(asdict(self), ensure_ascii=False)

    def to_text(self) -> str:
        """Return the prediction as one human-readable line."""
        where = self.path if self.path is not None else "<image>"
        if self.error:
            return f"{where}: ERROR {self.error}"
        breeds = ", ".join(f"{c['name']} {c['probability']:.1%}" for c in self.top_k)
        verdict = "dog" if self.is_dog else "NOT A DOG"
        return f"{where}: {breeds} [{verdict}, dog probability {self.dog_probability:.1%}]"


def _read_source(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        return to_rgb(source)
    if isinstance(source, bytes):
        return decode_image(source)
    if is_url(source):  # a bucket URL (gs://...): read it as the training reader does
        import tensorflow as tf

        with tf.io.gfile.GFile(str(source), "rb") as handle:
            return decode_image(handle.read())
    return decode_image(Path(source).read_bytes())


def image_to_array(source: ImageSource, image_size: int) -> np.ndarray:
    """Decode an image (PIL, bytes or path) into the model input: (size, size, 3) float32, 0-255."""
    import tensorflow as tf  # imported late so that `--help` and errors stay fast

    pixels = np.asarray(_read_source(source), dtype=np.float32)
    resized = tf.image.resize(pixels, (image_size, image_size), method="bilinear", antialias=True)
    return resized.numpy().astype(np.float32)


def images_to_array(sources: Sequence[ImageSource], image_size: int) -> np.ndarray:
    """Decode images into one (n, size, size, 3) float32 batch; raises on the first bad one."""
    if not sources:
        return np.zeros((0, image_size, image_size, 3), np.float32)
    return np.stack([image_to_array(s, image_size) for s in sources])


def _metric_value(metrics: dict[str, Any]) -> float | None:
    for key in RANKING_METRICS:
        split, _, name = key.partition("_")
        value = metrics.get(key)
        if value is None and isinstance(metrics.get(split), dict):
            value = metrics[split].get(name)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def best_model_dir(models_dir: str | Path | None = None) -> Path | None:
    """Return the saved model under `models/` (searched recursively) with the best holdout (else
    val) accuracy, or None."""
    from helpers.formats import METADATA_FILE, MODEL_FILE
    from helpers.model_card import ModelDirError, read_card

    root = Path(models_dir) if models_dir is not None else MODELS_DIR
    best: tuple[float, str] | None = None
    for meta_file in sorted(root.rglob(METADATA_FILE)) if root.is_dir() else []:
        directory = meta_file.parent
        try:
            score = _metric_value(read_card(directory).metrics)
        except ModelDirError:
            continue  # a broken or half-written directory is not a candidate
        if score is not None and (directory / MODEL_FILE).is_file():
            candidate = (score, str(directory))
            best = candidate if best is None or candidate[0] > best[0] else best
    return Path(best[1]) if best else None


class Predictor:
    """A loaded model ready for repeated, thread-safe predictions on images."""

    def __init__(self, model_dir: str | Path | None = None):
        import tensorflow as tf

        from helpers.models.builders import averaged_outputs
        from helpers.serving.default_model import default_model_dir
        from helpers.serving.model_dir import load_model_dir

        if model_dir is None:
            model_dir = best_model_dir() or default_model_dir()
        self.model_dir = Path(model_dir)
        self.model, self.card = load_model_dir(self.model_dir)
        self.image_size = self.card.image_size
        self.classes = self.card.classes
        self.temperature = self.card.temperature or 1.0
        dogs = self.card.dog_classes
        self.dog_classes = np.array(dogs if dogs is not None else range(len(self.classes)))
        self.threshold = self.card.not_a_dog_threshold or 0.0
        self.test_time_flip = bool(self.card.test_time_flip)
        spec = tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.float32)
        # One fixed signature: traced once here, then concurrent calls share the concrete graph.
        self._call = tf.function(
            lambda x: averaged_outputs(self.model, x, flip=self.test_time_flip),
            input_signature=[spec],
        )
        self._call.get_concrete_function()

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Return class probabilities (n, classes) for a float32 batch of model inputs."""
        outputs = [
            self._call(batch[i : i + BATCH_SIZE]).numpy() for i in range(0, len(batch), BATCH_SIZE)
        ]
        out = np.concatenate(outputs) if outputs else np.zeros((0, len(self.classes)), np.float32)
        if self.card.output == "logits":
            out = out.astype(np.float64) / self.temperature
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        return out

    def result(self, probs: np.ndarray, top_k: int = 5, path: str | None = None) -> Prediction:
        """Return the answer for one probability vector: top-k dog breeds and the is-a-dog rule."""
        dog_probs = probs[self.dog_classes]
        mass = float(dog_probs.sum())
        order = self.dog_classes[np.argsort(-dog_probs, kind="stable")[:top_k]]
        top = [
            {"name": self.classes[i]["name"], "wnid": self.classes[i]["wnid"], "index": int(i),
             "probability": float(probs[i])}
            for i in order
        ]  # fmt: skip
        return Prediction(path, top, mass >= self.threshold, mass)

    def predict_arrays(
        self, batch: np.ndarray, top_k: int = 5, paths: Sequence[str | None] | None = None
    ) -> list[Prediction]:
        """Predict a batch already converted by `images_to_array`."""
        probs = self.probabilities(np.asarray(batch, np.float32))
        names = paths if paths is not None else [None] * len(probs)
        return [self.result(p, top_k, name) for p, name in zip(probs, names, strict=True)]

    def predict_images(self, images: Sequence[ImageSource], top_k: int = 5) -> list[Prediction]:
        """Predict PIL images, bytes or paths; an unreadable one gets an error result, no raise."""
        arrays: list[np.ndarray | None] = []
        errors: list[str | None] = []
        for image in images:
            try:
                arrays.append(image_to_array(image, self.image_size))
                errors.append(None)
            except (ImageError, OSError) as err:
                reason = getattr(err, "reason", type(err).__name__)
                arrays.append(None)
                errors.append(f"{reason}: {err}")
        good = [a for a in arrays if a is not None]
        batch = np.stack(good) if good else np.zeros((0, self.image_size, self.image_size, 3))
        results = iter(self.predict_arrays(batch, top_k))
        labels = [str(i) if isinstance(i, (str, Path)) else None for i in images]
        out = []
        for label, error in zip(labels, errors, strict=True):
            out.append(Prediction(label, error=error) if error else next(results))
            out[-1].path = label
        return out


def collect_paths(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (recursively, image suffixes only) into a sorted list of files."""
    files: set[Path] = set()
    for item in map(Path, inputs):
        if item.is_dir():
            files.update(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.add(item)  # a named file is always tried, so a typo gets an error line
    return sorted(files)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the prediction CLI; return 0 if every file was predicted, 1 if some failed."""
    parser = argparse.ArgumentParser(prog="python -m helpers.serving", description=__doc__)
    parser.add_argument("paths", nargs="+", help="image files or folders")
    parser.add_argument("--model", help="saved model directory (default: best trained, else "
                        "the embedded ImageNet model)")  # fmt: skip
    parser.add_argument("--top-k", type=int, default=3, help="breeds to show (default 3)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    predictor = Predictor(args.model)
    failed = 0
    files = collect_paths(args.paths)
    for start in range(0, len(files), BATCH_SIZE):
        chunk = files[start : start + BATCH_SIZE]
        for result in predictor.predict_images([str(p) for p in chunk], top_k=args.top_k):
            failed += result.error is not None
            print(result.to_json() if args.json else result.to_text(), flush=True)
    if failed:
        print(f"{failed} of {len(files)} files could not be read", file=sys.stderr)
    return 1 if failed else 0
