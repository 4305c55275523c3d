"""The JSON API against the real app and the real embedded default model."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from flask import Flask, request
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app import create_app
from helpers.serving.predict import Predictor

# --- fixtures and small helpers --------------------------------------------------------------


@pytest.fixture(scope="module")
def app(service) -> Flask:
    return create_app(service=service)


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def noise(width: int = 96, height: int = 64, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB").convert(mode)


def post_raw(client, data: bytes, content_type: str = "application/octet-stream", url=None):
    return client.post(url or "/api/predict", data=data, content_type=content_type)


def multipart(data: bytes, field: str = "image") -> tuple[bytes, str]:
    """Encode a multipart body in memory (the test client would spool a big one to disk)."""
    boundary, body = encode_multipart({field: FileStorage(io.BytesIO(data), "photo.jpg")})
    return body, f"multipart/form-data; boundary={boundary}"


def post_file(client, data: bytes, url: str = "/api/predict", field: str = "image"):
    body, content_type = multipart(data, field)
    return client.post(url, data=body, content_type=content_type)


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == code
    assert len(body["error"]["message"]) > 10  # a sentence a person can act on


# --- real photos ------------------------------------------------------------------------------


def test_dog_photo_is_answered_with_its_breed(client, service, dog_photo):
    data = dog_photo.read_bytes()
    raw = post_raw(client, data, "image/jpeg")
    assert raw.status_code == 200
    body = raw.get_json()
    wnid = dog_photo.parent.name.split("-")[0]  # the ground truth, from the data set's folder
    assert body["is_dog"] is True
    assert wnid in [p["wnid"] for p in body["predictions"]]
    assert body["answer"] == body["predictions"][0]["name"]
    probabilities = [p["probability"] for p in body["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True) and len(probabilities) == 5
    assert body["model"]["name"] == service.predictor.card.name
    assert body["image"]["format"] == "JPEG"
    assert set(body["timing_ms"]) >= {"decode", "inference", "total"}
    # The API and the shared Predictor give the same answer, through multipart as well.
    expected = Predictor.predict_images(service.predictor, [data], top_k=5)[0]
    multipart = post_file(client, data).get_json()
    for answer in (body, multipart):
        assert [p["name"] for p in answer["predictions"]] == [c["name"] for c in expected.top_k]
        assert answer["predictions"][0]["probability"] == pytest.approx(
            expected.top_k[0]["probability"], rel=1e-4
        )


def test_not_a_dog_is_said_so(client):
    skimage = pytest.importorskip("skimage")
    cat = Path(skimage.__file__).parent / "data" / "chelsea.png"
    body = post_raw(client, cat.read_bytes()).get_json()
    assert body["is_dog"] is False
    assert body["answer"] == "not a dog"
    assert body["dog_probability"] < 0.5
    assert body["predictions"]  # the closest breeds are still listed


def test_noise_is_handled_and_all_probabilities_are_returned(client, service):
    response = post_raw(client, encode(noise(), "PNG"), url="/api/predict?all=1&top_k=3")
    assert response.status_code == 200
    body = response.get_json()
    assert len(body["predictions"]) == 3
    everything = body["probabilities"]
    assert len(everything) == len(service.predictor.classes)
    assert sum(p["probability"] for p in everything) == pytest.approx(1.0, abs=1e-3)
    dogs = sum(everything[i]["probability"] for i in service.predictor.dog_classes)
    assert body["dog_probability"] == pytest.approx(dogs, rel=1e-4)


@pytest.mark.parametrize("url", ["/api/explain", "/api/predict?explain=1"])
def test_explanation_is_a_jpeg_overlay_of_the_top_class(client, dog_photo, url):
    body = post_file(client, dog_photo.read_bytes(), url).get_json()
    explanation = body["explanation"]
    assert explanation["class"] == body["predictions"][0]["name"]
    prefix = "data:image/jpeg;base64,"
    assert explanation["image"].startswith(prefix)
    overlay = Image.open(io.BytesIO(base64.b64decode(explanation["image"][len(prefix) :])))
    original = Image.open(dog_photo)
    assert overlay.format == "JPEG" and max(overlay.size) <= 384
    assert overlay.width / overlay.height == pytest.approx(original.width / original.height, 0.02)
    assert body["timing_ms"]["explain"] > 0


def test_plain_predict_has_no_explanation(client, dog_photo):
    body = post_raw(client, dog_photo.read_bytes()).get_json()
    assert "explanation" not in body and "explain" not in body["timing_ms"]


# --- every bad input --------------------------------------------------------------------------


def test_too_large_uploads_are_refused_with_413(service):
    small = create_app(service=service, max_upload_bytes=50_000).test_client()
    big = encode(noise(400, 400), "PNG")  # ~480 kB of incompressible pixels
    assert len(big) > 50_000
    assert_error(post_raw(small, big, "image/png"), 413, "too_large")
    assert_error(post_file(small, big), 413, "too_large")
    assert post_raw(small, encode(noise(32, 32), "PNG")).status_code == 200


def test_too_large_chunked_body_without_content_length_is_refused(service):
    small = create_app(service=service, max_upload_bytes=50_000).test_client()
    body = io.BytesIO(encode(noise(400, 400), "PNG"))
    # What gunicorn hands the app for a chunked body: a stream that ends, of unknown length.
    response = small.post(
        "/api/predict", input_stream=body, environ_overrides={"wsgi.input_terminated": True}
    )
    assert_error(response, 413, "too_large")


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"just some text, not a picture", "image/png", 415, "not_an_image"),
        (b"<!doctype html><html><body><script>alert(1)</script></body></html>", "image/jpeg",
         415, "not_an_image"),
        (b"<html><body>hello</body></html>", "text/html", 415, "not_an_image"),
        (b"%PDF-1.7\n", "application/pdf", 415, "not_an_image"),
        (b"", "image/jpeg", 400, "empty"),
    ],
    ids=["text-as-png", "html-as-jpeg", "html", "pdf", "empty"],
)  # fmt: skip
def test_non_images_are_refused_whatever_the_content_type(client, data, content_type, status, code):
    assert_error(post_raw(client, data, content_type), status, code)
    if data:
        assert_error(post_file(client, data), status, code)


def test_corrupt_and_truncated_jpegs_are_400(client):
    jpeg = encode(noise(128, 128), "JPEG", quality=90)
    truncated = jpeg[: len(jpeg) // 2]
    garbled = jpeg[:20] + np.random.default_rng(1).bytes(600)
    for data in (truncated, garbled):
        assert_error(post_raw(client, data, "image/jpeg"), 400, "corrupt")


@pytest.mark.parametrize("size", [(8000, 6000), (12000, 12000)], ids=["over-limit", "pil-bomb"])
def test_decompression_bombs_are_refused_before_decoding(client, size):
    bomb = encode(Image.new("1", size), "PNG")  # a few kB that would decode to 48-144 Mpixels
    assert len(bomb) < 100_000
    response = post_raw(client, bomb, "image/png")
    assert_error(response, 413, "too_many_pixels")
    assert "pixels" in response.get_json()["error"]["message"]


def test_multipart_without_image_field_and_bad_parameters_are_400(client):
    assert_error(post_file(client, encode(noise(), "PNG"), field="photo"), 400, "missing_image")
    assert_error(post_raw(client, encode(noise(), "PNG"), url="/api/predict?top_k=x"), 400,
                 "bad_parameter")  # fmt: skip
    assert_error(post_raw(client, encode(noise(), "PNG"), url="/api/predict?top_k=0"), 400,
                 "bad_parameter")  # fmt: skip


def test_api_errors_are_json(client):
    assert_error(client.get("/api/predict"), 405, "method_not_allowed")
    assert_error(client.get("/api/nothing-here"), 404, "not_found")


# --- odd but valid images ---------------------------------------------------------------------


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 48), color) for color in ("red", "green", "blue")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _alpha_png() -> bytes:
    rgba = noise(64, 48, "RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((64, 48)))
    return encode(rgba, "PNG")


def _palette_transparent_png() -> bytes:
    palette = noise(64, 48).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(palette, "PNG", transparency=0)


VALID_IMAGES = {
    "cmyk-jpeg": (lambda: encode(noise(64, 48, "CMYK"), "JPEG"), "JPEG"),
    "grayscale-jpeg": (lambda: encode(noise(64, 48, "L"), "JPEG"), "JPEG"),
    "grayscale-png": (lambda: encode(noise(64, 48, "L"), "PNG"), "PNG"),
    "16-bit-png": (lambda: encode(Image.new("I;16", (64, 48), 3000), "PNG"), "PNG"),
    "alpha-png": (_alpha_png, "PNG"),
    "palette-transparency-png": (_palette_transparent_png, "PNG"),
    "animated-gif": (_animated_gif, "GIF"),
    "webp": (lambda: encode(noise(64, 48), "WEBP"), "WEBP"),
    "bmp": (lambda: encode(noise(64, 48), "BMP"), "BMP"),
    "tiff": (lambda: encode(noise(64, 48), "TIFF"), "TIFF"),
}


@pytest.mark.parametrize("kind", list(VALID_IMAGES))
def test_unusual_but_valid_images_are_answered(client, kind):
    make, fmt = VALID_IMAGES[kind]
    response = post_raw(client, make(), "application/octet-stream")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["image"] == {"format": fmt, "width": 64, "height": 48}
    assert len(body["predictions"]) == 5 and 0.0 <= body["dog_probability"] <= 1.0 + 1e-6


def test_exif_orientation_is_applied(client, dog_photo):
    upright = Image.open(dog_photo).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored pixels must be turned 90 degrees clockwise
    sideways = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)
    rotated = post_raw(client, sideways).get_json()
    straight = post_raw(client, encode(upright, "JPEG", quality=95)).get_json()
    assert (rotated["image"]["width"], rotated["image"]["height"]) == upright.size
    assert rotated["predictions"][0]["name"] == straight["predictions"][0]["name"]
    assert rotated["predictions"][0]["probability"] == pytest.approx(
        straight["predictions"][0]["probability"], abs=0.05
    )


# --- concurrency ------------------------------------------------------------------------------


def test_concurrent_requests_get_their_own_answers(client, dog_photo):
    images = {"dog": dog_photo.read_bytes(), "noise": encode(noise(seed=3), "PNG")}
    expected = {k: post_raw(client, v).get_json()["predictions"] for k, v in images.items()}
    results: list[tuple[str, list]] = []

    def worker(kind: str) -> None:
        for _ in range(2):
            results.append((kind, post_raw(client, images[kind]).get_json()["predictions"]))

    threads = [threading.Thread(target=worker, args=(k,)) for k in list(images) * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 12
    for kind, predictions in results:
        assert [p["name"] for p in predictions] == [p["name"] for p in expected[kind]]
        assert predictions[0]["probability"] == pytest.approx(
            expected[kind][0]["probability"], rel=1e-4
        )


def test_create_app_loads_and_warms_the_model_once(monkeypatch, service):
    from app.inference import ModelService

    calls = []
    fake_load = classmethod(
        lambda cls, model_dir=None: calls.append(("load", model_dir)) or service
    )
    monkeypatch.setattr(ModelService, "load", fake_load)
    monkeypatch.setattr(service, "warm", lambda explain=True: calls.append(("warm",)) or 0.0)
    monkeypatch.setenv("DOGGO_MODEL_DIR", "/from/the/environment")
    monkeypatch.setenv("DOGGO_MAX_UPLOAD_MB", "0.5")
    app = create_app()
    assert calls == [("load", "/from/the/environment"), ("warm",)]  # warm before any request
    assert app.config["MAX_CONTENT_LENGTH"] == 512 * 1024
    client = app.test_client()
    for _ in range(3):
        assert post_raw(client, encode(noise(), "PNG")).status_code == 200
    assert len(calls) == 2  # requests never load the model again
    create_app("/given/model")
    assert calls[2] == ("load", "/given/model")  # an explicit directory wins over the variable


# --- health, OpenAPI, the page ----------------------------------------------------------------


def test_healthz_names_the_model(client, service):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["model"]["name"] == service.predictor.card.name


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_is_served_valid_and_complete(app, client):
    spec = client.get("/openapi.json").get_json()
    as_yaml = yaml.safe_load(client.get("/openapi.yaml").get_data(as_text=True))
    assert spec == as_yaml
    assert spec["openapi"].startswith("3.") and spec["info"]["title"]
    for ref in _refs(spec):  # every reference points at something that exists
        node = spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
    routes = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith(("/api", "/healthz"))}
    assert routes <= set(spec["paths"])  # every API route is documented
    for path, methods in spec["paths"].items():
        for method in methods:
            assert client.open(path, method=method.upper()).status_code != 404, path


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.inline, self.inputs = [], [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes.get("src"))
        if tag == "style" or "style" in attributes or any(a.startswith("on") for a in attributes):
            self.inline.append((tag, attributes))
        if tag == "input":
            self.inputs.append(attributes)


def test_page_has_security_headers_and_no_inline_code(client):
    response = client.get("/")
    assert response.status_code == 200
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert re.search(r"script-src 'self'(;|$)", csp)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    page = _PageParser()
    page.feed(response.get_data(as_text=True))
    assert page.scripts and all(page.scripts)  # every script is a file, which the CSP allows
    assert not page.inline
    files = [i for i in page.inputs if i.get("type") == "file"]
    assert any("capture" in i for i in files) and all(i["accept"] == "image/*" for i in files)
    for src in page.scripts:
        assert client.get(src).status_code == 200


# --- uploads stay in memory -------------------------------------------------------------------

_WRITES: list[str] = []
_RECORDING = threading.Event()


def _audit(event: str, args: tuple) -> None:
    # Python's audit events see every file opened for writing and every temporary file made.
    if not _RECORDING.is_set():
        return
    if event == "open" and len(args) >= 3:
        path, mode, flags = args[0], args[1], args[2]
        writes = (mode and any(c in str(mode) for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if writes:
            _WRITES.append(f"open {path}")
    elif event.startswith("tempfile."):
        _WRITES.append(f"{event} {args}")


sys.addaudithook(_audit)


def _disk_writes(action) -> list[str]:
    _WRITES.clear()
    _RECORDING.set()
    try:
        action()
    finally:
        _RECORDING.clear()
    return list(_WRITES)


def _listing() -> set[str]:
    return {*os.listdir(tempfile.gettempdir()), *os.listdir(os.getcwd())}


def test_uploads_are_never_written_to_disk(client, dog_photo, tmp_path, monkeypatch):
    # A temporary folder of the test's own: other processes' files in /tmp come and go.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    # Positive controls: the recorder sees a plain write and Werkzeug's default spooling of a
    # big multipart upload to a temporary file, which the app's request class must avoid.
    assert _disk_writes(lambda: (tmp_path / "x").write_text("x"))
    plain = Flask("plain")
    plain.post("/")(lambda: str(len(request.files["image"].read())))
    big = encode(noise(900, 900), "PNG")  # ~2.4 MB, over Werkzeug's 500 kB in-memory limit
    assert _disk_writes(lambda: post_file(plain.test_client(), big, "/"))

    before = _listing()
    big_form, big_type = multipart(big)
    dog_form, dog_type = multipart(dog_photo.read_bytes())
    uploads = [
        ("/api/predict", big_form, big_type),
        ("/api/predict", big, "image/png"),
        ("/api/explain", dog_form, dog_type),
    ]
    for url, body, content_type in uploads:
        responses = []
        writes = _disk_writes(
            lambda: responses.append(client.post(url, data=body, content_type=content_type))  # noqa: B023
        )
        assert writes == []
        assert responses[0].status_code == 200
    assert _listing() == before


def test_openapi_json_is_plain_json(client):
    response = client.get("/openapi.json")
    assert response.mimetype == "application/json"
    json.loads(response.get_data(as_text=True))


# --- the answer, its heatmap and its wording ---------------------------------------------------

PUG = "n02110958-pug"  # its first photo: Pug at 0.31 but "not a dog" the single likeliest class


def _first_photo(stanford_dogs: Path, folder: str) -> Path:
    photos = sorted((stanford_dogs / folder).glob("*.jpg"))
    if not photos:
        pytest.skip(f"no photos in {stanford_dogs / folder}")
    return photos[0]


def test_heatmap_explains_the_class_the_answer_names(client, service, stanford_dogs):
    photo = _first_photo(stanford_dogs, PUG)
    body = post_raw(client, photo.read_bytes(), url="/api/explain?top_k=1").get_json()
    probabilities = post_raw(client, photo.read_bytes(), url="/api/predict?all=1").get_json()
    likeliest = max(probabilities["probabilities"], key=lambda p: p["probability"])["name"]
    assert likeliest == "not a dog" and body["is_dog"]  # the case the page used to get wrong
    assert body["answer"] == "Pug"
    assert body["explanation"]["class"] == body["answer"]
    assert body["explanation"]["index"] == body["predictions"][0]["index"]


def test_heatmap_of_a_non_dog_is_for_not_a_dog(client):
    skimage = pytest.importorskip("skimage")
    cat = Path(skimage.__file__).parent / "data" / "chelsea.png"
    body = post_raw(client, cat.read_bytes(), url="/api/explain").get_json()
    assert body["is_dog"] is False and body["explanation"]["class"] == "not a dog"
    assert body["confidence"] == "none" and "not look like a dog" in body["headline"]


def test_explicit_class_index_is_still_honoured(client, dog_photo):
    body = post_raw(client, dog_photo.read_bytes(), url="/api/explain?class_index=0").get_json()
    assert body["explanation"]["index"] == 0


@pytest.mark.parametrize(
    ("top", "confidence", "headline"),
    [
        ([("Golden Retriever", 0.69), ("Saluki", 0.02)], "high", "Looks like a Golden Retriever"),
        ([("Pug", 0.31), ("Bull Mastiff", 0.05)], "medium", "Probably a Pug"),
        ([("Basset", 0.18), ("Beagle", 0.12), ("Bluetick", 0.097)], "low",
         "Maybe a Basset, or a Beagle"),
        ([("Afghan Hound", 0.3), ("Saluki", 0.2)], "low", "Maybe an Afghan Hound, or a Saluki"),
    ],
)  # fmt: skip
def test_wording_follows_the_confidence(top, confidence, headline):
    from app.inference import _headline

    predictions = [{"name": name, "probability": p} for name, p in top]
    assert _headline(True, predictions) == (confidence, headline)


def test_answers_carry_confidence_and_headline(client, dog_photo):
    body = post_raw(client, dog_photo.read_bytes(), url="/api/predict?top_k=1").get_json()
    assert len(body["predictions"]) == 1  # the runner-up used for the wording is not added
    assert body["confidence"] == "high" and body["headline"] == "Looks like a Golden Retriever"


# --- real photos in every format a phone sends -------------------------------------------------


def _png_rgb16(image: Image.Image) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one), each 8-bit value v as v * 257."""
    import struct
    import zlib

    pixels = np.asarray(image.convert("RGB"), dtype=">u2") * 257
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", image.width, image.height, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))  # fmt: skip


