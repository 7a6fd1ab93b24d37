"""Files that survive a power cut: written to a temporary name, fsynced, renamed, directory fsynced.

After a crash a file is either absent or complete, never half-written under its final name.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

__all__ = ["fsync_dir", "write_durably"]

_CHUNK = 1024 * 1024


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(dest: Path) -> Path:
    # Unique per process and thread, and starting with '.', so recovery can tell it from real files.
    return dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def write_durably(
    dest: Path, content: bytes | Path, *, sha256: str | None = None, size: int | None = None
) -> None:
    """Write `content` (bytes, or a file to copy) to `dest` durably.

    With `sha256` and `size` given, the bytes are checked before the rename, and a mismatch
    raises ValueError and leaves nothing behind.
    """
    tmp = tmp_name(dest)
    digest = hashlib.sha256()
    written = 0
    try:
        with open(tmp, "wb") as out:
            if isinstance(content, bytes | bytearray | memoryview):
                out.write(content)
                digest.update(content)
                written = len(content)
            else:
                with open(content, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ValueError(f"{dest.name}: content has sha256 {digest.hexdigest()}, expected {sha256}")
        if size is not None and written != size:
            raise ValueError(f"{dest.name}: content has {written} bytes, expected {size}")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
