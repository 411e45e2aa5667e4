"""One complete training run: data, train, evaluate, save a model folder with its card."""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from digitrec import data, registry
from digitrec.errors import DigitrecError, TrainingBusyError
from digitrec.evaluate import build_card, evaluate_model
from digitrec.train import TrainingConfig, held_out_pendigits, is_chief, prepare_data, train


def run_training(config: TrainingConfig, directory: Path | None = None, samples=None,
                 on_progress: Callable[[dict], None] | None = None,
                 stop_event: threading.Event | None = None, verbose: int = 0,
                 mnist_folder=None, version: str | None = None) -> Path | None:
    """Train, evaluate on MNIST test and held-out pendigits, and save a new model folder.

    Returns the folder, or None on a worker other than the chief in multi-machine training.
    """
    training_data = prepare_data(config, data.load_mnist(mnist_folder), samples)
    if on_progress:
        on_progress({"kind": "data", "counts": training_data.counts})
    result = train(config, training_data, on_progress, stop_event, verbose)
    try:
        pendigits = held_out_pendigits()
    except data.DataUnavailableError:
        pendigits = None
    metrics = evaluate_model(result.model, training_data, pendigits)
    card = build_card(config, training_data, result, metrics, data.default_pendigits_path())
    if not is_chief():
        return None  # with several machines only the chief (worker 0) writes the model folder
    folder = registry.save_model(result.model, card, version, directory)
    if on_progress:
        on_progress({"kind": "saved", "version": folder.name, "metrics": card["metrics"]})
    return folder


# --- background jobs: one training at a time per server ----------------------------------


class TrainingJob:
    """A training run in a child process; its state is read through `snapshot()`."""

    def __init__(self, config: TrainingConfig, owner: str, directory: Path | None, samples,
                 on_end: Callable[[], None] = lambda: None):
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # a fresh interpreter: TensorFlow stays out of the server
        self.config, self.owner = config, owner
        self._ended = on_end
        self.token = uuid.uuid4().hex  # whoever holds it (the starting page's URL) may stop the job
        self.started = time.time()
        self._events = context.Queue()
        self._stop = context.Event()
        self._lock = threading.Lock()
        self._state = {"state": "starting", "owner": owner, "started": self.started,
                       "config": asdict(config), "epochs": [], "progress": None,
                       "version": None, "metrics": None, "error": None, "counts": None}
        self._process = context.Process(
            target=_child_main, args=(config, directory, samples, self._events, self._stop),
            daemon=True, name="digitrec-training")
        self._process.start()
        self._reader = threading.Thread(target=self._read_events, daemon=True)
        self._reader.start()

    def _read_events(self) -> None:
        while True:
            try:
                event = self._events.get(timeout=0.5)
            except queue.Empty:
                if not self._process.is_alive():
                    self._finish_if_silent()
                    self._ended()
                    return
                continue
            with self._lock:
                self._apply(event)
            if event["kind"] in ("saved", "error", "not_chief"):
                self._process.join(timeout=30)
                self._ended()
                return

    def _apply(self, event: dict) -> None:
        kind = event["kind"]
        if kind == "data":
            self._state.update(state="running", counts=event["counts"])
        elif kind == "batch":
            self._state["progress"] = event
            if self._state["state"] == "starting":
                self._state["state"] = "running"
        elif kind == "epoch":
            self._state["progress"] = event
            self._state["epochs"].append({"epoch": event["epoch"], **event["logs"]})
        elif kind == "saved":
            stopped = self._stop.is_set()
            self._state.update(state="stopped" if stopped else "finished",
                               version=event["version"], metrics=event["metrics"])
        elif kind == "error":
            self._state.update(state="failed", error=event["message"])

    def _finish_if_silent(self) -> None:
        with self._lock:
            if self._state["state"] in ("starting", "running", "stopping"):
                self._state.update(state="failed",
                                   error=f"training process ended unexpectedly (exit code {self._process.exitcode})")

    def stop(self) -> None:
        """Ask the job to stop after the current batch; what it learned is still saved."""
        self._stop.set()
        with self._lock:
            if self._state["state"] in ("starting", "running"):
                self._state["state"] = "stopping"

    @property
    def running(self) -> bool:
        """True until the job has finished, stopped or failed."""
        with self._lock:
            return self._state["state"] in ("starting", "running", "stopping")

    def snapshot(self) -> dict:
        """A copy of the job's state: state, owner, progress, epochs, version, metrics, error."""
        with self._lock:
            return {**self._state, "epochs": list(self._state["epochs"])}

    def wait(self, timeout: float | None = None) -> dict:
        """Block until the job ends (or timeout); return its snapshot."""
        self._reader.join(timeout)
        return self.snapshot()


def _child_main(config, directory, samples, events, stop_event) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        os.nice(10)  # predictions in the server process come first
    except OSError:
        pass
    try:
        run_training(config, directory, samples, on_progress=events.put, stop_event=stop_event)
    except Exception as error:  # report every failure to the page instead of dying silently
        message = str(error) if isinstance(error, (DigitrecError, ValueError)) else \
            f"{type(error).__name__}: {error}"
        events.put({"kind": "error", "message": message})


class TrainingManager:
    """Runs at most one TrainingJob per server (process and, via a file lock, machine)."""

    def __init__(self, lock_path: Path | None = None):
        self._lock = threading.Lock()
        self._job: TrainingJob | None = None
        self._lock_path = lock_path

    def current(self) -> TrainingJob | None:
        """The running job, or the last one that ended (to show its result)."""
        return self._job

    def start(self, config: TrainingConfig, owner: str, directory: Path | None = None,
              samples=None) -> TrainingJob:
        """Start a job; TrainingBusyError if one is already running."""
        with self._lock:
            if self._job is not None and self._job.running:
                snapshot = self._job.snapshot()
                raise TrainingBusyError(f"a training started by {snapshot['owner']} is already running")
            handle = self._take_file_lock(directory)
            # Each job closes its own lock file when it ends (closing releases the flock).
            self._job = TrainingJob(config, owner, directory, samples,
                                    on_end=handle.close if handle else (lambda: None))
            return self._job

    def _take_file_lock(self, directory: Path | None):
        import fcntl

        path = self._lock_path or (Path(directory or registry.models_dir()) / ".training.lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a")
        except OSError:
            return None  # read-only model folder: the in-process lock still holds
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise TrainingBusyError("another process on this server is training a model") from None
        return handle


manager = TrainingManager()
