"""The model behind the app: loaded once, warmed, and answering decoded images thread-safely."""

from __future__ import annotations

import base64
import functools
import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from helpers.images import decode_image, sniff_format
from helpers.serving import Predictor, image_to_array

log = logging.getLogger("doggo.app")
EXPLAIN_SIZE = 384  # longest side of the Grad-CAM overlay sent back: enough for a phone screen
# Longest side over shortest side beyond which a photo is refused: no dog photo is a 20000x20
# smear, and squashing one into the model's square gives a confident nonsense answer.
MAX_ASPECT = 5.0
# Top probability from which the answer is stated plainly, or as "probably" when it also has
# twice the runner-up's; below, the page says "maybe X, or Y".
SURE, PROBABLE = 0.5, 0.25


@dataclass
class Decoded:
    """An uploaded image decoded into the model input, with what the client should know of it."""

    image: Image.Image
    array: np.ndarray
    info: dict[str, Any]
    seconds: float


def _with_article(name: str) -> str:
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _headline(is_dog: bool | None, top: list[dict[str, Any]]) -> tuple[str, str]:
    """Return (confidence, sentence) for an answer: the wording follows the top probabilities."""
    if not is_dog or not top:
        return "none", "That does not look like a dog"
    first = top[0]["probability"]
    second = top[1]["probability"] if len(top) > 1 else 0.0
    name = _with_article(top[0]["name"])
    if first >= SURE:
        return "high", f"Looks like {name}"
    if first >= PROBABLE and first >= 2 * second:
        return "medium", f"Probably {name}"
    runner_up = f", or {_with_article(top[1]['name'])}" if len(top) > 1 else ""
    return "low", f"Maybe {name}{runner_up}"


class ModelService:
    """One loaded Predictor per process, with the JSON answers the API gives."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        card = predictor.card
        self.info = {
            "name": card.name,
            "version": card.version,
            "created": card.created,
            "backbone": card.backbone,
            "image_size": predictor.image_size,
            "classes": len(predictor.classes),
            "not_a_dog_threshold": predictor.threshold,
        }
        self._grad_cam: Callable[[np.ndarray, int], np.ndarray] | None = None
        self._grad_cam_lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> ModelService:
        """Load the model (given directory, else the best trained one, else the default)."""
        return cls(Predictor(model_dir))

    def warm(self, explain: bool = True) -> float:
        """Run one dummy request so the first real one does not pay for set-up; return seconds."""
        start = time.perf_counter()
        # A real decode and resize too: the first tf.image.resize call costs ~50 ms, the first
        # eager Grad-CAM about a second more than the next ones.
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (128, 96, 64)).save(buffer, format="PNG")
        decoded = self.decode(buffer.getvalue())
        self.predictor.probabilities(decoded.array[None])
        if explain:
            self.explain(decoded, 0)
        return time.perf_counter() - start

    def decode(self, data: bytes) -> Decoded:
        """Decode image bytes into the model input; raises helpers.images.ImageError."""
        start = time.perf_counter()
        # Shrunk while decoding to what the model and the overlay use: a 12 MP photo never
        # becomes a 12 MP float array, which bounds each request's memory.
        size = self.predictor.image_size
        image = decode_image(data, min_size=size, max_aspect=MAX_ASPECT)
        array = image_to_array(image, size)
        width, height = image.info.get("original_size", image.size)
        info = {"format": sniff_format(data), "width": width, "height": height}
        return Decoded(image, array, info, time.perf_counter() - start)

    def _answer(self, probs: np.ndarray, top_k: int) -> dict[str, Any]:
        result = self.predictor.result(probs, max(top_k, 2))
        confidence, headline = _headline(result.is_dog, result.top_k)
        return {
            "is_dog": result.is_dog,
            "answer": result.top_k[0]["name"] if result.is_dog and result.top_k else "not a dog",
            "confidence": confidence,
            "headline": headline,
            "dog_probability": result.dog_probability,
            "predictions": result.top_k[:top_k],
        }

    def answered_index(self, answer: dict[str, Any], probs: np.ndarray) -> int:
        """Return the class index the answer names: its top breed, else the likeliest non-dog
        class ("not a dog" for the default model), so the heatmap shows what the page says."""
        if answer["is_dog"] and answer["predictions"]:
            return int(answer["predictions"][0]["index"])
        others = np.setdiff1d(np.arange(len(probs)), self.predictor.dog_classes)
        candidates = others if len(others) else np.arange(len(probs))
        return int(candidates[np.argmax(probs[candidates])])

    def predict(
        self, decoded: Decoded, top_k: int = 5, all_classes: bool = False
    ) -> tuple[dict[str, Any], np.ndarray]:
        """Return the JSON answer for one decoded image (timings in ms) and all probabilities."""
        start = time.perf_counter()
        probs = self.predictor.probabilities(decoded.array[None])[0]
        inference = time.perf_counter() - start
        answer = self._answer(probs, top_k)
        if all_classes:
            answer["probabilities"] = [
                {"name": c["name"], "wnid": c["wnid"], "probability": float(q)}
                for c, q in zip(self.predictor.classes, probs, strict=True)
            ]
        answer["image"] = decoded.info
        answer["model"] = {k: self.info[k] for k in ("name", "version", "backbone")}
        answer["timing_ms"] = {"decode": round(decoded.seconds * 1000, 2),
                               "inference": round(inference * 1000, 2)}  # fmt: skip
        return answer, probs

    def _heatmap_function(self) -> Callable[[np.ndarray, int], np.ndarray]:
        """The traced Grad-CAM (thread-safe, ~40 ms), else the eager one (serialised, ~0.5 s)."""
        from helpers.serving import compiled_grad_cam, grad_cam

        with self._grad_cam_lock:
            if self._grad_cam is None:
                model, size = self.predictor.model, self.predictor.image_size
                try:
                    self._grad_cam = compiled_grad_cam(model, size)
                except Exception:  # any model tracing refuses still gets the eager Grad-CAM
                    log.warning("Grad-CAM could not be traced; using the eager one", exc_info=True)
                    self._grad_cam = functools.partial(grad_cam, model)
            return self._grad_cam

    def explain(self, decoded: Decoded, class_index: int) -> dict[str, Any]:
        """Return the Grad-CAM overlay of `class_index` as a JPEG data URL, with its timing."""
        from helpers.serving import overlay

        start = time.perf_counter()
        heatmap = self._heatmap_function()(decoded.array, class_index)
        image = decoded.image.copy()
        image.thumbnail((EXPLAIN_SIZE, EXPLAIN_SIZE))
        buffer = io.BytesIO()
        overlay(image, heatmap).save(buffer, format="JPEG", quality=85)
        url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        return {
            "class": self.predictor.classes[class_index]["name"],
            "index": class_index,
            "image": url,
            "ms": round((time.perf_counter() - start) * 1000, 2),
        }
