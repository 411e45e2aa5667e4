"""Server-side timings for benchmarks: how long a page rerun took from start to result shown.

Recording is off unless DIGITREC_TIMING_LOG names a file; then each record appends one line
`<name> <milliseconds>` to it. Benchmarks read that file; users never pay for it.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()


def start() -> float:
    """A start time for `record`."""
    return time.perf_counter()


def record(name: str, started: float) -> None:
    """Append the time since `started` under `name`, if DIGITREC_TIMING_LOG is set."""
    path = os.environ.get("DIGITREC_TIMING_LOG")
    if not path:
        return
    milliseconds = (time.perf_counter() - started) * 1000
    with _lock, open(path, "a") as log:
        log.write(f"{name} {milliseconds:.3f}\n")


def read(path) -> dict[str, list[float]]:
    """The recorded times per name, in milliseconds."""
    times: dict[str, list[float]] = {}
    with open(path) as log:
        for line in log:
            name, value = line.split()
            times.setdefault(name, []).append(float(value))
    return times
