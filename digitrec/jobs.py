"""One complete training run, and training in the background: one job at a time per server.

`run_training` does a whole run in the calling process (the CLI, tests, benchmarks).
`TrainingManager.start` runs one in a separate process, `python -m digitrec.worker`, which
imports only the training code (never the app) and whose output goes to a log file, not the
server's log. The process:

- dies with the server: it asks Linux for SIGKILL when its parent goes (PR_SET_PDEATHSIG),
  watches its parent's pid, and exits when the pipe from the server closes;
- holds the one-training lock (`models/.training.lock`, an flock) for as long as it lives:
  the server takes the lock, hands it to the process and lets go of its own copy, so a
  restarted server sees the lock busy while any trainer lives, and free once none does.
  With a PostgreSQL samples database (several replicas) the lock is instead a database
  advisory lock (digitrec.locks), held by the job's thread in the server, on a connection of
  its own, until the training process has ended; a server that dies takes its trainer with it
  and PostgreSQL drops the lock with the connection;
- sends typed events (`digitrec.events`) back over a pipe as JSON lines.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from digitrec import data, registry
from digitrec.admin import authorize
from digitrec.config import (
    MNIST_TRAINING_IMAGES,
    TRAINING_COOLDOWN_S,
    VISITOR_WORK_LIMIT,
    TrainingConfig,
    training_work,
)
from digitrec.dataset import TrainingData, held_out_pendigits, prepare_data
from digitrec.errors import DigitrecError, LimitError, TrainingBusyError
from digitrec.evaluate import build_card, evaluate_model, store_evaluation
from digitrec.events import (
    BatchProgress,
    DataReady,
    EpochEnd,
    Event,
    Failed,
    Finishing,
    FinishingStep,
    JobState,
    Saved,
    TrainedAsWorker,
    Usage,
    decode,
)
from digitrec.locks import AdvisoryLock, is_postgres
from digitrec.preprocess import MODEL_SHAPE
from digitrec.store import default_url
from digitrec.train import TrainingResult, is_chief, train

LOCK_FILE = ".training.lock"
LOG_TAIL_LINES = 8  # of the training process's log, shown when it dies without a word
MAX_CURVE_POINTS = 2000  # batch points kept for the live curves (about 17 min at two a second)


def run_training(config: TrainingConfig, directory: Path | None = None, samples=None,
                 on_progress: Callable[[Event], None] | None = None,
                 stop_event: threading.Event | None = None, verbose: int = 0,
                 mnist_folder=None, version: str | None = None) -> Path | None:
    """Train, evaluate on MNIST test and held-out pendigits, and save a new model folder.

    `on_progress` gets DataReady, BatchProgress, EpochEnd and finally Saved events (or, on a
    worker other than the chief in multi-machine training, TrainedAsWorker; it returns None).
    Its parts, `train_candidate`, `finish_candidate` and `equip_candidate`, may run in separate
    process images (the training process does: digitrec.worker).
    """
    trained = train_candidate(config, samples, on_progress, stop_event, verbose, mnist_folder)
    return finish_candidate(config, trained, directory, version, on_progress)


@dataclass
class TrainedCandidate:
    """What training hands to evaluation and saving: the model and how it trained, the test
    set with the data's counts and checksums (training arrays released), and the validation
    digits (for calibration)."""

    training_data: TrainingData
    result: TrainingResult
    held_out: tuple


def train_candidate(config: TrainingConfig, samples=None,
                    on_progress: Callable[[Event], None] | None = None,
                    stop_event: threading.Event | None = None, verbose: int = 0,
                    mnist_folder=None) -> TrainedCandidate:
    """Prepare the data and train (DataReady, BatchProgress and EpochEnd events)."""
    training_data = prepare_data(config, data.load_mnist(mnist_folder), samples)
    _release_memory()  # the raw and cached arrays prepare_data read are garbage now
    if on_progress:
        on_progress(DataReady(training_data.counts))
    result = train(config, training_data, on_progress, stop_event, verbose)
    if on_progress:  # the training process now saves it and starts afresh to evaluate (seconds)
        on_progress(Finishing(FinishingStep.SAVING))
    # The training arrays are done with: let them go before evaluating and exporting.
    empty = np.empty((0, *MODEL_SHAPE), np.uint8)
    held_out = training_data.x_val, training_data.y_val  # 5,000 uint8 inputs: calibration
    training_data = replace(training_data, x_train=empty, y_train=empty[:, 0, 0],
                            x_val=empty, y_val=empty[:, 0, 0])
    _release_memory()
    return TrainedCandidate(training_data, result, held_out)


def finish_candidate(config: TrainingConfig, trained: TrainedCandidate, directory: Path | None = None,
                     version: str | None = None,
                     on_progress: Callable[[Event], None] | None = None,
                     equip: bool = True) -> Path | None:
    """Evaluate a trained candidate and write its card and model folder; the folder.

    With `equip` it is also calibrated and given companions (`equip_candidate`, `fit_candidate_head`)
    and a Saved event follows; without, the caller does that (the training process, in fresh
    images of itself: TensorFlow-free for `equip_candidate`).
    On a worker other than the chief nothing is saved: a TrainedAsWorker event, and None.
    """
    training_data, result = trained.training_data, trained.result
    if on_progress:
        on_progress(Finishing(FinishingStep.EVALUATING))
    try:
        pendigits = held_out_pendigits()
    except data.DataUnavailableError:
        pendigits = None
    metrics = evaluate_model(result.model, training_data, pendigits)
    card = build_card(config, training_data, result, metrics, data.default_pendigits_path())
    if not is_chief():  # with several machines only the chief (worker 0) writes the model folder
        if on_progress:
            on_progress(TrainedAsWorker())
        return None
    folder = registry.save_model(result.model, card, version, directory)
    if equip:
        _release_memory()  # what the export left behind, before LiteRT's calibration run
        head_inputs = equip_candidate(folder, trained.held_out, directory, on_progress, config)
        if head_inputs is not None:
            fit_candidate_head(folder, head_inputs, config, on_progress)
        announce_saved(folder, on_progress)
    return folder


def adopt_candidate(keras_path: Path, directory: Path | None = None, version: str | None = None,
                    mnist_folder=None) -> Path:
    """A network trained elsewhere by `python -m digitrec fit` (a GPU machine, any Keras backend),
    evaluated, saved with its card, calibrated and equipped exactly like one trained here.

    Its record (`<file>.json`, written by fit) gives the settings and how it trained; the data are
    prepared again here from the same sources, and their checksums must match the record's.
    """
    import keras

    keras_path = Path(keras_path)
    record = json.loads(Path(f"{keras_path}.json").read_text())
    config = TrainingConfig.from_dict(record["config"])
    training_data = prepare_data(config, data.load_mnist(mnist_folder))
    if record["checksums"] != training_data.checksums or record["counts"] != training_data.counts:
        raise ValueError(f"{keras_path.name} was trained on other data than these settings prepare here")
    model = keras.models.load_model(keras_path, compile=False, safe_mode=True)
    result = TrainingResult(model, record["history"], False, record["seconds"], record["epochs_done"])
    held_out = training_data.x_val, training_data.y_val
    empty = np.empty((0, *MODEL_SHAPE), np.uint8)
    training_data = replace(training_data, x_train=empty, y_train=empty[:, 0, 0])
    folder = finish_candidate(config, TrainedCandidate(training_data, result, held_out), directory, version)
    card = registry.read_card(folder)
    card["training"]["trained_on"] = record.get("trained_on")
    registry.write_card(folder, card)
    return folder


def equip_candidate(folder: Path, held_out, directory: Path | None = None,
                    on_progress: Callable[[Event], None] | None = None,
                    config: TrainingConfig | None = None):
    """Calibrate a saved candidate on its validation digits, store its evaluation as served, and
    give it the active model's trajectory model, gate and line model (no TensorFlow).

    Returns the inputs of the candidate's own gate head (`companion_training.HeadInputs`, made with
    LiteRT) when `config.gate_head` asks for one and it inherited a gate, for `fit_candidate_head`;
    else None. The inherited gate alone flags fewer non-digits than with a head that reads the
    candidate's features: the active model's head reads the active model's."""
    from digitrec import companion_training

    if on_progress:
        on_progress(Finishing(FinishingStep.CALIBRATING))
    if len(held_out[1]):
        companion_training.calibrate_image_with(folder, held_out[0], held_out[1])
    if on_progress:
        on_progress(Finishing(FinishingStep.SERVED))
    store_evaluation(folder)  # the pages show it at once instead of evaluating it again
    active = registry.active_version(directory or folder.parent, required=False)
    if not (active and active != folder.name):
        return None
    companion_training.inherit_companions(folder, (directory or folder.parent) / active)
    if config is None or not config.gate_head or not (folder / companion_training.GATE_FILE).is_file():
        return None
    try:
        pen = data.load_pendigits()
    except data.DataUnavailableError:
        # Without canvas-drawn digits to learn from and to choose its threshold on, a head could
        # flag drawings as "not a digit" that MNIST's scans never showed it: the gate decides alone.
        return None
    if on_progress:
        on_progress(Finishing(FinishingStep.GATE_HEAD))
    inputs = candidate_gate_data(folder, config, pen)
    return companion_training.gate_head_inputs(folder, inputs, log=_quiet)


