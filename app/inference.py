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
from helpers.predict import Predictor, image_to_array

log = logging.getLogger("doggo.app")
EXPLAIN_SIZE = 384  # longest side of the Grad-CAM overlay sent back: enough for a phone screen


@dataclass
class Decoded:
    """An uploaded image decoded into the model input, with what the client should know of it."""

    image: Image.Image
    array: np.ndarray
    info: dict[str, Any]
    seconds: float


class ModelService:
    """One loaded Predictor per process, with the JSON answers the API gives."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        meta = predictor.metadata
        self.info = {
            "name": meta["name"],
            "version": str(meta.get("version")),
            "created": meta.get("created"),
            "backbone": meta.get("backbone"),
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
        image = decode_image(data)
        array = image_to_array(image, self.predictor.image_size)
        info = {"format": sniff_format(data), "width": image.width, "height": image.height}
        return Decoded(image, array, info, time.perf_counter() - start)

    def _answer(self, probs: np.ndarray, top_k: int) -> dict[str, Any]:
        result = self.predictor.result(probs, top_k)
        return {
            "is_dog": result.is_dog,
            "answer": result.top_k[0]["name"] if result.is_dog and result.top_k else "not a dog",
            "dog_probability": result.dog_probability,
            "predictions": result.top_k,
        }

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
        from helpers.explain import compiled_grad_cam, grad_cam

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
        from helpers.explain import overlay

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
