"""Big uploads, slow clients and memory per request, against the app served by gunicorn.

Three questions, each on a real server on 127.0.0.1 with the embedded default model:
1. How much slower is a 12 MP phone-sized JPEG (a real 224 px photo scaled to 4000x3000) than
   the 224 px photo itself, on /api/predict and on /api/predict?explain=1? (goal: at most 2x)
   Also a 6000x6600 PNG, and the decode step alone, shrinking while decoding vs not.
2. How long does a normal request wait while 6 clients trickle their uploads, per worker class
   (gevent, the app's; gthread, the one it replaced)?
3. How much does the worker's resident memory grow for those big uploads (peak, VmHWM)?
    python benchmarks/app_latency.py [--repeats N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import DATASET, Server  # noqa: E402  (a sibling script, not a package)

PHOTO = DATASET / "n02099601-golden_retriever" / "n02099601_10.jpg"  # 224x224
TRICKLERS, CHUNK, PAUSE = 6, 256, 0.5  # 6 slow uploads, 256 bytes every half second


def test_images() -> dict[str, bytes]:
    """The 224 px photo, the same photo as a 12 MP JPEG, and a 6000x6600 PNG around it."""
    photo = Image.open(PHOTO).convert("RGB")
    big = io.BytesIO()
    photo.resize((4000, 3000), Image.Resampling.BICUBIC).save(big, "JPEG", quality=92)
    canvas = Image.new("RGB", (6000, 6600), (200, 190, 170))
    canvas.paste(photo.resize((3000, 3000)), (1500, 1800))
    png = io.BytesIO()
    canvas.save(png, "PNG")
    return {"224 px JPEG": PHOTO.read_bytes(), "12 MP JPEG": big.getvalue(),
            "6000x6600 PNG": png.getvalue()}  # fmt: skip


def _post(port: int, path: str, body: bytes, timeout: float = 120) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def median_ms(port: int, path: str, body: bytes, repeats: int) -> float:
    """Median wall-clock milliseconds of `repeats` requests after one warm-up request."""
    _post(port, path, body)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _post(port, path, body)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def decode_ms(body: bytes, shrink: bool, repeats: int) -> float:
    """Median ms of decoding into the model input, shrinking while decoding or (before) not."""
    from helpers.images import decode_image
    from helpers.serving.predict import image_to_array

    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        image = decode_image(body, min_size=260) if shrink else decode_image(body)
        image_to_array(image, 260)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[1:])


def _trickle(port: int, body: bytes, released: threading.Event) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))  # fmt: skip
        for index in range(len(body) // CHUNK):
            if released.wait(PAUSE):
                return
            sock.sendall(body[index * CHUNK : (index + 1) * CHUNK])


def slow_client_wait_ms(port: int, body: bytes) -> float:
    """Milliseconds a normal request takes while TRICKLERS clients trickle their uploads."""
    released = threading.Event()
    threads = [threading.Thread(target=_trickle, args=(port, body, released), daemon=True)
               for _ in range(TRICKLERS)]  # fmt: skip
    for thread in threads:
        thread.start()
    time.sleep(2 * PAUSE)
    start = time.perf_counter()
    _post(port, "/api/predict", body, timeout=300)
    elapsed = (time.perf_counter() - start) * 1000
    released.set()
    for thread in threads:
        thread.join(timeout=60)
    return elapsed


def worker_memory_mib(server: Server) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the gunicorn worker, in MiB."""
    import psutil

    (worker,) = psutil.Process(server.process.pid).children()
    status = Path(f"/proc/{worker.pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status)
    return tuple(int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    from helpers.serving.default_model import default_model_dir

    model_dir = default_model_dir()
    images = test_images()
    small = images["224 px JPEG"]
    print("| upload | bytes | decode ms, full then resize | decode ms, shrunk while decoding |")
    print("| --- | ---: | ---: | ---: |")
    for name, body in images.items():
        print(f"| {name} | {len(body):,} | {decode_ms(body, False, 3):.0f} | "
              f"{decode_ms(body, True, 3):.0f} |")  # fmt: skip

    os.environ["GUNICORN_WORKER_CLASS"] = "gevent"
    server = Server("app:create_app()", model_dir)
    try:
        idle = worker_memory_mib(server)
        print(f"\nworker after start-up: RSS {idle[0]:.0f} MiB, peak {idle[1]:.0f} MiB")
        print("\n| upload | predict ms | ratio to 224 px | predict+explain ms | ratio to 224 px |")
        print("| --- | ---: | ---: | ---: | ---: |")
        base = {p: median_ms(server.port, p, small, args.repeats)
                for p in ("/api/predict", "/api/predict?explain=1")}  # fmt: skip
        for name, body in images.items():
            row = [median_ms(server.port, p, body, args.repeats) for p in base]
            ratios = [r / base[p] for r, p in zip(row, base, strict=True)]
            print(f"| {name} | {row[0]:.0f} | {ratios[0]:.2f}x | {row[1]:.0f} | {ratios[1]:.2f}x |")
        after_sequential = worker_memory_mib(server)
        threads = [threading.Thread(target=_post, args=(server.port, "/api/predict?explain=1",
                                                        images["6000x6600 PNG"]))
                   for _ in range(4)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after_parallel = worker_memory_mib(server)
        print(f"\nworker memory, MiB (RSS / peak): after start-up {idle[0]:.0f} / {idle[1]:.0f}; "
              f"after the big uploads one at a time {after_sequential[0]:.0f} / "
              f"{after_sequential[1]:.0f}; after 4 concurrent 6000x6600 PNG explains "
              f"{after_parallel[0]:.0f} / {after_parallel[1]:.0f}")  # fmt: skip
        gevent_wait = slow_client_wait_ms(server.port, small)
    finally:
        server.stop()

    os.environ["GUNICORN_WORKER_CLASS"] = "gthread"
    server = Server("app:create_app()", model_dir)
    try:
        alone = median_ms(server.port, "/api/predict", small, 3)
        gthread_wait = slow_client_wait_ms(server.port, small)
    finally:
        server.stop()
    trickle_s = len(small) // CHUNK * PAUSE
    print(
        f"\nnormal request while {TRICKLERS} clients trickle a {len(small):,}-byte upload "
        f"({CHUNK} B every {PAUSE} s, {trickle_s:.0f} s each):"
    )
    print(f"  gevent (the app): {gevent_wait:.0f} ms; gthread, 4 threads: {gthread_wait:.0f} ms "
          f"(alone: {alone:.0f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
