"""Faults: kill -9 mid-way, broken model folders, a locked samples database. Nothing is lost."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from digitrec import Recognizer, registry
from digitrec.store import SampleStore

REPO = registry.REPO_MODELS.parent


def python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **kwargs)


def wait_for_line(process, text, timeout=240):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"never printed {text!r}: {lines[-5:]}")


@pytest.fixture()
def models(tiny_model, active_models):
    return active_models(tiny_model, "good-a", also=["good-b"])


def test_kill_during_training_leaves_the_active_model_loadable(models, mnist_dir):
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "digitrec", "train", "--architecture", "fast", "--epochs", "5",
         "--mnist-fraction", "0.3", "--no-pendigits", "--models-dir", str(models),
         "--mnist-dir", str(mnist_dir), "--activate"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_line(process, "Epoch 1/5")
        time.sleep(3)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert registry.active_version(models) == "good-a"
    assert [c["version"] for c in registry.list_models(models)] == ["good-b", "good-a"]
    recognizer, warning = Recognizer.load_serving(models)
    assert recognizer.version == "good-a" and warning is None


def test_kill_during_promotion_never_leaves_a_broken_pointer(models):
    for attempt in range(5):
        process = python(f"""
            from digitrec import registry
            print("ready", flush=True)
            while True:
                registry.set_active("good-b", {str(models)!r})
                registry.set_active("good-a", {str(models)!r})
        """)
        wait_for_line(process, "ready")
        time.sleep(0.2 + 0.1 * attempt)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert registry.active_version(models) in ("good-a", "good-b")
        assert Recognizer.load_serving(models)[1] is None


def test_kill_during_sample_writes_loses_no_committed_sample(tmp_path):
    database = tmp_path / "samples.db"
    process = python(f"""
        import numpy as np
        from digitrec.store import SampleStore
        store = SampleStore({str(database)!r})
        while True:
            sample_id = store.add(np.full((28, 28), 0.5, np.float32), 3, predicted=3)
            print(sample_id, flush=True)
    """)
    committed = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        committed.append(int(process.stdout.readline()))
    process.send_signal(signal.SIGKILL)
    process.wait()
    store = SampleStore(database)
    assert len(committed) > 10
    assert all(store.get(sample_id) is not None for sample_id in committed)
    assert store.count() >= len(committed)


@pytest.mark.parametrize("fault", ["truncated", "garbage", "no pointer", "dangling pointer"])
def test_broken_active_model_falls_back_to_a_good_one(models, fault):
    registry.set_active("good-b", models)  # good-a becomes the last good model
    tflite = models / "good-b" / registry.TFLITE_FILE
    if fault == "truncated":
        tflite.write_bytes(tflite.read_bytes()[:2000])
    elif fault == "garbage":
        tflite.write_bytes(os.urandom(5000))
    elif fault == "no pointer":
        (models / registry.POINTER).unlink()
    else:
        shutil.rmtree(models / "good-b")
    recognizer, warning = Recognizer.load_serving(models)
    assert recognizer.predict(np.eye(28)).digit is not None
    assert warning and "Serving" in warning
    if fault in ("truncated", "garbage"):
        assert recognizer.version == "good-a" and "good-b" in warning


def test_cli_on_a_broken_model_exits_non_zero_with_one_line(models, tmp_path):
    (models / "good-a" / registry.TFLITE_FILE).write_bytes(b"garbage")
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray((np.eye(28) * 255).astype(np.uint8)).save(image)
    result = subprocess.run([sys.executable, "-m", "digitrec", "predict", "--model",
                             str(models / "good-a"), str(image)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "good-a" in errors[0] and "Traceback" not in result.stderr


def test_locked_samples_database_keeps_the_page_predicting(tmp_path, monkeypatch, tiny_model, pen_digits,
                                                           active_models):
    from tests.test_pages import draw_page

    models = active_models(tiny_model, "tiny")
    database = tmp_path / "samples.db"
    SampleStore(database).count()  # create it
    monkeypatch.setenv("DIGITREC_MODELS_DIR", str(models))
    monkeypatch.setenv("DIGITREC_SAMPLES_DB", str(database))
    blocker = sqlite3.connect(database, timeout=0.1)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    try:
        digit = next(d for d in pen_digits if d.writer > 20 and d.label == 5)
        from digitrec.data import draw_pen_digit

        app = draw_page(monkeypatch, draw_pen_digit(digit))
        next(b for b in app.button if b.label.startswith("Yes, it is a")).click().run()
        assert not app.exception
        assert any("Could not save the sample" in e.value for e in app.error)
        assert app.metric[0].label == "Prediction"  # still predicting
    finally:
        blocker.rollback()
        blocker.close()


def _descendants(pid: int) -> set[int]:
    found, stack = set(), [pid]
    while stack:
        for task in Path(f"/proc/{stack.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found.update(children)
            stack.extend(children)
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended


def _holds_open(pid: int, path: Path) -> bool:
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            continue
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_training_dies_with_its_server_and_only_the_trainer_holds_the_lock(tmp_path, mnist_dir):
    """kill -9 of a server that started a training: the training process goes with it, and the
    one-training lock is held by the training process, not by the server."""
    from digitrec.config import TrainingConfig
    from digitrec.errors import TrainingBusyError
    from digitrec.jobs import TrainingManager

    models = tmp_path / "models"
    lock = models / ".training.lock"
    server = python(f"""
        import os, time
        from pathlib import Path
        os.environ["DIGITREC_MNIST_DIR"] = {str(mnist_dir)!r}
        from digitrec.config import TrainingConfig
        from digitrec.jobs import TrainingManager
        config = TrainingConfig(architecture="fast", epochs=15, mnist_fraction=0.3, augment=False,
                                pendigits=False)
        TrainingManager().start(config, "server", directory=Path({str(models)!r}))
        print("started", flush=True)
        time.sleep(600)
    """)
    trainers, children, orphans = set(), set(), []
    try:
        wait_for_line(server, "started", timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not trainers:
            trainers = {pid for pid in _descendants(server.pid) if _holds_open(pid, lock)}
            time.sleep(0.2)
        assert trainers, "no process of the server's holds the training lock"
        assert not _holds_open(server.pid, lock), "the server itself still holds the training lock"
        # A restarted server (another process) sees the training busy while the trainer lives.
        with pytest.raises(TrainingBusyError):
            TrainingManager().start(TrainingConfig(architecture="shallow", epochs=1), "restart",
                                    directory=models)
        time.sleep(2)  # into its data loading or training
    finally:
        children = _descendants(server.pid) | trainers
        server.send_signal(signal.SIGKILL)
        server.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.2)
        orphans = [pid for pid in children if _alive(pid)]
        for pid in orphans:  # never leave a training running behind the tests
            os.kill(pid, signal.SIGKILL)
    assert children and not orphans, f"training processes outlived their server: {orphans}"
    import fcntl

    with open(lock, "a") as handle:  # and the lock is free again (once the kernel has let go)
        deadline = time.monotonic() + 10
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holders = [pid for pid in os.listdir("/proc")
                           if pid.isdigit() and _holds_open(int(pid), lock)]
                assert time.monotonic() < deadline, f"the training lock is still held by {holders}"
                time.sleep(0.2)
