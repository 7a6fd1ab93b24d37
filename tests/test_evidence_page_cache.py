"""Stored evidence leaves the page cache once it is durable (central.evidence_store.fsync_and_release).

Checked with mincore(2), which tells which pages of a file mapping are in the page cache: a file
just written is resident; once the store has made it durable, it is not. Linux only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import mmap
import os
import sys
from pathlib import Path

import pytest

from central.evidence_store import ContentStore
from central.ingest.partial_files import start_fsync

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mincore(2) is Linux's")

SIZE = 2 * 1024 * 1024  # a clip
PAGES = SIZE // mmap.PAGESIZE


def resident_pages(path: Path) -> int:
    """How many of the file's pages are in the page cache (mapping the file reads none of them)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    vec = (ctypes.c_ubyte * PAGES)()
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY) as mapped:
        start = ctypes.c_char.from_buffer(mapped)  # the mapping's first byte (copy-on-write: the file is safe)
        try:
            if libc.mincore(ctypes.addressof(start), len(mapped), vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            del start  # release the buffer before the mapping closes
    return sum(b & 1 for b in vec)


def write_clip(path: Path) -> str:
    data = os.urandom(SIZE)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_a_file_adopted_into_the_store_is_durable_and_out_of_the_page_cache(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "evidence")
    partial = tmp_path / "clip.part"
    sha = write_clip(partial)
    assert resident_pages(partial) > PAGES // 2  # just written: cached
    stored = store.adopt(partial, sha)
    assert resident_pages(stored) < PAGES // 8
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha  # and read back whole from the disk


def test_ingest_fsync_of_a_complete_file_drops_its_pages_too(tmp_path: Path) -> None:
    partial = tmp_path / "clip.part"
    write_clip(partial)
    assert resident_pages(partial) > PAGES // 2
    start_fsync(partial).result(timeout=30)
    assert resident_pages(partial) < PAGES // 8
