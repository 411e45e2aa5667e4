"""The one-training lock across replicas: a PostgreSQL advisory lock (digitrec.locks), and the
training manager using it when the samples database is PostgreSQL. Needs a PostgreSQL server
(DIGITREC_TEST_POSTGRES_URL; skipped, saying why, without one)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digitrec.config import TrainingConfig
from digitrec.errors import TrainingBusyError
from digitrec.events import JobState
from digitrec.jobs import TrainingManager
from digitrec.locks import AdvisoryLock, is_postgres

REPO = Path(__file__).resolve().parents[1]
TINY = dict(architecture="shallow", epochs=1, mnist_fraction=0.05, augment=False, pendigits=False,
            validation_size=300, batch_size=64)


def test_only_one_holder_at_a_time(postgres_url):
    first, second = AdvisoryLock(postgres_url), AdvisoryLock(postgres_url)
    try:
        assert first.acquire() and first.held
        assert second.acquire() is False and not second.held
        assert first.acquire()  # taking it again is a no-op for its holder
        first.release()
        assert second.acquire()
        assert first.acquire() is False
    finally:
        first.release()
        second.release()


def test_a_holder_that_dies_frees_the_lock(postgres_url):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom digitrec.locks import AdvisoryLock\n"
         f"lock = AdvisoryLock({postgres_url!r})\nassert lock.acquire()\nprint('held', flush=True)\n"
         "time.sleep(600)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = AdvisoryLock(postgres_url)
        assert lock.acquire() is False
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10  # the server notices the closed socket
        while not lock.acquire():
            assert time.monotonic() < deadline, "the dead holder's lock was never released"
            time.sleep(0.1)
        lock.release()
    finally:
        holder.kill()
        holder.wait(10)


def test_is_postgres():
    assert is_postgres("postgresql://u:p@h/db") and is_postgres("postgresql+psycopg://h/db")
    assert not is_postgres(None) and not is_postgres("sqlite:///x.db")


def test_two_replicas_never_train_at_once(postgres_url, tmp_path, monkeypatch, mnist_dir):
    """Two servers (managers) with model folders and file locks of their own, one database:
    the second is refused while the first trains, and the lock is free once it has ended."""
    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(mnist_dir))
    replica_a, replica_b = TrainingManager(cooldown_s=0), TrainingManager(cooldown_s=0)
    config = TrainingConfig(**TINY)
    job = replica_a.start(config, "alice", directory=tmp_path / "a", database_url=postgres_url)
    try:
        with pytest.raises(TrainingBusyError, match="another replica"):
            replica_b.start(config, "bob", directory=tmp_path / "b", database_url=postgres_url)
        job.stop()  # after its first batch: the lock must outlive the saving that follows
    finally:
        state = job.wait(300)
    assert state.state in (JobState.STOPPED, JobState.FINISHED), state
    assert state.version and (tmp_path / "a" / state.version).is_dir()
    lock = AdvisoryLock(postgres_url)
    assert lock.acquire(), "the lock outlived the training"
    lock.release()
    assert not (tmp_path / "b").exists()  # replica b never trained