def _gray16_png(image: Image.Image) -> bytes:
    pixels = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(pixels), "PNG")  # uint16 gray: mode I;16


def _top(body: dict) -> tuple[str, float]:
    return body["predictions"][0]["name"], body["predictions"][0]["probability"]


@pytest.mark.parametrize(
    ("make", "reference_mode"), [(_gray16_png, "L"), (_png_rgb16, "RGB")], ids=["gray16", "rgb16"]
)
def test_16_bit_pngs_decode_like_their_8_bit_originals(client, dog_photo, make, reference_mode):
    photo = Image.open(dog_photo)
    eight_bit = post_raw(client, encode(photo.convert(reference_mode), "PNG")).get_json()
    sixteen = post_raw(client, make(photo)).get_json()
    assert sixteen["is_dog"] and sixteen["image"]["format"] == "PNG"
    assert _top(sixteen)[0] == _top(eight_bit)[0]
    assert _top(sixteen)[1] == pytest.approx(_top(eight_bit)[1], abs=0.02)


def test_heic_and_avif_photos_are_answered(client, dog_photo):
    photo = Image.open(dog_photo)
    jpeg = post_raw(client, dog_photo.read_bytes()).get_json()
    for fmt in ("HEIF", "AVIF"):
        body = post_file(client, encode(photo, fmt, quality=90)).get_json()
        assert body["image"] == {"format": fmt, "width": photo.width, "height": photo.height}
        assert _top(body)[0] == _top(jpeg)[0], fmt


