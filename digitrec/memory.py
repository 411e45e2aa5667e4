"""Give memory back: a full garbage collection at most every GC_INTERVAL_S seconds.

Streamlit's own full gc.collect() after every script run is off (`runner.postScriptGC =
false`): with pandas, Altair and Arrow loaded it was half of each rerun. Python's automatic
collector alone rarely reaches the oldest generation, though, and a few small reference
cycles (a script run's frames, a caught exception's traceback) can keep megabytes of
pictures and query results alive: the server grew by gigabytes and never shrank. So every
script run calls `collect_if_due()`, which collects fully when the last full collection is
GC_INTERVAL_S old, in whichever session comes first: the cost of one collection (tens of
ms) is paid once every GC_INTERVAL_S across all sessions, not on every rerun.
"""

from __future__ import annotations

import gc
import threading
import time

GC_INTERVAL_S = 10.0

_lock = threading.Lock()
_last = time.monotonic()


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
        _last = clock()
        return found
    finally:
        _lock.release()
