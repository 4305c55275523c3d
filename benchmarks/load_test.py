"""A bounded HTTP load test of the app against the original's design (model loaded per request).

Starts each server with gunicorn on 127.0.0.1 (same config: 1 worker, 4 threads), sends real dog
photos (`POST /api/predict`, raw body) from 1, 4 and 16 concurrent clients, N requests each,
and prints one table: p50/p95 latency, throughput, errors and the worker's resident memory
afterwards, then the ratios app / baseline. Also prints model-only throughput by batch size,
which bounds what micro-batching concurrent requests could gain.
    python benchmarks/load_test.py [--requests N] [--baseline-requests M] [--clients 1,4,16]
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
DATASET = PROJECT.parent / "shared" / "datasets" / "stanford-dogs-120"
START_TIMEOUT = 180


# --- the baseline: the original doggo.name's request path ------------------------------------


def create_baseline_app(model_dir: str | None = None):
    """A Flask app that, like the original, loads the model and runs `model.predict` per request."""
    import keras
    from flask import Flask, jsonify, request

    from helpers.formats import MODEL_FILE
    from helpers.model_card import read_card
    from helpers.serving.predict import image_to_array

    model_dir = Path(model_dir or os.environ["DOGGO_MODEL_DIR"])
    card = read_card(model_dir)
    app = Flask("baseline")

    @app.post("/api/predict")
    def predict():
        model = keras.saving.load_model(model_dir / MODEL_FILE, compile=False)
        array = image_to_array(request.get_data(), card.image_size)
        probs = model.predict(array[None], verbose=0)[0]
        best = int(np.argmax(probs))
        return jsonify(name=card.classes[best]["name"], probability=float(probs[best]))

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app


# --- servers ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn serving `app_spec` on a free 127.0.0.1 port, with app/gunicorn.conf.py."""

    def __init__(self, app_spec: str, model_dir: Path):
        self.port = _free_port()
        env = {
            **os.environ,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": "1",
            "GUNICORN_ACCESSLOG": "",
            "DOGGO_MODEL_DIR": str(model_dir),
            "PYTHONPATH": os.pathsep.join([str(PROJECT), str(PROJECT / "benchmarks")]),
        }
        command = [sys.executable, "-m", "gunicorn", "-c", "app/gunicorn.conf.py", app_spec]
        self.process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{app_spec} did not start")
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def worker_rss_mb(self) -> float:
        """Resident memory of the worker processes (the model lives there), in MiB."""
        import psutil

        children = psutil.Process(self.process.pid).children(recursive=True)
        return sum(c.memory_info().rss for c in children) / 2**20

    def stop(self) -> None:
        """Stop gunicorn gracefully (it stops its workers), killing it if it hangs."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- clients ---------------------------------------------------------------------------------


@dataclass
class Level:
    """The measurements of one concurrency level."""

    clients: int
    requests: int
    latencies: list[float]
    errors: int
    seconds: float
    rss_mb: float

    def row(self) -> dict[str, float]:
        ms = np.array(self.latencies) * 1000 if self.latencies else np.array([np.nan])
        return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
                "req_s": len(self.latencies) / self.seconds, "errors": self.errors,
                "rss_mb": self.rss_mb}  # fmt: skip


def _client(port: int, photos: list[bytes], count: int, offset: int, out: Level) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    for i in range(count):
        body = photos[(offset + i) % len(photos)]
        start = time.perf_counter()
        try:
            connection.request("POST", "/api/predict", body=body,
                               headers={"Content-Type": "image/jpeg"})  # fmt: skip
            response = connection.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        elapsed = time.perf_counter() - start
        if ok:
            out.latencies.append(elapsed)  # list.append is atomic: threads share the list
        else:
            out.errors += 1
    connection.close()


def run_level(server: Server, photos: list[bytes], clients: int, requests: int) -> Level:
    """Send `requests` requests from each of `clients` concurrent clients; measure."""
    level = Level(clients, requests, [], 0, 0.0, 0.0)
    threads = [threading.Thread(target=_client, args=(server.port, photos, requests, i * 7, level))
               for i in range(clients)]  # fmt: skip
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    level.seconds = time.perf_counter() - start
    level.rss_mb = server.worker_rss_mb()
    return level


def load_photos(count: int = 16) -> list[bytes]:
    """Real dog photos from the shared data set, else synthetic JPEGs of the same kind of size."""
    folders = sorted(p for p in DATASET.iterdir() if p.is_dir()) if DATASET.is_dir() else []
    step = max(1, len(folders) // count)
    files = [min(f.glob("*.jpg"), default=None) for f in folders[::step]]
    photos = [f.read_bytes() for f in files if f is not None][:count]
    if photos:
        return photos
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        buffer = io.BytesIO()
        pixels = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def measure(name: str, app_spec: str, model_dir: Path, photos: list[bytes], levels: list[int],
            requests: int) -> list[Level]:  # fmt: skip
    """Start a server, warm it with one request, run every concurrency level, stop it."""
    server = Server(app_spec, model_dir)
    try:
        run_level(server, photos, 1, 1)  # a first request, not measured
        results = []
        for clients in levels:
            results.append(run_level(server, photos, clients, requests))
            row = results[-1].row()
            print(f"  {name:8} {clients:2} clients x {requests}: p50 {row['p50_ms']:.0f} ms, "
                  f"{row['req_s']:.1f} req/s", file=sys.stderr, flush=True)  # fmt: skip
        return results
    finally:
        server.stop()


def model_throughput(model_dir: Path, batches=(1, 4, 8), seconds: float = 3.0) -> dict[int, float]:
    """Images per second of the compiled model alone, by batch size (no HTTP, no decoding)."""
    from helpers.serving.predict import Predictor

    predictor = Predictor(model_dir)
    rng = np.random.default_rng(0)
    size = predictor.image_size
    out = {}
    for batch in batches:
        x = rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
        predictor.probabilities(x)
        start, done = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            predictor.probabilities(x)
            done += batch
        out[batch] = done / (time.perf_counter() - start)
    return out


def main() -> None:
    """Run the load test on the app and the baseline and print the table and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10, help="requests per client (app)")
    parser.add_argument("--baseline-requests", type=int, default=2,
                        help="requests per client for the baseline (~2.5 s each)")  # fmt: skip
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels")
    parser.add_argument("--model", help="saved model directory (default: the embedded model)")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    from helpers.serving.default_model import default_model_dir

    model_dir = Path(args.model) if args.model else default_model_dir()
    levels = [int(c) for c in args.clients.split(",")]
    photos = load_photos()
    app = measure("app", "app:create_app()", model_dir, photos, levels, args.requests)
    base = [] if args.no_baseline else measure(
        "baseline", "load_test:create_baseline_app()", model_dir, photos, levels,
        args.baseline_requests)  # fmt: skip
    print(f"\nmodel {model_dir.name}, {os.cpu_count()} CPUs; gunicorn 1 worker x 4 threads\n")
    print("| server | clients | requests | p50 ms | p95 ms | req/s | errors | worker RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, results in (("app", app), ("baseline", base)):
        for level in results:
            r = level.row()
            print(f"| {name} | {level.clients} | {level.clients * level.requests} | "
                  f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['req_s']:.2f} | {r['errors']} | "
                  f"{r['rss_mb']:.0f} |")  # fmt: skip
    if base:
        print("\nratios baseline / app (latency) and app / baseline (throughput):")
        for a, b in zip(app, base, strict=True):
            ra, rb = a.row(), b.row()
            print(
                f"  {a.clients:2} clients: p50 {rb['p50_ms'] / ra['p50_ms']:.0f}x lower, "
                f"p95 {rb['p95_ms'] / ra['p95_ms']:.0f}x lower, throughput "
                f"{ra['req_s'] / rb['req_s']:.0f}x higher, RSS {ra['rss_mb'] / rb['rss_mb']:.2f}x"
            )
    rates = model_throughput(model_dir)
    print("\nmodel alone (compiled call, no HTTP): "
          + ", ".join(f"batch {b}: {r:.1f} img/s" for b, r in rates.items()))  # fmt: skip
    print(
        f"  best batch / batch 1: {max(rates.values()) / rates[1]:.2f}x, the most micro-batching "
        f"could add; the app at {levels[-1]} clients: {app[-1].row()['req_s']:.1f} req/s"
    )


if __name__ == "__main__":
    main()