def candidate_gate_data(folder: Path, config: TrainingConfig, pen):
    """What the gate head of a candidate trained with `config` learns from: the committed model's
    recipe (`companions --only head`) at the share of MNIST the candidate trained on (pen digits
    `pen` and non-digit drawings in proportion), so a tiny trial run gets a tiny head."""
    from digitrec import companion_training, nondigits

    share = config.mnist_fraction
    pen = pen[:: max(1, round(1 / share))]
    others = {split: nondigits.non_digits(split, doodles, seed=index) for index, (split, doodles)
              in enumerate(zip(("train", "validation"), companion_training.DOODLE_COUNTS))}
    mnist_limit = None if share >= 1 else max(1, round(share * (MNIST_TRAINING_IMAGES
                                                                - config.validation_size)))
    repeats = max(1, round(companion_training.GATE_REPEATS * share))
    return companion_training.gate_data(folder, pen, others, config.seed, mnist_limit, repeats,
                                        slashed_zeros=companion_training.HEAD_SLASH_SHARE)


def fit_candidate_head(folder: Path, inputs, config: TrainingConfig,
                       on_progress: Callable[[Event], None] | None = None) -> None:
    """Fit the candidate's gate head on `equip_candidate`'s inputs (TensorFlow)."""
    from digitrec import companion_training

    if on_progress:
        on_progress(Finishing(FinishingStep.GATE_HEAD))
    companion_training.fit_gate_head(folder, inputs, config.seed, log=_quiet)


