"""Content-addressed files: <root>/ab/<sha256>. Written once (tmp -> fsync -> rename), never rewritten;
removed only by the retention sweep (central.retention), after its row is marked purged.

Paths are built only from checked sha256 hex strings, never from anything a device sent as a name.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from wire.ids import check_sha256

__all__ = ["ContentStore", "fsync_and_release", "sha256_of_file"]

_CHUNK = 1024 * 1024


def sha256_of_file(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def fsync_and_release(fd: int) -> None:
    """fsync a file written for the store, then let the kernel drop its pages from the page cache.

    Evidence is written once and read rarely (an export, an audit, a notification's snapshot),
    so keeping every new file's pages cached only grows the page cache by what ingest writes
    (gigabytes a day) and pushes out what is read often, the database's pages. The pages are
    clean after the fsync, so dropping them costs no write. It also keeps ingest fast on a VM:
    on the dev VM, writing 2 MB files took 0.9 ms of CPU each until about 600 MB had gone into
    the page cache and 3.4-6.6 ms after; dropped like this, 1.1-1.3 ms throughout
    (docs/benchmarks.md, sixth round).
    """
    os.fsync(fd)
    if hasattr(os, "posix_fadvise"):  # POSIX; not on Windows or macOS
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentStore:
    """A folder of immutable files named by their sha256 (evidence, and refused payloads in quarantine)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def relative_path(self, sha256: str) -> str:
        check_sha256(sha256)
        return f"{sha256[:2]}/{sha256}"

    def path_for(self, sha256: str) -> Path:
        return self.root / self.relative_path(sha256)

    def has(self, sha256: str, size: int | None = None) -> bool:
        """True when the file is there (and, if `size` is given, has that size)."""
        try:
            st = self.path_for(sha256).stat()
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def adopt(self, src: Path, sha256: str, *, sync_dir: bool = True, fsynced: bool = False) -> Path:
        """Move `src`, whose content the caller has verified to hash to `sha256`, into the store.

        `src` must be on the same file system (data_dir/incoming is). If the store already has
        the file, `src` is deleted instead: the content is the same by construction.
        `sync_dir=False` leaves the fsync of the new name's folder to the caller (`sync_folder`),
        who may then make several names durable with one flush. `fsynced=True`: the caller has
        fsynced `src` since its last write, so its content is not fsynced again.
        """
        dest = self.path_for(sha256)
        if dest.exists():
            src.unlink(missing_ok=True)
            return dest
        dest.parent.mkdir(exist_ok=True)
        if not fsynced:
            with src.open("rb+") as fh:
                fsync_and_release(fh.fileno())
        os.chmod(src, 0o444)
        os.replace(src, dest)
        if sync_dir:
            _fsync_dir(dest.parent)
        return dest

    def sync_folder(self, path: Path) -> None:
        """fsync the folder holding `path` (a name `adopt(sync_dir=False)` made)."""
        _fsync_dir(path.parent)

    def remove(self, sha256: str, *, sync_dir: bool = True) -> bool:
        """Delete the file (the retention sweep, after its row was marked purged); False if it was not there.

        The ab/ folder stays, even when empty: an `adopt` of the same prefix may be between its
        mkdir and its rename. `sync_dir=False` leaves the folder's fsync to the caller (`sync_folder`).
        """
        path = self.path_for(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        if sync_dir:
            _fsync_dir(path.parent)
        return True

    def put_bytes(self, data: bytes) -> str:
        """Store `data`; return its sha256."""
        sha = hashlib.sha256(data).hexdigest()
        dest = self.path_for(sha)
        if dest.exists():
            return sha
        dest.parent.mkdir(exist_ok=True)
        tmp = dest.parent / f".{sha}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(dest.parent)
        return sha
