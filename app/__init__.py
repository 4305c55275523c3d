"""doggo's web app: a page to upload a dog photo and a JSON API, served by Flask and gunicorn.

`create_app()` loads the model once (per gunicorn worker) and warms it before the first request.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from flask import Flask

if TYPE_CHECKING:
    from flask.json.provider import DefaultJSONProvider

    from app.inference import ModelService

DEFAULT_MAX_UPLOAD_MB = 10.0

log = logging.getLogger("doggo.app")


def create_app(
    model_dir: str | Path | None = None,
    *,
    service: ModelService | None = None,
    max_upload_bytes: int | None = None,
) -> Flask:
    """Return the Flask app serving the model in `model_dir`.

    Without `model_dir`, `$DOGGO_MODEL_DIR` is used, else the best trained model under models/,
    else the embedded ImageNet model. `service` (an `app.inference.ModelService`) lets tests share
    one loaded model between apps; `max_upload_bytes` defaults to `$DOGGO_MAX_UPLOAD_MB` (10 MB).
    """
    from app.inference import ModelService
    from app.server import MemoryRequest, blueprint, register_handlers

    if service is None:
        start = time.perf_counter()
        service = ModelService.load(model_dir or os.environ.get("DOGGO_MODEL_DIR") or None)
        warm = service.warm()
        log.info("model %s v%s from %s loaded in %.1f s, warm-up %.0f ms",
                 service.info["name"], service.info["version"], service.predictor.model_dir,
                 time.perf_counter() - start - warm, warm * 1000)  # fmt: skip
    if max_upload_bytes is None:
        megabytes = float(os.environ.get("DOGGO_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB))
        max_upload_bytes = int(megabytes * 1024 * 1024)
    app = Flask(__name__)
    app.request_class = MemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes
    # The default provider (app.json is typed as its base class, which has no sort_keys).
    cast(
        "DefaultJSONProvider", app.json
    ).sort_keys = False  # keep the answer's fields in the documented order
    app.extensions["doggo"] = service
    app.register_blueprint(blueprint)
    register_handlers(app)
    return app
