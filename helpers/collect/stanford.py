"""The Stanford Dogs photos from their official download, for a hosted runtime with internet.

`fetch_breeds` is what 01 calls when the shared copy is not there. `download_archive` streams
`images.tar` with resume (an interrupted download goes on from where it stopped) and checks its
size; `extract_breeds` unpacks the breeds asked for into
`<wnid>-<Breed_name>/` folders, the layout of ../shared/datasets/stanford-dogs-120 that the
"folder" source reads, refusing any member that would land outside the output folder.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from helpers.atomic import write_atomic
from helpers.breeds import parse_breed_folder
from helpers.collect.download import USER_AGENT

STANFORD_DOGS_URL = "http://vision.stanford.edu/aditya86/ImageNetDogs/images.tar"
# The site publishes no checksum; the archive's size is the check (a cut download is shorter).
STANFORD_DOGS_BYTES = 793_579_520
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """The archive is not what was expected: wrong size or checksum, or an unsafe member."""


def download_archive(
    url: str = STANFORD_DOGS_URL,
    dest: str | os.PathLike = "images.tar",
    *,
    expected_bytes: int | None = STANFORD_DOGS_BYTES,
    sha256: str | None = None,
    timeout: float = 30.0,
    retries: int = 5,
) -> Path:
    """Download `url` to `dest` unless it is already there complete; return `dest`.

    The bytes go to `<dest>.part` first, and a re-run (or a retry after a dropped connection)
    asks the server only for what is missing (HTTP Range). A wrong size or checksum raises
    ArchiveError and deletes the bad file.
    """
    dest = Path(dest)
    if dest.is_file() and _matches(dest, expected_bytes, sha256):
        return dest
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch_rest(url, part, expected_bytes, timeout)
            break
        except (http.client.HTTPException, OSError) as err:  # URLError is an OSError
            if isinstance(err, urllib.error.HTTPError) and err.code < 500:
                raise
            if attempt == retries:
                raise
            time.sleep(min(2**attempt, 30))
    if not _matches(part, expected_bytes, sha256):
        size = part.stat().st_size
        part.unlink()
        raise ArchiveError(
            f"{url} gave {size} bytes, expected {expected_bytes}"
            + (f" with sha256 {sha256}" if sha256 else "")
            + "; the partial file was deleted, run again to download afresh"
        )
    os.replace(part, dest)
    return dest


def fetch_breeds(
    breeds: Iterable[str] | None,
    folder: str | os.PathLike,
    *,
    url: str = STANFORD_DOGS_URL,
    expected_bytes: int | None = STANFORD_DOGS_BYTES,
) -> Path:
    """Download the archive into `folder` (once) and extract `breeds` (None: all) into
    `folder/photos`; return that folder, laid out as ../shared/datasets/stanford-dogs-120."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    archive = download_archive(url, folder / "images.tar", expected_bytes=expected_bytes)
    photos = folder / "photos"
    extract_breeds(archive, photos, breeds)
    return photos


def _fetch_rest(url: str, part: Path, expected: int | None, timeout: float) -> None:
    """Append to `part` what it lacks of `url`, restarting when the server ignores the Range."""
    have = part.stat().st_size if part.exists() else 0
    if expected is not None and have >= expected:
        return  # complete (or too long: the size check says so)
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing past what we have: the size check decides
            return
        raise
    with response:
        resumed = response.status == 206
        if not resumed:
            have = 0  # a full answer: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else expected
        with (
            part.open("ab" if resumed else "wb") as out,
            tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name) as bar,
        ):
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
                have += len(chunk)
    if total is not None and length is not None and have < total:
        # http.client's read(n) returns b"" on a connection closed early instead of raising.
        raise ConnectionError(f"{url}: the connection closed after {have} of {total} bytes")


def _matches(path: Path, expected_bytes: int | None, sha256: str | None) -> bool:
    """Return whether the file has the expected size and checksum (each when given)."""
    if expected_bytes is not None and path.stat().st_size != expected_bytes:
        return False
    return sha256 is None or _sha256(path) == sha256.lower()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def breed_folders(archive: str | os.PathLike) -> dict[str, str]:
    """Return the archive's breed folders (`Images/<wnid>-<name>`) by breed display name."""
    with tarfile.open(archive) as tar:
        members = _safe_members(tar)
    folders = {PurePosixPath(m.name).parts[-2] for m in members if m.isfile()}
    return {parse_breed_folder(folder)[0]: folder for folder in sorted(folders)}


def extract_breeds(
    archive: str | os.PathLike, out_dir: str | os.PathLike, breeds: Iterable[str] | None = None
) -> dict[str, int]:
    """Extract the photos of `breeds` (display names, as 01's `breeds`; None: all) into
    `out_dir/<wnid>-<name>/`; return the number of photos per breed.

    Files already there with the right size are kept, so an interrupted extraction resumes.
    Raises ArchiveError before writing anything if any member is unsafe (an absolute path, `..`,
    a link or a device), and KeyError naming the breeds the archive lacks.
    """
    out_dir = Path(out_dir)
    with tarfile.open(archive) as tar:
        members = [m for m in _safe_members(tar) if m.isfile()]
        by_breed: dict[str, list[tarfile.TarInfo]] = {}
        for member in members:
            folder = PurePosixPath(member.name).parts[-2]
            by_breed.setdefault(parse_breed_folder(folder)[0], []).append(member)
        wanted = sorted(by_breed) if breeds is None else list(breeds)
        missing = [breed for breed in wanted if breed not in by_breed]
        if missing:
            raise KeyError(f"breeds not in {archive}: {missing}; it has {sorted(by_breed)}")
        chosen = [m for breed in wanted for m in by_breed[breed]]
        for member in tqdm(chosen, desc="extracting", unit="photo"):
            target = out_dir.joinpath(*PurePosixPath(member.name).parts[-2:])
            if target.is_file() and target.stat().st_size == member.size:
                continue
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has contents
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, source.read())
    return {breed: len(by_breed[breed]) for breed in wanted}


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Return the archive's members, all checked: only folders and photos in breed folders."""
    members = tar.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or "\\" in member.name:
            raise ArchiveError(f"unsafe path in archive: {member.name!r}")
        if not (member.isfile() or member.isdir()):
            raise ArchiveError(f"archive member is a link or device: {member.name!r}")
        if member.isfile() and len(path.parts) < 2:
            raise ArchiveError(f"photo outside a breed folder: {member.name!r}")
    return members
