"""Photo sources: image search, a published URL manifest, a local folder of breed folders.

A source only proposes candidate URLs per breed; `helpers.collect.scrape` downloads and checks them.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from ddgs import DDGS
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from helpers.breeds import imagenet_wnid, parse_breed_folder, search_query
from helpers.collect.download import Candidate
from helpers.paths import project_path


class Source(Protocol):
    """Anything that proposes candidate image URLs for a breed, best first."""

    name: str
    schemes: tuple[str, ...]  # URL schemes its candidates may use (file: only for local data)

    def candidates(self, breed: str, limit: int) -> list[Candidate]:
        """Return up to `limit` candidates for `breed`, in a stable order."""
        ...


class SearchError(RuntimeError):
    """The image search kept failing (rate limit, network) after its retries."""


class ImageSearchSource:
    """Candidates from a web image search (the `ddgs` package) for "<breed> dog"."""

    name = "image_search"
    schemes: tuple[str, ...] = ("http", "https")

    def __init__(self, *, retries: int = 3, backoff: float = 5.0, timeout: int = 10):
        self.retries, self.backoff, self.timeout = retries, backoff, timeout

    def candidates(self, breed: str, limit: int) -> list[Candidate]:
        """Search for the breed and return the distinct image URLs found, in result order."""
        urls = [r.get("image") for r in self._search(search_query(breed), limit)]
        unique = dict.fromkeys(u for u in urls if isinstance(u, str) and u)
        wnid = imagenet_wnid(breed)  # so 05 can start the breed from ImageNet's row
        return [Candidate(breed, wnid, self.name, url) for url in list(unique)[:limit]]

    def _search(self, query: str, limit: int) -> list[dict]:
        for attempt in range(self.retries + 1):
            try:
                return DDGS(timeout=self.timeout).images(query, max_results=limit)
            except (RatelimitException, TimeoutException) as err:
                last: Exception = err
            except DDGSException as err:
                if "no results" in str(err).lower():  # ddgs raises instead of returning []
                    return []
                last = err
            if attempt < self.retries:  # search engines rate-limit bursts; wait it out
                time.sleep(self.backoff * 2**attempt)
        raise SearchError(
            f"image search for {query!r} failed {self.retries + 1} times ({last!r}); "
            "wait a few minutes and re-run: finished work is kept"
        ) from last


class ManifestSource:
    """Candidates from a published CSV (breed, url, optional sha256 and wnid), e.g. a manifest.

    Rows with a `status` column other than `kept` are skipped, so doggo's own manifest works.
    With `base_url`, relative URLs are downloaded from that server but recorded as published, so
    a resumed run matches them even when the server's address has changed.
    """

    name = "manifest"
    schemes: tuple[str, ...] = ("http", "https")

    def __init__(self, csv_path: str | os.PathLike, base_url: str | None = None):
        self.base_url = base_url
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        missing = {"breed", "url"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{csv_path} lacks columns {sorted(missing)}")
        self._rows = [r for r in rows if r.get("status", "kept") in ("kept", "")]

    def breeds(self) -> list[str]:
        """Return the breeds the CSV lists, sorted."""
        return sorted({r["breed"] for r in self._rows})

    def candidates(self, breed: str, limit: int) -> list[Candidate]:
        """Return the CSV's rows for `breed` in file order."""
        rows = [r for r in self._rows if r["breed"] == breed][:limit]
        return [
            Candidate(
                breed, r.get("wnid") or None, self.name, r["url"], r.get("sha256") or None,
                self._fetch_url(r["url"]),
            )
            for r in rows
        ]  # fmt: skip

    def _fetch_url(self, url: str) -> str | None:
        """Return where a relative URL is downloaded from, or None for an absolute one."""
        if self.base_url is None or urlsplit(url).scheme:
            return None
        return urljoin(self.base_url, url)


class FolderSource:
    """Candidates from a local folder of breed folders (`Golden_Retriever/` or Stanford Dogs'
    `n02085620-Chihuahua/`), as file: URLs validated exactly like downloads."""

    name = "folder"
    schemes: tuple[str, ...] = ("file",)

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self._folders: dict[str, tuple[Path, str | None]] = {}
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if folder.name.startswith("."):
                continue
            display, wnid = parse_breed_folder(folder.name)
            if display in self._folders:
                raise ValueError(f"two folders in {self.root} are both breed {display!r}")
            self._folders[display] = (folder, wnid)

    def breeds(self) -> list[str]:
        """Return the breed display names of the sub-folders, sorted."""
        return sorted(self._folders)

    def candidates(self, breed: str, limit: int) -> list[Candidate]:
        """Return the breed folder's files as file: URLs, sorted by name."""
        if breed not in self._folders:
            raise KeyError(f"no folder for breed {breed!r} in {self.root}")
        folder, wnid = self._folders[breed]
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        return [Candidate(breed, wnid, self.name, p.as_uri()) for p in files[:limit]]


def make_source(kind: str, path: str | os.PathLike | None = None) -> Source:
    """Return the source a notebook parameter names: "search", "manifest" (CSV) or "folder"."""
    if kind == "search":
        return ImageSearchSource()
    if kind not in ("manifest", "folder"):
        raise ValueError(f"unknown source {kind!r}: use 'search', 'manifest' or 'folder'")
    if path is None:
        raise ValueError(f"the {kind} source needs source_path (a CSV file or a folder)")
    resolved = project_path(path)
    if not resolved.exists():
        raise FileNotFoundError(f"source_path {resolved} does not exist")
    return ManifestSource(resolved) if kind == "manifest" else FolderSource(resolved)
