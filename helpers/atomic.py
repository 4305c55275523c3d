"""Atomic file writes and directory publishing whose results get the modes a plain write would.

`tempfile` creates files 0600 and directories 0700 whatever the umask, so renaming them into
place leaves a model other users (a container's non-root user, a mounted volume) cannot read.
Everything here is made with `tempfile` for safety, then given `0o666 & ~umask` (files) or
`0o777 & ~umask` (directories) before it is renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """Return the process's umask without changing it (read from /proc where possible)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc (macOS): the classic set-and-restore, briefly racy
    os.umask(mask)
    return mask


TEMP_SUFFIX = ".tmp"  # what a write interrupted by a crash leaves behind: ".<name>.<random>.tmp"


def write_atomic(path: str | os.PathLike, data: bytes | str, *, sync: bool = True) -> Path:
    """Write `data` to `path` so readers see the old or the new content, never a part; return it.

    The file ends with mode `0o666 & ~umask`, as `open(path, "w")` would create it. With `sync`
    the data reaches the disk before the rename (a manifest); without, a crash may lose the file
    but never leaves a part of it under its name (one of many photos, cheaper).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path, sync=sync) as temporary, open(temporary, "wb") as file:
        file.write(payload)
    return Path(path)


@contextmanager
def replacing(path: str | os.PathLike, *, sync: bool = True) -> Iterator[Path]:
    """Yield a new temporary file's path beside `path` for a writer that needs a path or streams
    a large file; when the block ends it becomes `path` in one rename, as `write_atomic`.

    The name is unique (mkstemp: random, created exclusively), so several processes, on other
    machines too, may write the same `path` at once: each publishes a whole file, the last one
    stays. On an exception the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    descriptor, name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent
    )
    os.close(descriptor)
    try:
        yield Path(name)
        if sync:
            with open(name, "rb") as file:  # fsync through any descriptor flushes the file
                os.fsync(file.fileno())
        os.chmod(name, 0o666 & ~current_umask())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def leftover_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Return the temporary files interrupted `write_atomic` calls left in `folder`, sorted."""
    return sorted(p for p in Path(folder).glob(f".*{TEMP_SUFFIX}") if p.is_file())


@contextmanager
def publishing_dir(path: str | os.PathLike, order: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a temporary sibling directory to fill; on success it becomes `path` atomically.

    A new `path` appears whole (one rename). An existing one has its files replaced one by one,
    those named in `order` first in that order (e.g. the model before the metadata that announces
    it), then the rest; only what the temporary directory holds at the end is published, so a
    file removed from it keeps its existing copy in `path` as it is. On an exception nothing is
    published and the temporary copy is removed.
    The directory ends with mode `0o777 & ~umask`, as `mkdir` would create it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())
        yield tmp
        try:
            os.rename(tmp, path)  # atomic when `path` does not exist yet
            return
        except OSError:
            if not path.is_dir():
                raise
        names = [*order, *sorted(set(os.listdir(tmp)) - set(order))]
        for name in names:
            if (tmp / name).exists():
                os.replace(tmp / name, path / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
