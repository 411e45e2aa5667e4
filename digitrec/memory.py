"""Give memory back: a full garbage collection at most every GC_INTERVAL_S seconds.

Streamlit's own full gc.collect() after every script run is off (`runner.postScriptGC =
false`): with pandas, Altair and Arrow loaded it was half of each rerun. Python's automatic
collector alone rarely reaches the oldest generation, though, and a few small reference
cycles (a script run's frames, a caught exception's traceback) can keep megabytes of
pictures and query results alive: the server grew by gigabytes and never shrank. So every
script run calls `collect_if_due()`, which collects fully when the last full collection is
GC_INTERVAL_S old, in whichever session comes first: the cost of one collection (tens of
ms) is paid once every GC_INTERVAL_S across all sessions, not on every rerun.

Two glibc settings keep freed memory from staying in the server's RSS (Linux only):
- Large blocks (MMAP_THRESHOLD_BYTES and up: a decoded photo, its float copies) are always
  mapped and unmapped on their own. By default glibc raises that threshold up to 32 MB after
  the first such block is freed, so later photos land in the heaps of the per-thread malloc
  arenas (each session's script runs in its own thread) and their pages are kept there.
- After each scheduled collection, malloc_trim(0) hands free heap pages back to the system.
- At most MALLOC_ARENAS malloc arenas: glibc's default (8 per core) gives every session thread
  an arena of its own, each holding on to its high-water mark.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import threading
import time

GC_INTERVAL_S = 10.0
MMAP_THRESHOLD_BYTES = 1024 * 1024
M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers in glibc's malloc.h
M_ARENA_MAX = -8
MALLOC_ARENAS = 2

_lock = threading.Lock()
_last = time.monotonic()


def _glibc():
    """glibc, or None elsewhere (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018 (both must exist)
    except (OSError, AttributeError):
        return None
    return libc


_libc = _glibc()
if _libc is not None:  # once per process, on the first import (the app's first script run)
    _libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    _libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def collect_if_due(interval_s: float = GC_INTERVAL_S, clock=time.monotonic) -> int | None:
    """Run gc.collect() if the last one is `interval_s` old; return what it found, else None.

    Never waits: if another thread is collecting right now, this call does nothing.
    """
    global _last
    if clock() - _last < interval_s or not _lock.acquire(blocking=False):
        return None
    try:
        if clock() - _last < interval_s:
            return None
        found = gc.collect()
        if _libc is not None:
            _libc.malloc_trim(0)
        _last = clock()
        return found
    finally:
        _lock.release()
