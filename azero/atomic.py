"""Atomic file writes: a reader (or a process killed mid-write) sees either the old file or the
complete new one, never a partial file. Temp file in the same folder, flush + fsync, os.replace,
then fsync of the folder so the rename itself survives a crash."""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """`with atomic_open(p) as f: f.write(...)`: `p` appears only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_with(path: str | os.PathLike, writer: Callable[[BinaryIO], None]) -> None:
    """Atomic write through a function that writes to a binary file object
    (e.g. `lambda f: torch.save(obj, f)` or `lambda f: np.savez(f, **arrays)`)."""
    with atomic_open(path) as f:
        writer(f)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform/filesystem
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# A write takes milliseconds to seconds: a temp file older than this belongs to a dead writer,
# a younger one perhaps to a worker still finishing after its parent died (workers check on
# their parent between pieces of work).
ORPHAN_WRITE_GRACE_SECONDS = 60.0


def remove_stale_temp_files(folder: str | os.PathLike, older_than: float = 0.0) -> int:
    """Delete leftovers of writes killed mid-way (`.<name>.*.tmp`) last modified more than
    `older_than` seconds ago (a younger one may belong to a writer still finishing); returns how
    many were deleted."""
    n = 0
    now = time.time()
    for p in Path(folder).glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if now - p.stat().st_mtime >= older_than:
                p.unlink()
                n += 1
    return n
