"""helpers.collect.scrape and helpers.collect.download against a real HTTP server on 127.0.0.1.

The image search is ddgs's own engine code reaching tests/code/searchserver.py, a stand-in for
the search engine on 127.0.0.1; downloads, decoding and files are real.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageOps

import helpers
from helpers.breeds import parse_breed_folder
from helpers.collect.download import FetchPolicy
from helpers.collect.scrape import (
    COLUMNS,
    ImageRules,
    collect_images,
    counts_by_breed_and_reason,
    read_manifest,
    sample_paths,
)
from helpers.collect.sources import FolderSource, ManifestSource, SearchError

PROJECT = Path(helpers.__file__).resolve().parents[1]
FAST = FetchPolicy(timeout=0.5, total_timeout=1.0, max_bytes=1_000_000, retries=1, backoff=0.05)
RULES = ImageRules(min_side=100, max_side=300)


# ---------------------------------------------------------------- images made for the tests
def photo(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A photo-like image: smooth random colour fields plus grain, so phashes differ by seed."""
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8))
    smooth = np.asarray(low.resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-12, 13, smooth.shape)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    return encode(photo(seed, size), quality=90)


def near_copy(seed: int) -> bytes:
    """The same photo, slightly smaller and recompressed, as another site would serve it."""
    return encode(photo(seed).resize((288, 216)), quality=70)


