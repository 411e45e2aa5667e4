"""The training process the server starts: `python -m digitrec.worker` (see digitrec.jobs).

    python -m digitrec.worker JOB_FOLDER MODELS_DIR EVENTS_FD PARENT_PID LOCK_FD

JOB_FOLDER holds config.json and, optionally, samples.npz. Events go to the inherited file
descriptor EVENTS_FD as JSON lines (digitrec.events.encode). A line "stop" on stdin stops the
training after the current batch (what it learned is still saved). The process holds the
training lock (the inherited LOCK_FD) until it exits, and exits when its parent does.

Each half of the work runs in a fresh image of this process (by exec: same process, same
lock, same pipes), so what one half left in memory is gone before the next adds its own and
the process peaks lower: training hands the trained weights, test and validation digits to
`--finish` (evaluate, export, save: TensorFlow), which hands the saved folder to `--equip`
(calibrate and copy the companions: LiteRT only, no TensorFlow), which hands the inputs of the
candidate's own not-a-digit head to `--head` (fit it: TensorFlow again, little else in memory).
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
HEAD_INPUTS = "head_inputs.npz"  # what --equip hands to --head
PEAK_FILE = "peak_rss_mb.txt"  # the largest peak of the phases so far, handed across exec


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
    phase = argv[0] if argv[:1] in (["--finish"], ["--equip"], ["--head"]) else "--train"
    finishing = phase != "--train"
    arguments = argv[1:] if finishing else argv
    job_folder, models_dir, events_fd, parent_pid, lock_fd = (
        Path(arguments[0]), Path(arguments[1]), int(arguments[2]), int(arguments[3]), int(arguments[4]))
    die_with_parent(parent_pid)
    if lock_fd >= 0:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the server's lock, now held here
    stop = threading.Event()
    threading.Thread(target=read_commands, args=(stop,), daemon=True, name="commands").start()
    if not finishing:
        try:
            os.nice(10)  # predictions in the server process come first (kept across exec)
        except OSError:
            pass
    events = os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)
    sending = threading.Lock()

    from digitrec.events import Failed, Usage, encode

    def send(event) -> None:
        with sending:
            events.write(encode(event) + "\n")

    next_phase = None
    try:
        import numpy as np

        from digitrec.config import TrainingConfig
        from digitrec.errors import DigitrecError
        from digitrec.jobs import (
            announce_saved,
            equip_candidate,
            finish_candidate,
            fit_head_or_warn,
            train_candidate,
        )

        config = TrainingConfig.from_dict(json.loads((job_folder / "config.json").read_text()))
        try:
            if phase == "--head":
                from digitrec.companion_training import HeadInputs

                folder = Path(json.loads((job_folder / "saved.json").read_text())["folder"])
                fit_head_or_warn(folder, HeadInputs.load(job_folder / HEAD_INPUTS), config, send)
            elif phase == "--equip":
                folder = Path(json.loads((job_folder / "saved.json").read_text())["folder"])
                with np.load(job_folder / "trained.npz") as stored:
                    held_out = stored["x_val"], stored["y_val"]
                head_inputs = equip_candidate(folder, held_out, models_dir, send, config)
                if head_inputs is None:
                    announce_saved(folder, send)
                else:
                    head_inputs.save(job_folder / HEAD_INPUTS)
                    next_phase = "--head"
            elif phase == "--finish":
                folder = finish_candidate(config, load_trained(job_folder, config), models_dir,
                                          on_progress=send, equip=False)
                if folder is not None:
                    (job_folder / "saved.json").write_text(json.dumps({"folder": str(folder)}))
                    next_phase = "--equip"
            else:
                samples = None
                if (job_folder / "samples.npz").is_file():
                    with np.load(job_folder / "samples.npz") as stored:
                        samples = tuple(stored[f"arr_{index}"] for index in range(len(stored.files)))
                save_trained(job_folder, train_candidate(config, samples, send, stop))
                next_phase = "--finish"
        except Exception as error:  # every failure goes to the page instead of dying silently
            message = str(error) if isinstance(error, (DigitrecError, ValueError)) else \
                f"{type(error).__name__}: {error}"
            send(Failed(message))
    finally:
        peak = max(phase_peak_mb(), _earlier_peak(job_folder))
        if next_phase is not None:
            (job_folder / PEAK_FILE).write_text(f"{peak:.1f}")
            events.flush()
            os.execv(sys.executable, [sys.executable, "-m", "digitrec.worker", next_phase, *arguments])
        send(Usage(peak))  # the largest of every phase's own peak
        events.close()
    return 0


def phase_peak_mb() -> float:
    """This process image's peak resident memory in MiB: Linux's VmHWM, which starts afresh at
    exec. (ru_maxrss does not: the server starts this process by vfork and exec, and exec folds
    the server's own peak into it, so a server that once held 2.7 GB made every training report
    2.7 GB.) Elsewhere ru_maxrss, the best there is."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes there, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _earlier_peak(job_folder: Path) -> float:
    try:
        return float((job_folder / PEAK_FILE).read_text())
    except (OSError, ValueError):
        return 0.0


def save_trained(job_folder: Path, trained) -> None:
    """Write what `finish_candidate` needs into the job folder (weights, data, history)."""
    import numpy as np

    trained.result.model.save_weights(job_folder / "trained.weights.h5")
    data, result = trained.training_data, trained.result
    np.savez(job_folder / "trained.npz", x_test=data.x_test, y_test=data.y_test,
             x_val=trained.held_out[0], y_val=trained.held_out[1])
    (job_folder / "trained.json").write_text(json.dumps({
        "checksums": data.checksums, "counts": data.counts, "history": result.history,
        "stopped_early": result.stopped_early, "seconds": result.seconds,
        "epochs_done": result.epochs_done}))


def load_trained(job_folder: Path, config):
    """The TrainedCandidate `save_trained` wrote, the model rebuilt from its weights."""
    import numpy as np

    from digitrec.dataset import TrainingData
    from digitrec.jobs import TrainedCandidate
    from digitrec.model import build_model
    from digitrec.preprocess import MODEL_SHAPE
    from digitrec.train import TrainingResult

    model = build_model(config)
    model.load_weights(job_folder / "trained.weights.h5")
    saved = json.loads((job_folder / "trained.json").read_text())
    with np.load(job_folder / "trained.npz") as stored:
        arrays = {name: stored[name] for name in stored.files}
    empty = np.empty((0, *MODEL_SHAPE), np.uint8)
    training_data = TrainingData(empty, empty[:, 0, 0], empty, empty[:, 0, 0], arrays["x_test"],
                                 arrays["y_test"], saved["checksums"], saved["counts"])
    result = TrainingResult(model, saved["history"], saved["stopped_early"], saved["seconds"],
                            saved["epochs_done"])
    return TrainedCandidate(training_data, result, (arrays["x_val"], arrays["y_val"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