def fit_head_or_warn(folder: Path, inputs, config: TrainingConfig,
                     on_progress: Callable[[Event], None] | None = None) -> None:
    """`fit_candidate_head`, then the Saved event. The candidate folder is complete without its
    head, so a head that cannot be fitted leaves it saved, with a warning saying so."""
    warning = None
    try:
        fit_candidate_head(folder, inputs, config, on_progress)
    except Exception as error:  # noqa: BLE001 - whatever it was, the candidate stands
        reason = str(error) if isinstance(error, (DigitrecError, ValueError)) else \
            f"{type(error).__name__}: {error}"
        warning = headless_warning(reason)
    announce_saved(folder, on_progress, warning)


def headless_warning(reason: str) -> str:
    """What the page says of a candidate saved without the not-a-digit head it was to get."""
    return (f"Its own not-a-digit head could not be fitted ({reason}), so it says \"not a digit\" "
            "with the gate it inherited alone, as a candidate trained without the head does: "
            "more letters and scribbles get a digit's name. Train again to get one.")


def announce_saved(folder: Path, on_progress: Callable[[Event], None] | None,
                   warning: str | None = None) -> None:
    """The Saved event: the candidate is complete (`warning`: what it lacks)."""
    if on_progress:
        on_progress(Saved(folder.name, registry.read_card(folder)["metrics"], warning))


