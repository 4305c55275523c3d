"""Routes of the app: the page, `POST /api/predict`, `POST /api/explain`, health and OpenAPI."""

from __future__ import annotations

import io
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    current_app,
    jsonify,
    render_template,
    request,
)
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.inference import ModelService
from helpers.images import ImageError

OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")
# Status code for each helpers.images.ImageError reason; anything else is a plain 400.
IMAGE_ERROR_STATUS = {
    "empty": 400,
    "corrupt": 400,
    "not_an_image": 415,
    "unsupported_format": 415,
    "too_many_pixels": 413,
    "bad_aspect_ratio": 422,
}
# No inline script or style anywhere: the page's JS and CSS are files under /static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), microphone=()",
}

blueprint = Blueprint("doggo", __name__)


class MemoryRequest(Request):
    """A request whose multipart uploads stay in memory: Werkzeug spools big ones to disk."""

    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ) -> io.BytesIO:
        return io.BytesIO()  # bounded by MAX_CONTENT_LENGTH, checked before parsing


class ApiError(Exception):
    """An error answered as JSON `{"error": {"code", "message"}}` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _service() -> ModelService:
    return current_app.extensions["doggo"]


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    return response


def _limit_message() -> str:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return f"the upload is larger than the limit of {limit / 1024 / 1024:.1f} MB"


def _upload() -> bytes:
    """Return the uploaded image: multipart field `image`, else the raw request body."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()  # refused before a byte of the body is read
    if request.mimetype == "multipart/form-data":
        file = request.files.get("image")
        if file is None:
            raise ApiError(400, "missing_image", "the multipart form has no 'image' file field")
        data = file.read()
    else:
        data = request.get_data(cache=False)  # Werkzeug stops at the limit (chunked bodies too)
    # A body without Content-Length (chunked) is cut at the limit: reaching it means too large.
    if len(data) > limit or (request.content_length is None and len(data) >= limit):
        raise RequestEntityTooLarge()
    return data


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"'{name}' must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_parameter", f"'{name}' must be between {low} and {high}")
    return value


def _flag(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes", "on")


def _predict(explain: bool) -> Response:
    start = time.perf_counter()
    service = _service()
    classes = len(service.predictor.classes)
    top_k = _int_arg("top_k", 5, 1, classes)
    data = _upload()
    try:
        decoded = service.decode(data)
    except ImageError as err:
        raise ApiError(IMAGE_ERROR_STATUS.get(err.reason, 400), err.reason, str(err)) from None
    answer, probs = service.predict(decoded, top_k, all_classes=_flag("all"))
    if explain:
        index = _int_arg("class_index", service.answered_index(answer, probs), 0, classes - 1)
        answer["explanation"] = service.explain(decoded, index)
        answer["timing_ms"]["explain"] = answer["explanation"].pop("ms")
    answer["timing_ms"]["total"] = round((time.perf_counter() - start) * 1000, 2)
    response = jsonify(answer)
    timing = answer["timing_ms"]
    response.headers["Server-Timing"] = ", ".join(f"{k};dur={v}" for k, v in timing.items())
    return response


@blueprint.post("/api/predict")
def predict() -> Response:
    """Top-k breeds of one image; Grad-CAM too with `?explain=1`."""
    return _predict(explain=_flag("explain"))


@blueprint.post("/api/explain")
def explain() -> Response:
    """The prediction plus the Grad-CAM overlay of the class it names (or `?class_index=`)."""
    return _predict(explain=True)


@blueprint.get("/api/model")
def model_info() -> Response:
    """The model answering: name, version, classes, input size, not-a-dog threshold."""
    service = _service()
    return jsonify({**service.info, "classes": service.predictor.classes})


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness and readiness: the model is loaded and warm once the app exists."""
    info = _service().info
    return jsonify(status="ok", model={"name": info["name"], "version": info["version"]})


@cache
def _openapi() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3 description of the API, as JSON."""
    return Response(json.dumps(_openapi(), indent=1), mimetype="application/json")


@blueprint.get("/openapi.yaml")
def openapi_yaml() -> Response:
    """The OpenAPI 3 description of the API, as YAML (the source file)."""
    return Response(OPENAPI_FILE.read_text(encoding="utf-8"), mimetype="application/yaml")


@blueprint.get("/")
def index() -> str:
    """The upload page."""
    return render_template("index.html", model=_service().info)


def _handle_api_error(err: ApiError) -> Response:
    return _error(err.status, err.code, err.message)


def _handle_http_error(err: HTTPException) -> Response | HTTPException:
    if not request.path.startswith("/api/"):
        return err  # pages keep Werkzeug's plain HTML error
    if isinstance(err, RequestEntityTooLarge):
        return _error(413, "too_large", _limit_message())
    name = (err.name or "error").lower().replace(" ", "_")
    return _error(err.code or 500, name, err.description or name)


def _add_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"  # answers depend on the uploaded photo
    return response


def register_handlers(app: Flask) -> None:
    """Install the JSON error handlers and the security headers on `app`."""
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_error)
    app.after_request(_add_headers)
