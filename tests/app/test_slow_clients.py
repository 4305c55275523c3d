"""Slow clients against the real gunicorn server: uploads trickling in must not block others.

`GUNICORN_WORKER_CLASS=gthread pytest tests/app/test_slow_clients.py` shows the failure this
guards against: gthread parses each request in one of its 4 threads, so 6 trickling uploads
hold them all and the next request waits for them.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from pathlib import Path

TRICKLERS = 6  # more than gthread's 4 threads
CHUNK = 256  # bytes a trickling client sends at a time
PAUSE = 0.5  # seconds between its chunks
MAX_CHUNKS = 240  # each trickler stops after this many chunks (2 minutes) at the latest


def _trickle(url: str, body: bytes, released: threading.Event, sent: list[int]) -> None:
    """Send a request's headers and then its body a few bytes at a time until `released`."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = (f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode("ascii"))
        for index in range(min(MAX_CHUNKS, len(body) // CHUNK)):
            if released.wait(PAUSE):
                break  # the fast request was answered: stop holding the connection
            sock.sendall(body[index * CHUNK : (index + 1) * CHUNK])
            sent[0] += CHUNK


def test_trickling_uploads_do_not_block_a_normal_request(server, dog_photo):
    body = dog_photo.read_bytes()
    assert len(body) > CHUNK * 10  # the uploads stay incomplete for several seconds
    released = threading.Event()
    sent = [0]
    tricklers = [
        threading.Thread(target=_trickle, args=(server, body, released, sent), daemon=True)
        for _ in range(TRICKLERS)
    ]
    for thread in tricklers:
        thread.start()
    try:
        while sent[0] < TRICKLERS * CHUNK:  # every trickler has started sending its body
            released.wait(0.1)
        request = urllib.request.Request(f"{server}/api/predict", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        still_trickling = sum(thread.is_alive() for thread in tricklers)
    finally:
        released.set()
        for thread in tricklers:
            thread.join(timeout=30)
    assert answer["predictions"][0]["wnid"] == Path(dog_photo).parent.name.split("-")[0]
    # Answered while every slow upload was still incomplete, not after they gave up.
    assert still_trickling == TRICKLERS
    with urllib.request.urlopen(f"{server}/healthz", timeout=10) as health:
        assert health.status == 200