def _quiet(message: str) -> None:
    """Companion training's log lines: the page has the card; nothing to print in a server."""


def _release_memory() -> None:
    """Collect garbage and hand freed heap memory back to the system (glibc's malloc_trim)."""
    import ctypes
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


# --- background jobs: one training at a time per server ----------------------------------


@dataclass(frozen=True)
class JobSnapshot:
    """A training job as it stands: what the Retrain page shows."""

    state: JobState
    owner: str
    started: float  # time.time()
    config: TrainingConfig
    progress: BatchProgress | None = None  # the latest
    curve: tuple[BatchProgress, ...] = ()  # every batch report so far (the live curves)
    epochs: tuple[EpochEnd, ...] = ()
    counts: dict | None = None
    version: str | None = None
    metrics: dict | None = None
    error: str | None = None
    peak_rss_mb: float | None = None  # the training process's, reported as it ends
    finishing: FinishingStep | None = None  # after the last batch: what is being done to the candidate
    warning: str | None = None  # saved, but lacking something (Saved.warning)


class TrainingJob:
    """A training run in its own process; its state is read through `snapshot()`."""

    # time.monotonic() when the job was first seen ended (Saved, Failed, ...): its process may
    # take seconds more to exit, and the cool-down starts from here, not from that exit.
    ended_at: float | None = None

    def __init__(self, config: TrainingConfig, owner: str, directory: Path | None, samples,
                 lock_handle, on_end: Callable[[], None] = lambda: None,
                 held_lock: AdvisoryLock | None = None):
        self.config, self.owner = config, owner
        self._held_lock = held_lock  # released once the training process has ended
        self.token = uuid.uuid4().hex  # whoever holds it (the starting page's URL) may stop the job
        self.started = time.time()
        self.pid: int | None = None
        self._ended = on_end
        self._lock = threading.Lock()
        self._snapshot = JobSnapshot(JobState.STARTING, owner, self.started, config)
        self._curve: collections.deque = collections.deque(maxlen=MAX_CURVE_POINTS)
        self._epochs: list[EpochEnd] = []
        self._process: subprocess.Popen | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="digitrec-training-"))
        (self._folder / "config.json").write_text(json.dumps(asdict(config)))
        if samples is not None:
            np.savez(self._folder / "samples.npz", *samples)
        launched = threading.Event()
        # The process is started from this thread, which lives exactly as long as the job:
        # Linux sends PR_SET_PDEATHSIG when the *thread* that started a process ends, and
        # a page's script thread ends with every rerun.
        self._reader = threading.Thread(target=self._run, args=(directory, lock_handle, launched),
                                        daemon=True, name="digitrec-training-reader")
        self._reader.start()
        launched.wait()

    # -- the reader thread --------------------------------------------------------------

    def _run(self, directory, lock_handle, launched: threading.Event) -> None:
        read_end, write_end = os.pipe()
        log = open(self._folder / "worker.log", "wb")
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "digitrec.worker", str(self._folder),
                 str(directory or registry.models_dir()), str(write_end), str(os.getpid()),
                 str(lock_handle.fileno() if lock_handle else -1)],
                stdin=subprocess.PIPE, stdout=log, stderr=log, env=_worker_environment(),
                pass_fds=(write_end,) + ((lock_handle.fileno(),) if lock_handle else ()))
            self.pid = self._process.pid
        except OSError as error:
            self._update(state=JobState.FAILED, error=f"cannot start the training process: {error}")
            os.close(read_end)
            shutil.rmtree(self._folder, ignore_errors=True)
            self._release_lock()
            self._ended()
            return
        finally:
            os.close(write_end)
            log.close()
            if lock_handle is not None:
                lock_handle.close()  # the training process holds the lock now; this copy lets go
            launched.set()
        try:
            with os.fdopen(read_end, "r", encoding="utf-8") as events:
                for line in events:
                    try:
                        self._apply(decode(line))
                    except ValueError:
                        continue  # not ours: ignored
            self._process.wait()
            self._finish()
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._release_lock()
            self._ended()

    def _release_lock(self) -> None:
        if self._held_lock is not None:
            self._held_lock.release()

    def _apply(self, event: Event) -> None:
        with self._lock:
            state = self._snapshot.state
            ended = JobState.STOPPED if state == JobState.STOPPING else JobState.FINISHED
            if isinstance(event, DataReady):
                self._snapshot = replace(self._snapshot, counts=event.counts,
                                         state=JobState.RUNNING if state == JobState.STARTING else state)
            elif isinstance(event, BatchProgress):
                self._curve.append(event)
                self._snapshot = replace(self._snapshot, progress=event,
                                         state=JobState.RUNNING if state == JobState.STARTING else state)
            elif isinstance(event, EpochEnd):
                self._epochs.append(event)
            elif isinstance(event, Finishing):
                self._snapshot = replace(self._snapshot, finishing=event.step)
            elif isinstance(event, Saved):
                self._snapshot = replace(self._snapshot, version=event.version, metrics=event.metrics,
                                         state=ended, finishing=None, warning=event.warning)
            elif isinstance(event, TrainedAsWorker):  # the chief saves the model: no version here
                self._snapshot = replace(self._snapshot, state=ended)
            elif isinstance(event, Failed):
                self._snapshot = replace(self._snapshot, state=JobState.FAILED, error=event.message)
            elif isinstance(event, Usage):
                self._snapshot = replace(self._snapshot, peak_rss_mb=event.peak_rss_mb)
            if self.ended_at is None and not self._snapshot.state.active:
                self.ended_at = time.monotonic()

    def _finish(self) -> None:
        code = self._process.returncode
        state = self.snapshot()
        # Killed while fitting the head (out of memory, say): the candidate was saved before.
        headless = state.state.active and state.finishing == FinishingStep.GATE_HEAD and self._saved_folder()
        if headless:
            try:
                announce_saved(headless, self._apply, headless_warning(
                    f"the training process ended unexpectedly, exit code {code}"))
            except (OSError, ValueError, KeyError):
                pass  # the folder is unreadable after all: reported as failed below
        with self._lock:
            if self._snapshot.state.active:  # it ended without Saved, TrainedAsWorker or Failed
                tail = _tail(self._folder / "worker.log")
                self._snapshot = replace(
                    self._snapshot, state=JobState.FAILED,
                    error=f"the training process ended unexpectedly (exit code {code})"
                          + (f"; its last words: {tail}" if tail else ""))

    def _saved_folder(self) -> Path | None:
        """The candidate folder the process saved (its `--finish` step), if it still has a card."""
        try:
            folder = Path(json.loads((self._folder / "saved.json").read_text())["folder"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return folder if (folder / registry.CARD).is_file() else None

    def _update(self, **changes) -> None:
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)

    # -- what pages use -----------------------------------------------------------------

    def stop(self) -> None:
        """Ask the job to stop after the current batch; what it learned is still saved."""
        with self._lock:
            if self._snapshot.state in (JobState.STARTING, JobState.RUNNING):
                self._snapshot = replace(self._snapshot, state=JobState.STOPPING)
        try:
            self._process.stdin.write(b"stop\n")
            self._process.stdin.flush()
        except (AttributeError, OSError, ValueError):
            pass  # already gone

    @property
    def running(self) -> bool:
        """True until the job has finished, stopped or failed."""
        with self._lock:
            return self._snapshot.state.active

    def snapshot(self) -> JobSnapshot:
        """The job's state, progress, curves and result (an immutable copy)."""
        with self._lock:
            return replace(self._snapshot, curve=tuple(self._curve), epochs=tuple(self._epochs))

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        """Block until the job ends (or timeout); return its snapshot."""
        self._reader.join(timeout)
        return self.snapshot()


def _worker_environment() -> dict:
    """The server's environment, with this package importable and TensorFlow's chatter down."""
    environment = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Fewer malloc arenas: TensorFlow's threads otherwise each grow their own heap.
    environment.setdefault("MALLOC_ARENA_MAX", "2")
    return environment


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in lines[-LOG_TAIL_LINES:])


