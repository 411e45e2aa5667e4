"""Shared fixtures: real data from ../shared (never downloaded), a tiny trained model, the app."""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
MNIST_DIR = Path(os.environ.get("DIGITREC_MNIST_DIR") or SHARED / "mnist")
PENDIGITS = SHARED / "pendigits" / "pendigits-orig.tra"
# The README's test command is a plain `pytest`: code under test that reads MNIST without being
# handed a folder (companion training, the app's evaluation) must find ../shared too, not try
# Keras' download (there is no internet here).
os.environ.setdefault("DIGITREC_MNIST_DIR", str(MNIST_DIR))

# The suite runs on two workers (pytest-xdist, `--dist loadgroup` in pytest.ini). A test that uses a
# module fixture (the browser tests' app server, a module's Recognizer) runs on the worker of its
# file's other such tests, so the fixture is made once; the other tests go to whichever worker is
# free. The files that use the PostgreSQL server share one worker: the training lock is one
# advisory lock key on the whole server, and two workers' lock tests would take it from each other.
SHARED_SERVER_FILES = {"test_locks.py", "test_pages_postgres.py", "test_replicas.py", "test_store.py"}


def uses_a_module_fixture(item) -> bool:
    return any(definition.scope == "module"
               for definitions in item._fixtureinfo.name2fixturedefs.values() for definition in definitions)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        if name in SHARED_SERVER_FILES:
            item.add_marker(pytest.mark.xdist_group("postgres"))
        elif uses_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(name))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder of the four MNIST IDX files."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST IDX files not found in {MNIST_DIR}")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """MNIST as arrays (read once per test session)."""
    from digitrec.data import load_mnist

    return load_mnist(mnist_dir)


@pytest.fixture(scope="session")
def pen_digits():
    """The real pendigits trajectories."""
    if not PENDIGITS.is_file():
        pytest.skip(f"pendigits not found at {PENDIGITS}")
    from digitrec.data import load_pendigits

    return load_pendigits(PENDIGITS)


@pytest.fixture(scope="session")
def committed_model() -> Path:
    """The committed active model folder in models/."""
    from digitrec import registry

    version = registry.committed_version(registry.REPO_MODELS)
    if version is None:
        pytest.skip("no committed model in models/")
    return registry.REPO_MODELS / version


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder `name`, made by `build(folder)` once per test run and shared by the xdist workers
    (in the run's common temporary folder, under a lock): each worker training its own copy of a
    session model cost minutes of CI. Tests copy these folders before changing anything."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-of-USER/pytest-N: the same for every worker of this run
    folder, ready = root / name, root / f"{name}.ready"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also on failure
        if not ready.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed half-way
            build(folder)
            ready.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, mnist_dir) -> Path:
    """A model folder trained for one epoch on 1% of MNIST (fast preset): real, small, quick."""
    from digitrec.config import TrainingConfig
    from digitrec.jobs import run_training

    config = TrainingConfig(architecture="fast", epochs=1, mnist_fraction=0.1, augment=False,
                            pendigits=False, validation_size=500, batch_size=64)
    def build(directory):
        run_training(config, directory, mnist_folder=mnist_dir, version="tiny")

    return built_once(tmp_path_factory, "tiny-models", build) / "tiny"


@pytest.fixture()
def active_models(tmp_path):
    """Make a model directory: `active_models(source, name=None, also=())` copies the model folder
    `source` into tmp_path/models as `name` (default: its own name), makes it the active model
    (the ACTIVE pointer), adds copies named `also` (not active), and returns the directory."""
    from digitrec import registry

    def make(source: Path, name: str | None = None, also=()) -> Path:
        directory = tmp_path / "models"
        directory.mkdir(exist_ok=True)
        active = name or source.name
        for folder in (active, *also):
            shutil.copytree(source, directory / folder)
        (directory / registry.POINTER).write_text(active + "\n")
        return directory

    return make


@pytest.fixture()
def models_copy(active_models, committed_model) -> Path:
    """A writable copy of the committed model directory (ACTIVE pointer included)."""
    return active_models(committed_model)


def stroke_canvas(points, size=280, brush=18.0) -> np.ndarray:
    """An RGBA canvas with one polyline drawn through `points` (canvas pixel coordinates)."""
    from digitrec.data import render_strokes

    return render_strokes([points], size=size, brush=brush)


@pytest.fixture(autouse=True)
def _fresh_password_attempts():
    """Wrong admin passwords of one test never lock out the next (digitrec.admin counts them)."""
    from digitrec import admin

    admin.ATTEMPTS.reset()


@pytest.fixture(scope="session")
def companion_model(tiny_model, tmp_path_factory, pen_digits):
    """The tiny image model with tiny companions: seconds of training, every step real."""
    from digitrec.companion_training import add_companions

    def build(directory):
        folder = directory / "tiny-strokes"
        shutil.copytree(tiny_model, folder)
        add_companions(folder, epochs=3, gate_epochs=1, pen_step=6, doodle_counts=(48, 24, 24),
                       mnist_limit=4000, gate_repeats=2, line_examples=256, line_epochs=1, log=None)

    return built_once(tmp_path_factory, "companions", build) / "tiny-strokes"


@pytest.fixture()
def app_env(tmp_path, monkeypatch, tiny_model, mnist_dir, active_models):
    """The app's environment for AppTest: a copy of the tiny model (active), a fresh samples db."""
    models = active_models(tiny_model)
    monkeypatch.setenv("DIGITREC_MODELS_DIR", str(models))
    monkeypatch.setenv("DIGITREC_SAMPLES_DB", str(tmp_path / "samples.db"))
    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(mnist_dir))
    monkeypatch.delenv("DIGITREC_ADMIN_PASSWORD", raising=False)
    from digitrec import jobs  # each test starts outside the cool-down of an earlier test's training

    monkeypatch.setattr(jobs.manager, "_last_end", None)
    monkeypatch.setattr(jobs.manager, "_job", None)  # an earlier test's job, ended moments ago, counts too
    return {"models": models, "samples": tmp_path / "samples.db"}


# --- PostgreSQL (issue 10): .ci/run starts a throwaway server and sets the URL -----------------

POSTGRES_VARIABLE = "DIGITREC_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a PostgreSQL server the tests may create databases on; skips, saying why,
    when there is none (.ci/run starts one with .ci/postgres and sets DIGITREC_TEST_POSTGRES_URL)."""
    url = os.environ.get(POSTGRES_VARIABLE)
    if not url:
        pytest.skip(f"PostgreSQL tests skipped: {POSTGRES_VARIABLE} is not set (.ci/run starts a "
                    "throwaway server with .ci/postgres and sets it)")
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 — any failure to connect is a reason to skip
        pytest.skip(f"PostgreSQL tests skipped: the server at {POSTGRES_VARIABLE} cannot be reached "
                    f"({type(error).__name__}: {str(error).splitlines()[0][:200]})")
    finally:
        engine.dispose()
    return url


@contextmanager
def fresh_postgres_schema(server_url: str):
    """A fresh, empty schema on the PostgreSQL server, dropped afterwards: yields the URL that
    reaches it (search_path set in the URL; a schema is made in milliseconds, a database in a
    second)."""
    import uuid

    import sqlalchemy as sa

    from digitrec import store

    name = f"digitrec_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        url = sa.make_url(server_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
        store.dispose_engines()  # the pools' connections (and any lock they hold)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        admin.dispose()


@pytest.fixture()
def postgres_url(postgres_server) -> str:
    """A fresh, empty schema on the PostgreSQL server for one test: its URL."""
    with fresh_postgres_schema(postgres_server) as url:
        yield url