def exif_rotated(seed: int) -> bytes:
    """A 320x240 JPEG with a red top-left corner whose EXIF says "rotate 90 degrees clockwise"."""
    image = photo(seed)
    image.paste((255, 0, 0), (0, 0, 60, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, quality=90, exif=exif.tobytes())


def alpha_png(seed: int) -> bytes:
    """A PNG whose left half is fully transparent."""
    image = photo(seed).convert("RGBA")
    alpha = np.full((240, 320), 255, np.uint8)
    alpha[:, :160] = 0
    image.putalpha(Image.fromarray(alpha))
    return encode(image, "PNG")


def bomb_png() -> bytes:
    """A tiny PNG whose header claims 50000x50000 pixels."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = data[12:29]  # chunk type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", 50_000, 50_000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COLUMNS
        return {row["url"]: row for row in reader}


def stored_files(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def file_hashes(out: Path) -> dict[str, str]:
    """Return the sha256 of every file under `out`, by relative path."""
    return {name: sha((out / name).read_bytes()) for name in stored_files(out)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- tests
def test_collect_keeps_every_good_image_and_rejects_each_bad_one(
    image_server, search_server, tmp_path
):
    s = image_server
    first = jpeg(1)
    good = {
        s.add("/a.jpg", first): first,
        s.add("/b.jpg", jpeg(2)): jpeg(2),
        s.add("/big.jpg", jpeg(3, (480, 360))): jpeg(3, (480, 360)),
        s.add_redirect("/moved", "/target.jpg"): jpeg(4),
        s.add_status("/flaky.jpg", 500, then=jpeg(5), times=1): jpeg(5),
        s.add("/cmyk.jpg", encode(photo(6).convert("CMYK"), quality=90)): None,
        s.add("/alpha.png", alpha_png(7), content_type="image/png"): alpha_png(7),
        s.add("/exif.jpg", exif_rotated(8)): exif_rotated(8),
    }
    s.add("/target.jpg", jpeg(4))
    s.add_redirect("/loop/a", "/loop/b")
    s.add_redirect("/loop/b", "/loop/a")
    bad = {  # url -> (status, reason)
        s.url("/missing.jpg"): ("rejected", "http_404"),
        s.add_status("/error.jpg", 500): ("failed", "http_500"),
        s.add_stall("/stall.jpg", 5): ("failed", "timeout"),
        s.add_drip("/drip.jpg", 0.1): ("failed", "too_slow"),
        s.url("/loop/a"): ("rejected", "redirect_loop"),
        s.add("/page.jpg", b"<html><body>cute dog</body></html>"): ("rejected", "not_an_image"),
        s.add("/zero.jpg", b""): ("rejected", "empty"),
        s.add("/cut.jpg", jpeg(9)[:4000]): ("rejected", "corrupt"),
        s.add("/bomb.png", bomb_png(), "image/png"): ("rejected", "too_many_pixels"),
        s.add_huge("/huge-declared", 40_000_000, declare_length=True): ("rejected", "too_large"),
        s.add_huge("/huge-streamed", 40_000_000, declare_length=False): ("rejected", "too_large"),
        s.add("/copy.jpg", first): ("rejected", "duplicate"),
        s.add("/near.jpg", near_copy(2)): ("rejected", "near_duplicate"),
        s.add("/tiny.jpg", jpeg(10, (60, 40))): ("rejected", "too_small"),
        f"http://127.0.0.1:{free_port()}/x.jpg": ("failed", "connection_error"),
        "file:///etc/hostname": ("rejected", "bad_url"),
    }
    search_server.serve("Beagle dog", [*good, *bad])
    out = tmp_path / "raw"

    start = time.monotonic()
    report = collect_images(
        search_server.source(), ["Beagle"], out, 20, rules=RULES, policy=FAST, progress=False
    )
    elapsed = time.monotonic() - start

    rows = manifest_rows(out)
    order = [(r["breed"], r["url"]) for r in rows.values()]
    assert order == sorted(order)  # sorted, so thread timing cannot reorder the file
    assert set(rows) == set(good) | set(bad)
    assert {u for u, r in rows.items() if r["status"] == "kept"} == set(good)
    assert {u: (rows[u]["status"], rows[u]["reason"]) for u in bad} == bad
    assert report.counts["Beagle"] == {"kept": len(good), "rejected": 12, "failed": 4}
    # Permanent errors are not retried; transient ones are, once (retries=1).
    assert s.hits["/missing.jpg"] == 1 and s.hits["/loop/a"] < 10
    assert s.hits["/error.jpg"] == s.hits["/stall.jpg"] == s.hits["/drip.jpg"] == 2
    assert s.hits["/flaky.jpg"] == 2
    # A huge body is cut off, not read: the declared one at the header, the other at the cap.
    assert s.bytes_sent["/huge-declared"] < 20_000_000
    assert s.bytes_sent["/huge-streamed"] < 20_000_000
    assert elapsed < 15  # the drip and the stall were cut short by the time caps

    # Only the manifest, the search's record and the kept images are on disk, each image a
    # bounded RGB JPEG named by sha.
    kept_rows = [rows[u] for u in good]
    on_disk = {"manifest.csv", "search/beagle.json"} | {r["path"] for r in kept_rows}
    assert stored_files(out) == on_disk
    for url, row in zip(good, kept_rows, strict=True):
        if good[url] is not None:
            assert row["sha256"] == sha(good[url])
        assert row["path"] == f"beagle/{row['sha256']}.jpg"
        assert row["breed"] == "Beagle" and row["source"] == "image_search"
        assert row["wnid"] == "n02088364"  # image search results carry the breed's WordNet id
        with Image.open(out / row["path"]) as saved:
            assert saved.format == "JPEG" and saved.mode == "RGB"
            assert max(saved.size) <= 300 and (saved.width, saved.height) == (
                int(row["width"]),
                int(row["height"]),
            )
            assert str(imagehash.phash(saved)) == row["phash"]
    assert rows[s.url("/big.jpg")]["width"] == "300"  # 480x360 bounded to 300x225
    assert (rows[s.url("/tiny.jpg")]["width"], rows[s.url("/tiny.jpg")]["height"]) == ("60", "40")

    with Image.open(out / rows[s.url("/exif.jpg")]["path"]) as upright:
        assert upright.width < upright.height  # the 320x240 stored pixels were turned
        r, g, b = upright.getpixel((upright.width - 10, 10))  # red corner now at top right
        assert r > 180 and g < 90 and b < 90
    with Image.open(out / rows[s.url("/alpha.png")]["path"]) as flat:
        left = np.asarray(flat)[:, : flat.width // 2 - 5]
        assert left.min() > 230  # transparency composited on white


def test_output_does_not_depend_on_thread_count(image_server, search_server, tmp_path):
    s = image_server
    urls = [s.add(f"/{i}.jpg", jpeg(i)) for i in range(6)]
    urls.insert(1, s.add("/near0.jpg", near_copy(0)))  # a near copy right after its original
    urls.insert(4, s.add("/tiny.jpg", jpeg(50, (50, 50))))
    search_server.serve("Pug dog", urls)
    outs = []
    for workers in (1, 8):
        out = tmp_path / f"w{workers}"
        collect_images(
            search_server.source(), ["Pug"], out, 4, rules=RULES, policy=FAST, workers=workers,
            progress=False,
        )  # fmt: skip
        outs.append(out)

    first, second = outs
    assert (first / "manifest.csv").read_bytes() == (second / "manifest.csv").read_bytes()
    assert stored_files(first) == stored_files(second)
    for name in stored_files(first):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    rows = manifest_rows(first)
    # The earlier of two near duplicates is kept; the target of 4 is met by candidate order.
    statuses = [rows[u]["status"] for u in urls[:6]]
    assert statuses == ["kept", "rejected", "kept", "kept", "rejected", "kept"]
    assert rows[urls[1]]["reason"] == "near_duplicate"
    assert urls[6] not in rows  # fetched or not, beyond the target: not recorded


def test_per_breed_cap_stops_fetching(image_server, search_server, tmp_path, capsys):
    s = image_server
    urls = [s.add(f"/{i}.jpg", jpeg(i)) for i in range(10)]
    search_server.serve("Akita dog", urls)
    report = collect_images(
        search_server.source(), ["Akita"], tmp_path, 2, rules=RULES, policy=FAST, workers=2,
        progress=True,
    )  # fmt: skip
    assert [q for _, q, _ in search_server.requests] == ["Akita dog"]  # page 1 had enough
    assert report.counts["Akita"]["kept"] == 2 and report.fetched == 2
    assert [s.hits[f"/{i}.jpg"] for i in range(10)] == [1, 1] + [0] * 8
    assert len(list((tmp_path / "akita").glob("*.jpg"))) == 2
    assert "Akita" in capsys.readouterr().err  # the progress bar goes to stderr


def test_a_rerun_changes_no_finished_breed_and_resumes_the_rest(
    image_server, search_server, tmp_path, capsys
):
    s = image_server
    found = {  # what the search finds on the first day: Akita has fewer photos than the target
        "Akita": [s.add(f"/akita/{i}.jpg", jpeg(i)) for i in range(3)],
        "Beagle": [s.add(f"/beagle/{i}.jpg", jpeg(10 + i)) for i in range(5)],
        "Pug": [s.add(f"/pug/{i}.jpg", jpeg(20 + i)) for i in range(6)],
    }
    for breed, urls in found.items():
        search_server.serve(f"{breed} dog", urls)
    search_server.refuse("Beagle dog", 429, 99)  # the engine turns us away at Beagle
    source, out = search_server.source(retries=1), tmp_path / "raw"

    def collect(per_breed: int = 4):
        return collect_images(source, found, out, per_breed, rules=RULES, policy=FAST,
                              progress=False)  # fmt: skip

    with pytest.raises(SearchError, match="Beagle dog.*re-run"):
        collect()
    assert "Beagle: image search page 1 failed (HTTP 429, rate limited); waiting" in (
        capsys.readouterr().err
    )
    assert {r["breed"] for r in manifest_rows(out).values()} == {"Akita"}

    search_server.refuse("Beagle dog", 429, 0)
    search_server.requests.clear()
    report = collect()  # resumes: Akita is finished (its search ran out), Beagle and Pug are not
    assert {q for _, q, _ in search_server.requests} == {"Beagle dog", "Pug dog"}
    assert {b: c["kept"] for b, c in report.counts.items()} == {"Akita": 3, "Beagle": 4, "Pug": 4}

    # The next day the search finds other photos, in another order. A re-run with the same
    # parameters searches nothing, fetches nothing and changes no file.
    before = file_hashes(out)
    for breed, urls in found.items():
        extra = [s.add(f"/{breed}/new{i}.jpg", jpeg(40 + i)) for i in range(4)]
        search_server.serve(f"{breed} dog", extra + urls[::-1])
    search_server.requests.clear()
    s.hits.clear()
    again = collect()
    assert again.fetched == 0 and search_server.requests == [] and sum(s.hits.values()) == 0
    assert file_hashes(out) == before

    # A larger target resumes the breeds below it, from the candidates the search recorded.
    more = collect(per_breed=6)
    assert {b: c["kept"] for b, c in more.counts.items()} == {"Akita": 3, "Beagle": 5, "Pug": 6}
    kept = {u for u, r in manifest_rows(out).items() if r["status"] == "kept"}
    assert kept == {u for urls in found.values() for u in urls}  # none of the next day's


KILLED_RUN = """
import sys
from helpers.collect.download import FetchPolicy
from helpers.collect.scrape import ImageRules, collect_images
from helpers.collect.sources import ManifestSource
source = ManifestSource(sys.argv[1])
collect_images(source, source.breeds(), sys.argv[2], 3, rules=ImageRules(min_side=100),
               policy=FetchPolicy(timeout=30, total_timeout=60, retries=0), workers=2,
               progress=False)
"""


def test_resume_after_sigkill_fetches_nothing_already_settled(image_server, tmp_path):
    s = image_server
    akita = [s.add(f"/akita/{i}.jpg", jpeg(i)) for i in range(2)]
    akita.append(s.add_status("/akita/flaky.jpg", 503, then=jpeg(2), times=1))
    beagle = [s.add(f"/beagle/{i}.jpg", jpeg(10 + i), delay=10) for i in range(3)]
    csv_path = tmp_path / "published.csv"
    lines = ["breed,url"] + [f"Akita,{u}" for u in akita] + [f"Beagle,{u}" for u in beagle]
    csv_path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "raw"

    # Akita is collected first (sorted); kill the run while Beagle's downloads hang.
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(csv_path), str(out)], cwd=PROJECT
    )
    deadline = time.monotonic() + 30
    while not (out / "manifest.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    before = manifest_rows(out)  # still valid CSV with the full header
    assert {u: r["status"] for u, r in before.items()} == {
        akita[0]: "kept",
        akita[1]: "kept",
        akita[2]: "failed",
    }
    (out / before[akita[1]]["path"]).unlink()  # a kept image lost from disk is fetched again
    for i in range(3):
        s.add(f"/beagle/{i}.jpg", jpeg(10 + i))  # the server answers promptly now
    s.add("/akita/flaky.jpg", jpeg(2))
    s.hits.clear()

    source = ManifestSource(csv_path)
    collect_images(source, ["Akita", "Beagle"], out, 3, rules=ImageRules(min_side=100),
                   policy=FAST, progress=False)  # fmt: skip
    assert s.hits["/akita/0.jpg"] == 0  # kept and on disk: not fetched again
    assert s.hits["/akita/1.jpg"] == 1 and s.hits["/akita/flaky.jpg"] == 1  # lost, failed
    assert all(s.hits[f"/beagle/{i}.jpg"] == 1 for i in range(3))

    # The resumed result equals an uninterrupted run, and no temp or orphan file is left.
    clean = tmp_path / "clean"
    collect_images(source, ["Akita", "Beagle"], clean, 3, rules=ImageRules(min_side=100),
                   policy=FAST, progress=False)  # fmt: skip
    assert (out / "manifest.csv").read_bytes() == (clean / "manifest.csv").read_bytes()
    assert stored_files(out) == stored_files(clean)
    assert sum(r["status"] == "kept" for r in manifest_rows(out).values()) == 6


def test_manifest_source_checks_sha256_and_redownloads_a_manifest(image_server, tmp_path):
    s = image_server
    good, tampered = jpeg(1), jpeg(2)
    urls = [s.add("/good.jpg", good), s.add("/tampered.jpg", tampered)]
    published = tmp_path / "published.csv"
    published.write_text(
        "breed,wnid,url,sha256\n"
        f"Chihuahua,n02085620,{urls[0]},{sha(good).upper()}\n"
        f"Chihuahua,n02085620,{urls[1]},{sha(b'what the publisher had')}\n"
    )
    report = collect_images(ManifestSource(published), ["Chihuahua"], tmp_path / "a", 5,
                            rules=RULES, policy=FAST, progress=False)  # fmt: skip
    rows = manifest_rows(tmp_path / "a")
    assert (rows[urls[0]]["status"], rows[urls[0]]["wnid"]) == ("kept", "n02085620")
    assert (rows[urls[1]]["status"], rows[urls[1]]["reason"]) == ("rejected", "checksum_mismatch")
    assert rows[urls[1]]["sha256"] == sha(tampered) and report.counts["Chihuahua"]["kept"] == 1

    # doggo's own manifest is a publishable data set: its kept rows download to the same files.
    again = ManifestSource(tmp_path / "a" / "manifest.csv")
    assert again.breeds() == ["Chihuahua"]
    collect_images(again, ["Chihuahua"], tmp_path / "b", 5, rules=RULES, policy=FAST,
                   progress=False)  # fmt: skip
    assert stored_files(tmp_path / "b") == stored_files(tmp_path / "a")
    assert s.hits["/tampered.jpg"] == 1


def test_folder_source_reads_stanford_layout_through_the_same_checks(tmp_path):
    root = tmp_path / "dogs"
    (root / "n02085620-Chihuahua").mkdir(parents=True)
    (root / "golden_retriever").mkdir()
    (root / "README.md").write_text("not a breed")
    for i in range(3):
        (root / "n02085620-Chihuahua" / f"n02085620_{i}.jpg").write_bytes(jpeg(i))
    (root / "n02085620-Chihuahua" / "notes.jpg").write_text("a text file named like a photo")
    (root / "golden_retriever" / "a.png").write_bytes(encode(photo(9), "PNG"))
    source = FolderSource(root)
    assert source.breeds() == ["Chihuahua", "Golden Retriever"]

    out = tmp_path / "raw"
    collect_images(source, source.breeds(), out, 10, rules=RULES, progress=False)
    rows = list(manifest_rows(out).values())
    assert all(r["url"].startswith("file://") and r["source"] == "folder" for r in rows)
    assert {(r["breed"], r["wnid"], r["status"], r["reason"]) for r in rows} == {
        ("Chihuahua", "n02085620", "kept", ""),
        ("Chihuahua", "n02085620", "rejected", "not_an_image"),
        ("Golden Retriever", "", "kept", ""),
    }
    assert len(list((out / "chihuahua").glob("*.jpg"))) == 3

    # The notebook helpers.
    frame = read_manifest(out)
    assert list(frame.columns) == list(COLUMNS) and str(frame["width"].dtype) == "Int64"
    counts = counts_by_breed_and_reason(out)
    assert counts.loc["Chihuahua"].to_dict() == {"kept": 3, "not_an_image": 1}
    assert counts.loc["Golden Retriever"].to_dict() == {"kept": 1, "not_an_image": 0}
    picked = sample_paths(out, 3, seed=1)
    assert picked == sample_paths(out, 3, seed=1) and len(set(picked)) == 3
    assert all(p.is_file() for p in picked) and len(sample_paths(out, 99)) == 4


def test_collects_from_the_shared_stanford_dogs_folder(stanford_dogs, tmp_path):
    source = FolderSource(stanford_dogs)
    breeds = source.breeds()[:2]
    assert len(source.breeds()) == 120 and breeds == sorted(breeds)
    report = collect_images(source, breeds, tmp_path, 5, rules=ImageRules(), progress=False)
    frame = read_manifest(tmp_path)
    kept = frame[frame["status"] == "kept"]
    assert report.total("kept") == 10 and kept.groupby("breed").size().to_dict() == {
        b: 5 for b in breeds
    }
    folders = {parse_breed_folder(p.name) for p in stanford_dogs.iterdir() if p.is_dir()}
    assert set(zip(kept["breed"], kept["wnid"], strict=True)) <= folders


def test_a_mirror_image_is_a_near_duplicate_within_a_breed_but_not_across(image_server, tmp_path):
    s = image_server
    mirrored = encode(ImageOps.mirror(photo(3)), quality=90)
    urls = [s.add("/a.jpg", jpeg(3)), s.add("/m.jpg", mirrored), s.add("/b.jpg", jpeg(4))]
    published = tmp_path / "published.csv"
    published.write_text(
        f"breed,url\nPug,{urls[0]}\nPug,{urls[1]}\nPug,{urls[2]}\nAkita,{urls[1]}\n"
    )
    collect_images(ManifestSource(published), ["Akita", "Pug"], tmp_path / "raw", 5, rules=RULES,
                   policy=FAST, progress=False)  # fmt: skip
    frame = read_manifest(tmp_path / "raw").set_index(["breed", "url"])
    assert frame.loc[("Pug", urls[1]), "reason"] == "near_duplicate"
    assert frame.loc[("Akita", urls[1]), "status"] == "kept"  # 02_split groups it across breeds
    a, m = frame.loc[("Pug", urls[0])], frame.loc[("Akita", urls[1])]
    assert imagehash.hex_to_hash(a["phash"]) - imagehash.hex_to_hash(m["phash"]) > 20
    assert imagehash.hex_to_hash(a["phash"]) - imagehash.hex_to_hash(m["phash_mirror"]) <= 2


def test_relative_urls_are_fetched_from_the_base_url_and_recorded_as_published(
    image_server, tmp_path
):
    s = image_server
    s.add("/site/a.jpg", jpeg(1))
    s.add("/site/b.jpg", jpeg(2))
    published = tmp_path / "urls.csv"
    published.write_text("breed,url\nPug,a.jpg\nPug,b.jpg\n")
    out = tmp_path / "raw"
    collect_images(ManifestSource(published, base_url=s.url("/site/")), ["Pug"], out, 2,
                   rules=RULES, policy=FAST, progress=False)  # fmt: skip
    assert set(manifest_rows(out)) == {"a.jpg", "b.jpg"}
    # The same site on another address (a new port): the run resumes, fetching nothing.
    s.hits.clear()
    again = collect_images(ManifestSource(published, base_url="http://127.0.0.1:9/"), ["Pug"],
                           out, 2, rules=RULES, policy=FAST, progress=False)  # fmt: skip
    assert again.fetched == 0 and sum(s.hits.values()) == 0


def test_a_manifest_without_mirror_hashes_is_read_by_filling_them_in(image_server, tmp_path):
    s = image_server
    urls = [s.add("/a.jpg", jpeg(1)), s.add("/b.jpg", jpeg(2))]
    published = tmp_path / "urls.csv"
    published.write_text(f"breed,url\nPug,{urls[0]}\nPug,{urls[1]}\n")
    out = tmp_path / "raw"
    collect_images(ManifestSource(published), ["Pug"], out, 2, rules=RULES, policy=FAST,
                   progress=False)  # fmt: skip
    current = read_manifest(out)
    old_columns = [c for c in COLUMNS if c != "phash_mirror"]
    current[old_columns].to_csv(out / "manifest.csv", index=False)  # as written before
    report = collect_images(ManifestSource(published), ["Pug"], out, 2, rules=RULES,
                            policy=FAST, progress=False)  # fmt: skip
    assert report.fetched == 0
    again = read_manifest(out)
    assert list(again.columns) == list(COLUMNS)
    assert again["phash_mirror"].tolist() == current["phash_mirror"].tolist()
    assert again["phash_mirror"].str.len().eq(16).all()


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_photos_and_the_manifest_get_the_modes_the_umask_gives(tmp_path, umask):
    # tempfile makes 0600 files: renamed into place, a data set built by root was unreadable to
    # the user who trains on it (or the container's non-root worker).
    root = tmp_path / "dogs" / "n02085620-Chihuahua"
    root.mkdir(parents=True)
    for i in range(2):
        (root / f"n02085620_{i}.jpg").write_bytes(jpeg(i))
    source = FolderSource(tmp_path / "dogs")
    old = os.umask(umask)
    try:
        collect_images(source, source.breeds(), tmp_path / "raw", 10, rules=RULES, progress=False)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "raw").rglob("*") if p.is_file()]
    assert len(files) == 3  # two photos and the manifest, no temporary left
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o666 & ~umask}
