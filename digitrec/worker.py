"""The training process the server starts: `python -m digitrec.worker` (see digitrec.jobs).

    python -m digitrec.worker JOB_FOLDER MODELS_DIR EVENTS_FD PARENT_PID LOCK_FD

JOB_FOLDER holds config.json and, optionally, samples.npz. Events go to the inherited file
descriptor EVENTS_FD as JSON lines (digitrec.events.encode). A line "stop" on stdin stops the
training after the current batch (what it learned is still saved). The process holds the
training lock (the inherited LOCK_FD) until it exits, and exits when its parent does.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PARENT_CHECK_S = 1.0


def die_with_parent(parent_pid: int) -> None:
    """Exit when the process `parent_pid` ends: PR_SET_PDEATHSIG on Linux, and a watchdog."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still works
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(3)

    def watch():
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watchdog").start()


def read_commands(stop: threading.Event) -> None:
    """Set `stop` on a "stop" line; exit when stdin closes (the server is gone)."""
    for line in sys.stdin:
        if line.strip() == "stop":
            stop.set()
    os._exit(3)


def main(argv: list[str]) -> int:
    job_folder, models_dir, events_fd, parent_pid, lock_fd = (
        Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3]), int(argv[4]))
    die_with_parent(parent_pid)
    if lock_fd >= 0:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the server's lock, now held here
    stop = threading.Event()
    threading.Thread(target=read_commands, args=(stop,), daemon=True, name="commands").start()
    try:
        os.nice(10)  # predictions in the server process come first
    except OSError:
        pass
    events = os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)
    sending = threading.Lock()

    from digitrec.events import Failed, Usage, encode

    def send(event) -> None:
        with sending:
            events.write(encode(event) + "\n")

    try:
        import numpy as np

        from digitrec.config import TrainingConfig
        from digitrec.errors import DigitrecError
        from digitrec.jobs import run_training

        config = TrainingConfig.from_dict(json.loads((job_folder / "config.json").read_text()))
        samples = None
        if (job_folder / "samples.npz").is_file():
            with np.load(job_folder / "samples.npz") as stored:
                samples = tuple(stored[f"arr_{index}"] for index in range(len(stored.files)))
        try:
            run_training(config, models_dir, samples, on_progress=send, stop_event=stop)
        except Exception as error:  # every failure goes to the page instead of dying silently
            message = str(error) if isinstance(error, (DigitrecError, ValueError)) else \
                f"{type(error).__name__}: {error}"
            send(Failed(message))
    finally:
        send(Usage(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
        events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