class TrainingManager:
    """Runs at most one TrainingJob per server (process and, via a file lock, machine; with a
    PostgreSQL samples database, via its advisory lock, across every replica on it).

    Visitors (anyone without the admin password, when one is set) may start trainings of up
    to VISITOR_WORK_LIMIT work, and not within TRAINING_COOLDOWN_S of the last one's end.
    """

    def __init__(self, lock_path: Path | None = None, cooldown_s: float = TRAINING_COOLDOWN_S):
        self._lock = threading.Lock()
        self._job: TrainingJob | None = None
        self._lock_path = lock_path
        self._cooldown = cooldown_s
        self._last_end: float | None = None

    def current(self) -> TrainingJob | None:
        """The running job, or the last one that ended (to show its result)."""
        return self._job

    def cooldown_left(self) -> float:
        """Seconds until a visitor may start the next training (0 when now): counted from the
        later of the last training process's exit and the moment the current job was seen ended
        (its result is shown before its process exits: a page drawn then offered Start at once)."""
        job = self._job
        ends = [end for end in (self._last_end, None if job is None else job.ended_at) if end is not None]
        if not ends:
            return 0.0
        return max(0.0, self._cooldown - (time.monotonic() - max(ends)))

    def start(self, config: TrainingConfig, owner: str, directory: Path | None = None,
              samples=None, password: str | None = None,
              configured_password: str | None = None, client: str | None = None,
              database_url: str | None = None) -> TrainingJob:
        """Start a job in its own process.

        TrainingBusyError if one is already running (here, in another process on this
        machine, or, with a PostgreSQL `database_url` (else DIGITREC_SAMPLES_URL), on another
        replica); LimitError for a visitor beyond the work limit or within the cool-down;
        PermissionDeniedError for a wrong admin password (`client`: who guesses, for
        digitrec.admin's lockout).
        """
        admin = False
        if configured_password is not None and password:
            authorize(password, configured_password, client)  # a wrong one is refused outright
            admin = True
        with self._lock:
            if self._job is not None and self._job.running:
                raise TrainingBusyError(f"a training started by {self._job.owner} is already running")
            if not admin:
                check_visitor_training(config, 0 if samples is None else len(samples[-1]),
                                       configured_password is not None)
                left = self.cooldown_left()
                if left > 0:
                    raise LimitError(f"A training just ended; the next one can start in "
                                     f"{max(1, round(left))} s.")
            url = database_url or default_url()
            if is_postgres(url):  # several replicas: the lock lives in their shared database
                handle, held = None, self._take_database_lock(url)
            else:
                handle, held = self._take_file_lock(directory), None
            try:
                self._job = TrainingJob(config, owner, directory, samples, handle, on_end=self._job_ended,
                                        held_lock=held)
            except BaseException:
                if handle is not None:
                    handle.close()
                if held is not None:
                    held.release()
                raise
            return self._job

    @staticmethod
    def _take_database_lock(url: str) -> AdvisoryLock:
        lock = AdvisoryLock(url)
        if not lock.acquire():
            raise TrainingBusyError("another replica of this app is training a model")
        return lock

    def _job_ended(self) -> None:
        self._last_end = time.monotonic()

    def lock_path(self, directory: Path | None = None) -> Path:
        """The file whose flock marks a training in progress on this machine."""
        return self._lock_path or (Path(directory or registry.models_dir()) / LOCK_FILE)

    def _take_file_lock(self, directory: Path | None):
        path = self.lock_path(directory)
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


def check_visitor_training(config: TrainingConfig, sample_count: int = 0,
                           password_configured: bool = False) -> None:
    """LimitError unless a visitor may start this training (work within VISITOR_WORK_LIMIT)."""
    work = training_work(config, sample_count)
    if work <= VISITOR_WORK_LIMIT:
        return
    share = work / VISITOR_WORK_LIMIT
    how = ("enter the admin password" if password_configured else
           "run it on the server with python -m digitrec train")
    raise LimitError(f"This training is about {share:.1f}x the most a visitor may start "
                     f"(epochs × examples, with the deep network and augmentation counting extra). "
                     f"Choose fewer epochs, less data or the shallow network, or {how}.")


manager = TrainingManager()