def test_heic_without_its_decoder_gets_a_plain_message(client, dog_photo, monkeypatch):
    import helpers.images

    heic = encode(Image.open(dog_photo), "HEIF")
    monkeypatch.setattr(
        helpers.images, "ALLOWED_FORMATS", helpers.images.ALLOWED_FORMATS - {"HEIF"}
    )
    response = post_raw(client, heic)
    assert_error(response, 415, "unsupported_format")
    assert "JPEG" in response.get_json()["error"]["message"]


def test_a_12_megapixel_photo_is_shrunk_while_decoding(client, service, dog_photo):
    photo = Image.open(dog_photo).convert("RGB")
    big = photo.resize((4000, 3000), Image.Resampling.BICUBIC)
    data = encode(big, "JPEG", quality=92)
    decoded = service.decode(data)
    # The model sees a short side of at least its input size, never the 12 Mpixels.
    assert (
        service.predictor.image_size <= min(decoded.image.size) < 2 * service.predictor.image_size
    )
    body = post_raw(client, data).get_json()
    assert body["image"] == {"format": "JPEG", "width": 4000, "height": 3000}
    assert (
        _top(body)[0]
        == _top(post_raw(client, encode(photo.resize((400, 300)), "JPEG")).get_json())[0]
    )


def test_a_huge_png_is_reduced_before_becoming_an_array(service):
    canvas = Image.new("RGB", (6000, 6600), (180, 150, 120))  # compresses to ~100 KB
    decoded = service.decode(encode(canvas, "PNG"))
    assert (
        service.predictor.image_size <= min(decoded.image.size) < 2 * service.predictor.image_size
    )
    assert decoded.info["width"] == 6000 and decoded.info["height"] == 6600


def test_exif_orientation_survives_shrinking(client, dog_photo):
    upright = Image.open(dog_photo).convert("RGB").resize((2000, 1500))
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)
    body = post_raw(client, sideways).get_json()
    assert (body["image"]["width"], body["image"]["height"]) == (2000, 1500)
    straight = post_raw(client, encode(upright, "JPEG", quality=95)).get_json()
    assert _top(body)[0] == _top(straight)[0]


@pytest.mark.parametrize("size", [(20000, 20), (20, 20000), (3000, 500)])
def test_extreme_aspect_ratios_are_refused(client, size):
    response = post_raw(client, encode(noise(*size), "PNG"))
    assert_error(response, 422, "bad_aspect_ratio")
    assert "crop" in response.get_json()["error"]["message"]
