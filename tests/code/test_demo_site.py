"""helpers.collect.demo: the demo's web site on 127.0.0.1, its planted items, and 01's demo claim.

Real parts: a real HTTP server, real downloads through helpers.collect.scrape, the shared photos.
"""

from __future__ import annotations

import csv
import hashlib
import socket
import struct
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers.collect.demo import (
    PhotoServer,
    breed_photos,
    demo_site,
    photo_url,
    planted_items,
    url_rows,
)
from helpers.collect.download import ImageRules
from helpers.collect.scrape import collect_images, read_manifest

DEMO_BREEDS = [
    "Beagle", "Chihuahua", "Eskimo Dog", "German Shepherd", "Golden Retriever",
    "Labrador Retriever", "Malamute", "Pembroke", "Pug", "Siberian Husky",
]  # fmt: skip


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_server_serves_its_routes_and_leaves_no_thread_or_socket(tmp_path):
    photo = tmp_path / "dog.jpg"
    photo.write_bytes(b"\xff\xd8\xff photo bytes")
    before = set(threading.enumerate())
    with PhotoServer({"a/dog.jpg": (photo, "image/jpeg"), "page": (b"<html>", "image/jpeg")}) as s:
        assert s.base_url.startswith("http://127.0.0.1:")
        port = int(s.base_url.rsplit(":", 1)[1].strip("/"))
        assert _get(s.base_url + "a/dog.jpg") == (200, "image/jpeg", photo.read_bytes())
        assert _get(s.base_url + "page") == (200, "image/jpeg", b"<html>")  # lies, as sites do
        assert _get(s.base_url + "a/../a/dog.jpg")[0] == 404  # only the routes, no file system
        assert _get(s.base_url + "nothing")[0] == 404
    assert set(threading.enumerate()) == before
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


@pytest.fixture(scope="module")
def demo_photos(stanford_dogs):
    return breed_photos(stanford_dogs, DEMO_BREEDS)


def test_planted_items_are_the_same_every_run_and_what_they_claim(demo_photos):
    first, second = planted_items(demo_photos), planted_items(demo_photos)
    assert first == second
    assert len({p.url for p in first}) == len(first)  # every item has its own URL
    items = {p.name.split("-", 1)[1]: p for p in first}
    bomb = items["bomb.png"].body
    width, height = struct.unpack(">II", bomb[16:24])
    assert width * height == 10**8 and len(bomb) < 20_000  # a real bomb: small file, huge image
    original = demo_photos["Pembroke"][0]
    assert items["duplicate.jpg"].body == original.read_bytes()
    assert items["duplicate.jpg"].original == photo_url(original)
    changed = items["changed.jpg"]
    assert changed.published_sha256 != hashlib.sha256(changed.body).hexdigest()
    assert items["gone.jpg"].body is None
    assert items["wide.jpg"].replaces and not items["wide.jpg"].original


def test_url_rows_put_originals_before_their_copies_and_drop_replaced_photos(demo_photos):
    planted = planted_items(demo_photos)
    rows = url_rows(demo_photos, planted)
    position = {(r["breed"], r["url"]): n for n, r in enumerate(rows)}
    for item in planted:
        if item.original and item.breed in {r["breed"] for r in rows if r["url"] == item.original}:
            assert position[item.breed, item.original] < position[item.breed, item.url]
    replaced = {p.replaces for p in planted if p.replaces}
    assert replaced and not replaced & {r["url"] for r in rows}
    total = sum(len(v) for v in demo_photos.values())
    assert len(rows) == total - len(replaced) + len(planted)


def test_demo_breeds_get_every_planted_outcome_through_the_real_download_path(
    stanford_dogs, tmp_path
):
    with demo_site(stanford_dogs, DEMO_BREEDS, tmp_path / "urls.csv") as site:
        rules = ImageRules(min_side=100)
        report = collect_images(site.source, DEMO_BREEDS, tmp_path / "raw", 12, rules=rules,
                                workers=2, progress=False)  # fmt: skip
        base_url = site.base_url
    frame = read_manifest(tmp_path / "raw")
    outcome = frame["reason"].where(frame["status"] != "kept", "kept")
    got = dict(zip(zip(frame["breed"], frame["url"], strict=True), outcome, strict=True))
    with open(tmp_path / "urls.csv", newline="") as f:
        planted = [r for r in csv.DictReader(f) if r["expect"]]
    assert len(planted) == 16
    assert {r["url"]: got[r["breed"], r["url"]] for r in planted} == {
        r["url"]: r["expect"] for r in planted
    }
    assert report.total("failed") == 0 and all(c["kept"] == 12 for c in report.counts.values())
    # The manifest records URLs as published, so a re-run on another port still matches them.
    assert not frame["url"].str.contains("127.0.0.1").any()
    # Every photo keeps the WordNet id of the breed it is listed under (05 and 06 match ImageNet
    # classes by it): Stanford Dogs' folders are named <wnid>-<breed>.
    folders = {p.name.split("-", 1)[0]: p.name for p in Path(stanford_dogs).iterdir()}
    wnids = frame.groupby("breed")["wnid"].unique()
    assert all(len(w) == 1 and w[0] in folders for w in wnids), wnids
    assert folders[wnids["Pug"][0]].lower().endswith("pug")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base_url, timeout=2)  # the server is gone
