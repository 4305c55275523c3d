"""Turn one candidate URL into a validated JPEG or a reason code.

Downloads are bounded: timeouts, a total-time cap, a byte cap, redirect and retry limits.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from PIL import Image

import helpers
from helpers.hashing import mirror_aware_phashes
from helpers.images import MAX_PIXELS, ImageError, decode_image

USER_AGENT = f"doggo-scraper/{helpers.__version__} (course project; dog-breed photos)"
_CHUNK = 64 * 1024
# 4xx codes that mean "try again later" rather than "this URL is wrong".
_TRANSIENT_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Candidate:
    """One image a source proposes for a breed; `sha256` is set when the source knows it.

    `url` is the address as published (recorded in the manifest, the key a resumed run matches);
    `fetch_url`, when set, is where it is downloaded from (a relative URL resolved on a server).
    """

    breed: str
    wnid: str | None
    source: str
    url: str
    sha256: str | None = None
    fetch_url: str | None = None


@dataclass(frozen=True)
class ImageRules:
    """What a kept image must be and how it is stored."""

    min_side: int = 128  # shorter side in pixels; thumbnails teach the model little
    max_side: int = 800  # longest side of the stored JPEG
    jpeg_quality: int = 92
    near_duplicate_distance: int = 6  # mirror-aware phash bits counted as the same photo
    max_pixels: int = MAX_PIXELS  # larger images are refused undecoded (decompression bombs)


@dataclass
class Outcome:
    """The result of downloading and validating one candidate (before de-duplication)."""

    candidate: Candidate
    status: str
    reason: str = ""
    sha256: str = ""
    phash: str = ""
    phash_mirror: str = ""
    width: int | None = None
    height: int | None = None
    jpeg: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one download; `timeout` bounds the connect and every socket read."""

    timeout: float = 10.0
    total_timeout: float = 30.0  # per attempt, so a server dripping bytes cannot hold a worker
    max_bytes: int = 20_000_000
    max_redirects: int = 5
    retries: int = 2  # extra attempts after the first, for transient errors only
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    user_agent: str = USER_AGENT


class FetchError(Exception):
    """A download that failed; `reason` is a manifest code, `transient` says a retry may help."""

    def __init__(self, reason: str, message: str, *, transient: bool = False):
        super().__init__(message)
        self.reason = reason
        self.transient = transient


class _LimitedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows at most `limit` redirects; urllib raises an HTTPError (3xx) past that."""

    def __init__(self, limit: int):
        super().__init__()
        # typeshed declares both ClassVars; urllib reads them through the instance.
        self.max_redirections = limit  # type: ignore[misc]
        self.max_repeats = min(self.max_repeats, limit)  # type: ignore[misc]


def fetch(url: str, policy: FetchPolicy, *, schemes: tuple[str, ...] = ("http", "https")) -> bytes:
    """Return the bytes at `url`, retrying transient failures with exponential backoff."""
    for attempt in range(policy.retries + 1):
        try:
            return fetch_once(url, policy, schemes=schemes)
        except FetchError as err:
            if not err.transient or attempt == policy.retries:
                raise
        time.sleep(policy.backoff * 2**attempt)
    raise AssertionError("unreachable")  # the loop either returns or raises


def fetch_once(
    url: str, policy: FetchPolicy, *, schemes: tuple[str, ...] = ("http", "https")
) -> bytes:
    """Download `url` once within the policy's limits, or raise FetchError."""
    if urlsplit(url).scheme.lower() not in schemes:
        raise FetchError("bad_url", f"URL scheme not allowed here: {url[:200]}")
    request = urllib.request.Request(url, headers={"User-Agent": policy.user_agent})
    deadline = time.monotonic() + policy.total_timeout
    try:
        with _opener(policy, schemes).open(request, timeout=policy.timeout) as response:
            return _read_capped(response, policy, deadline)
    except FetchError:
        raise
    except urllib.error.HTTPError as err:
        raise _http_error(err) from err
    except urllib.error.URLError as err:
        raise _network_error(err.reason, url) from err
    except (OSError, http.client.HTTPException) as err:
        raise _network_error(err, url) from err


def _opener(policy: FetchPolicy, schemes: tuple[str, ...]) -> urllib.request.OpenerDirector:
    # Built by hand rather than with build_opener so that no FTP, data: or file: handler exists
    # unless asked for: a search result or redirect must not read local files.
    opener = urllib.request.OpenerDirector()
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        _LimitedRedirects(policy.max_redirects),
    ]
    if "file" in schemes:
        handlers.append(urllib.request.FileHandler())
    for handler in handlers:
        opener.add_handler(handler)
    return opener


def _read_capped(response, policy: FetchPolicy, deadline: float) -> bytes:
    """Read the body in small pieces, stopping at the byte cap or the deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > policy.max_bytes:
        raise FetchError("too_large", f"Content-Length {declared} is over {policy.max_bytes}")
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchError("too_slow", "download took too long", transient=True)
        # read1 returns after one socket read; read(n) would wait for n bytes and so
        # let a slow-drip server hold us far past the deadline.
        chunk = response.read1(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > policy.max_bytes:  # the header may be missing or lie
            raise FetchError("too_large", f"body is over {policy.max_bytes} bytes")
        chunks.append(chunk)


def _http_error(err: urllib.error.HTTPError) -> FetchError:
    err.close()  # the error carries the open response; we never read its body
    if 300 <= err.code < 400:
        return FetchError("redirect_loop", f"too many redirects or a redirect loop: {err}")
    transient = err.code >= 500 or err.code in _TRANSIENT_4XX
    return FetchError(f"http_{err.code}", str(err), transient=transient)


def _network_error(cause: object, url: str) -> FetchError:
    if isinstance(cause, (TimeoutError, socket.timeout)):
        return FetchError("timeout", f"timed out: {cause}", transient=True)
    if urlsplit(url).scheme == "file":
        return FetchError("file_error", f"cannot read {url}: {cause}")
    if isinstance(cause, str):  # urllib reports e.g. "unknown url type" as a plain string
        return FetchError("bad_url", f"{cause}: {url[:200]}")
    return FetchError("connection_error", f"connection failed: {cause}", transient=True)


def evaluate(
    cand: Candidate, schemes: tuple[str, ...], rules: ImageRules, policy: FetchPolicy
) -> Outcome:
    """Download, check and re-encode one candidate; runs in a worker thread."""
    try:
        data = fetch(cand.fetch_url or cand.url, policy, schemes=schemes)
    except FetchError as err:
        return Outcome(cand, "failed" if err.transient else "rejected", err.reason)
    sha = hashlib.sha256(data).hexdigest()
    if cand.sha256 and cand.sha256.strip().lower() != sha:
        return Outcome(cand, "rejected", "checksum_mismatch", sha)
    try:
        image = decode_image(data, max_pixels=rules.max_pixels)
    except ImageError as err:
        return Outcome(cand, "rejected", err.reason, sha)
    if min(image.size) < rules.min_side:
        return Outcome(cand, "rejected", "too_small", sha, "", "", *image.size)
    image.thumbnail((rules.max_side, rules.max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=rules.jpeg_quality, optimize=True)
    jpeg = buffer.getvalue()
    # Hash the stored JPEG, not the in-memory image, so the phash matches the file on disk.
    phash, phash_mirror = mirror_aware_phashes(Image.open(io.BytesIO(jpeg)))
    return Outcome(cand, "kept", "", sha, phash, phash_mirror, *image.size, jpeg)
