"""Corrections users send back, kept for retraining and export: SQLite by default, PostgreSQL
when a URL says so (several app replicas sharing one database).

The store speaks SQLAlchemy Core, with bound parameters only. Without a URL it is one SQLite
file (`data/samples.db`, or DIGITREC_SAMPLES_DB): every call opens its own connection and closes
it before returning, so one store object is safe to share between Streamlit sessions and
threads, and several processes can write the same file: WAL mode lets readers go on while one
writer commits, and the busy timeout makes writers queue instead of failing at once.

A URL (`SampleStore(url=...)`, else DIGITREC_SAMPLES_URL; the app also reads
`[connections.samples] url` from its secrets) selects PostgreSQL, e.g.
`postgresql://user:password@host/dbname`. Connections then come from a small pool per process;
writers that must count before inserting (the caps) lock the table for their transaction, and
a lock held elsewhere longer than `timeout` seconds becomes the same "try again" StoreError as
a busy SQLite file.

Both backends have the same tables and a `schema_version` table; opening a database brings it
to SCHEMA_VERSION (MIGRATIONS), so a file written by an older digitrec is migrated in place.
StoreError messages never name the file, host, user or password (pages show them to visitors);
`StoreError.detail` does, for the server's log.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.pool import NullPool

from digitrec.errors import LimitError, StoreError, UploadError
from digitrec.limits import (
    MAX_PERSONAL_EXAMPLES,
    MAX_PERSONAL_TOTAL,
    MAX_SAMPLES_TOTAL,
    MAX_STORED_STROKE_POINTS,
)
from digitrec.preprocess import MODEL_SHAPE, PREPROCESS_VERSION, preprocess
from digitrec.upload import decode_upload, stored_drawing

REPO_SAMPLES_DB = Path(__file__).resolve().parents[1] / "data" / "samples.db"
ENV_VARIABLE = "DIGITREC_SAMPLES_DB"
URL_VARIABLE = "DIGITREC_SAMPLES_URL"
IMAGE_SHAPE = MODEL_SHAPE
IMAGE_BYTES = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * 4  # float32
DIGITS = range(10)
PROFILE_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,40}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CSV_COLUMNS = ["id", "created", "label", "predicted", "confidence", "model_version"]
# Named so they cannot be taken for each other: prob_3 is the probability of a 3, px_r3_c5 the
# pixel in row 3, column 5 of the 28x28 model input.
PROBABILITY_COLUMNS = [f"prob_{digit}" for digit in DIGITS]
PIXEL_COLUMNS = [f"px_r{row}_c{column}"
                 for row in range(IMAGE_SHAPE[0]) for column in range(IMAGE_SHAPE[1])]
POSTGRES_DRIVER = "postgresql+psycopg"  # psycopg 3; a plain postgresql:// URL is read as this
POOL_SIZE, POOL_OVERFLOW = 4, 8  # PostgreSQL connections per process (per URL)
# pg_advisory_xact_lock key held while a PostgreSQL database's schema is created or migrated
# ("digitrec" in ASCII + 1; the training lock, digitrec.locks, uses the same without the + 1).
MIGRATION_LOCK_KEY = 0x6469676974726563 + 1
log = logging.getLogger(__name__)

METADATA = sa.MetaData()
SAMPLES = sa.Table(
    "samples", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created", sa.Text, nullable=False),
    sa.Column("label", sa.Integer, sa.CheckConstraint("label BETWEEN 0 AND 9"), nullable=False),
    sa.Column("predicted", sa.Integer,
              sa.CheckConstraint("predicted IS NULL OR predicted BETWEEN 0 AND 9")),
    sa.Column("probabilities", sa.Text),
    sa.Column("model_version", sa.Text),
    sa.Column("model_input", sa.LargeBinary, nullable=False),
    sa.Column("drawing_png", sa.LargeBinary),
    # preprocess.PREPROCESS_VERSION when model_input was made: arrays() remakes the input from the
    # drawing for a sample made by another version, so a retrain sees today's preprocessing.
    sa.Column("preprocess_version", sa.Text),
    # The Samples page names a sample by its id ("#3"): SQLite's AUTOINCREMENT never hands out an
    # id again after a delete, as PostgreSQL's sequence does not (plain rowids reuse the highest).
    sqlite_autoincrement=True,
)
# A person's examples for personal adaptation (digitrec.personal), kept under a profile name
# they chose so the examples come back on their next visit; bounded per profile and in total.
PERSONAL = sa.Table(
    "personal_examples", METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("profile", sa.Text, nullable=False),
    sa.Column("created", sa.Text, nullable=False),
    sa.Column("label", sa.Integer, sa.CheckConstraint("label BETWEEN 0 AND 9"), nullable=False),
    sa.Column("drawing_png", sa.LargeBinary, nullable=False),
    sa.Column("strokes", sa.Text),
)
# One row per migration applied; the database's version is the highest.
SCHEMA_VERSIONS = sa.Table(
    "schema_version", METADATA,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied", sa.Text, nullable=False),
)
INDEXES = (sa.Index("ix_samples_label", SAMPLES.c.label, SAMPLES.c.id),
           sa.Index("ix_personal_examples_profile", PERSONAL.c.profile, PERSONAL.c.id))


def _create_tables(conn: sa.Connection) -> None:
    for table in (SAMPLES, PERSONAL):  # a file from before schema_version has them already
        if not sa.inspect(conn).has_table(table.name):
            conn.execute(sa.schema.CreateTable(table))


def _create_indexes(conn: sa.Connection) -> None:
    for index in INDEXES:
        index.create(conn, checkfirst=True)


# Samples saved before their preprocessing version was recorded were made with version "2", the
# only one there was while digitrec stored samples without it.
UNRECORDED_PREPROCESS_VERSION = "2"


def _add_preprocess_version(conn: sa.Connection) -> None:
    if "preprocess_version" not in {column["name"] for column in sa.inspect(conn).get_columns("samples")}:
        conn.exec_driver_sql("ALTER TABLE samples ADD COLUMN preprocess_version TEXT")
    conn.execute(SAMPLES.update().where(SAMPLES.c.preprocess_version.is_(None))
                 .values(preprocess_version=UNRECORDED_PREPROCESS_VERSION))


def _never_reuse_sample_ids(conn: sa.Connection) -> None:
    """SQLite: rebuild a samples table made without AUTOINCREMENT (ids and rows kept), since
    SQLite cannot add it in place; a PostgreSQL sequence never reused an id."""
    if conn.dialect.name != "sqlite":
        return
    made = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'samples'")
    if "AUTOINCREMENT" in (made.scalar() or "").upper():
        return
    columns = ", ".join(column.name for column in SAMPLES.columns)
    conn.exec_driver_sql("ALTER TABLE samples RENAME TO samples_before_v4")  # its index goes with it
    conn.execute(sa.schema.CreateTable(SAMPLES))
    conn.exec_driver_sql(f"INSERT INTO samples ({columns}) SELECT {columns} FROM samples_before_v4")
    conn.exec_driver_sql("DROP TABLE samples_before_v4")
    _create_indexes(conn)


# (version, what it does, the step): applied in order to a database below that version.
MIGRATIONS = (
    (1, "the samples and personal_examples tables", _create_tables),
    (2, "indexes for the Samples page's digit filter and a profile's examples", _create_indexes),
    (3, "each sample's preprocessing version", _add_preprocess_version),
    (4, "sample ids never reused after a delete", _never_reuse_sample_ids),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
# On a read-only SQLite connection a table may be missing (a brand-new empty file); a temporary
# table of the same name shadows it there, so reads simply find no rows.
TEMP_TABLES = {table.name: str(sa.schema.CreateTable(table, if_not_exists=True).compile(
    dialect=sqlite_dialect.dialect())).replace("CREATE TABLE", "CREATE TEMP TABLE", 1)
    for table in (SAMPLES, PERSONAL)}
SAMPLE_COLUMNS = [SAMPLES.c[name] for name in ("id", "created", "label", "predicted", "probabilities",
                                               "model_version", "model_input", "drawing_png")]
# What list() reads: everything but the drawing, which only a page that shows it loads (drawing()).
LIST_COLUMNS = SAMPLE_COLUMNS[:-1] + [sa.null().label("drawing_png")]


def default_path() -> Path:
    """The samples database: DIGITREC_SAMPLES_DB, else data/samples.db in the repository."""
    return Path(os.environ.get(ENV_VARIABLE) or REPO_SAMPLES_DB)


def schema_version(conn: sa.Connection) -> int:
    """The database's schema version: 0 for one without a schema_version table (empty, or
    written before it existed)."""
    if not sa.inspect(conn).has_table(SCHEMA_VERSIONS.name):
        return 0
    return conn.execute(sa.select(sa.func.max(SCHEMA_VERSIONS.c.version))).scalar() or 0


_ENGINES: dict[tuple[str, float], sa.Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _postgres_engine(url: sa.URL, timeout: float) -> sa.Engine:
    """The process's connection pool for one PostgreSQL URL (created on first use)."""
    key = (url.render_as_string(hide_password=False), timeout)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = sa.create_engine(
                url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_timeout=max(1.0, timeout),
                pool_pre_ping=True, pool_recycle=1800,
                connect_args={"connect_timeout": max(2, math.ceil(timeout)), "application_name": "digitrec"})
            _ENGINES[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled PostgreSQL connection of this process (tests, before dropping a database)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.dispose()


def default_url() -> str | None:
    """The samples database's URL from DIGITREC_SAMPLES_URL, or None (then the SQLite file)."""
    return os.environ.get(URL_VARIABLE) or None


def parse_url(url) -> sa.URL:
    """A database URL as SQLAlchemy's URL: postgresql (read with psycopg 3) or sqlite.

    ValueError for anything else; the message never repeats the URL (it may hold a password).
    """
    try:
        parsed = sa.make_url(url)
    except (sa_exc.ArgumentError, TypeError, ValueError):
        raise ValueError(f"the samples database URL ({URL_VARIABLE}, or [connections.samples] url)"
                         " is not a URL such as postgresql://user:password@host/dbname") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername=POSTGRES_DRIVER)
    if backend == "sqlite" and driver in ("", "pysqlite") and parsed.database not in (None, "", ":memory:"):
        return parsed
    raise ValueError("the samples database URL must be postgresql://user:password@host/dbname"
                     " (or sqlite:///path/to/samples.db)")


# Frozen so a sample read from the store cannot be edited by mistake; eq=False because the
# generated __eq__ would compare numpy arrays, whose truth value is ambiguous.
@dataclass(frozen=True, eq=False)
class Sample:
    """One stored correction."""

    id: int
    created: str
    label: int
    predicted: int | None
    probabilities: tuple[float, ...] | None
    model_version: str | None
    model_input: np.ndarray
    drawing_png: bytes | None  # None from list(), which leaves drawings out: see drawing()

    @property
    def confidence(self) -> float | None:
        """The highest probability the model gave, or None when none was stored."""
        return max(self.probabilities) if self.probabilities else None


class SampleStore:
    """Corrections in one SQLite file or a PostgreSQL database; each call uses its own
    connection (SQLite: opened and closed; PostgreSQL: from the process's pool) and, when it
    writes, its own transaction.

    `url` (else DIGITREC_SAMPLES_URL when no `path` is given) selects PostgreSQL; a sqlite:///
    URL is the same as its path. `path` (else DIGITREC_SAMPLES_DB, else data/samples.db) is the
    SQLite file. `timeout`: seconds a writer waits for another's lock before a StoreError.
    """

    def __init__(self, path: str | os.PathLike | None = None, timeout: float = 5.0,
                 read_only: bool = False, max_samples: int = MAX_SAMPLES_TOTAL,
                 url: str | None = None) -> None:
        if url is None and path is None:
            url = default_url()
        self.url: sa.URL | None = None  # PostgreSQL's; None for a SQLite file
        if url is not None:
            parsed = parse_url(url)
            if parsed.get_backend_name() == "sqlite":
                path = parsed.database
            else:
                self.url = parsed
        self.path = None if self.url else (Path(path).expanduser() if path is not None else default_path())
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        self.timeout = float(timeout)
        self.read_only = bool(read_only)
        self.max_samples = check_count(max_samples, "max_samples")
        # Checked by each store object (a page makes one per call): a replica still running
        # the old code when a newer one has migrated the database refuses it at once.
        self._schema_ready = False
        self._sqlite_engines: dict[bool, sa.Engine] = {}

    @property
    def backend(self) -> str:
        """'postgresql' or 'sqlite'."""
        return "postgresql" if self.url else "sqlite"

    @property
    def location(self) -> str:
        """Where the samples are, for the server's log: the file, or the URL without its password."""
        return self.url.render_as_string(hide_password=True) if self.url else str(self.path)

    def __repr__(self) -> str:
        return f"SampleStore({self.location!r}, timeout={self.timeout:g}, read_only={self.read_only})"

    # ---- writing -------------------------------------------------------------------------

    def add(self, model_input, label: int, predicted: int | None = None, probabilities=None,
            model_version: str | None = None, drawing_png: bytes | None = None) -> int:
        """Save one correction and return its new id.

        `model_input` is `preprocess`'s output in this process: the sample records this
        PREPROCESS_VERSION. The drawing is re-encoded (digitrec.upload.stored_drawing), never
        stored as given.
        LimitError when the store holds max_samples already; StoreError when the database
        cannot be read (corrupt) or written.
        """
        row = (
            datetime.now(UTC).isoformat(timespec="microseconds"),
            check_digit(label, "label"),
            None if predicted is None else check_digit(predicted, "predicted"),
            encode_probabilities(check_probabilities(probabilities)),
            check_model_version(model_version),
            check_model_input(model_input).tobytes(),
            check_png(drawing_png),
        )
        # The table is locked for writers (SQLite: the whole file) until the insert commits,
        # so the count below still holds then.
        with self._connection(write=True, lock=SAMPLES) as conn:
            # Counting reads every row's page, as the Samples page does: a database it
            # reports as corrupt refuses saves too, instead of taking them in.
            stored = conn.execute(sa.select(sa.func.count()).select_from(SAMPLES)).scalar_one()
            if stored >= self.max_samples:
                raise LimitError(f"The app holds {stored} saved samples, the most it keeps; "
                                 "no more can be saved until some are deleted.")
            result = conn.execute(SAMPLES.insert().values(dict(zip(
                ("created", "label", "predicted", "probabilities", "model_version", "model_input",
                 "drawing_png"), row), preprocess_version=PREPROCESS_VERSION)))
            return int(result.inserted_primary_key[0])

    def delete(self, sample_id: int) -> bool:
        """Delete one sample; True if it existed."""
        sample_id = check_sample_id(sample_id)
        with self._connection(write=True) as conn:
            return conn.execute(SAMPLES.delete().where(SAMPLES.c.id == sample_id)).rowcount > 0

    # ---- personal examples -----------------------------------------------------------------

    def add_personal(self, profile: str, label: int, drawing_png: bytes, strokes=None) -> int:
        """Keep one of a person's examples under their profile name; return its id.

        The drawing is re-encoded and bounded like a sample's; strokes are thinned to at most
        MAX_STORED_STROKE_POINTS points. A profile keeps its newest MAX_PERSONAL_EXAMPLES;
        LimitError when the app holds MAX_PERSONAL_TOTAL examples of all profiles.
        """
        row = (check_profile(profile), datetime.now(UTC).isoformat(timespec="microseconds"),
               check_digit(label, "label"), check_png(drawing_png), encode_strokes(strokes))
        if row[3] is None:
            raise ValueError("a personal example needs its drawing")
        with self._connection(write=True, lock=PERSONAL) as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(PERSONAL)).scalar_one()
            if stored >= MAX_PERSONAL_TOTAL:
                raise LimitError(f"The app holds {stored} personal examples, the most it keeps; "
                                 "examples are kept for this visit only.")
            result = conn.execute(PERSONAL.insert().values(dict(zip(
                ("profile", "created", "label", "drawing_png", "strokes"), row))))
            newest = (sa.select(PERSONAL.c.id).where(PERSONAL.c.profile == row[0])
                      .order_by(PERSONAL.c.id.desc()).limit(MAX_PERSONAL_EXAMPLES))
            conn.execute(PERSONAL.delete().where(PERSONAL.c.profile == row[0],
                                                 PERSONAL.c.id.not_in(newest.scalar_subquery())))
            return int(result.inserted_primary_key[0])

    def personal_examples(self, profile: str) -> list[tuple[bytes, int, list | None]]:
        """A profile's examples, oldest first: (drawing PNG, label, strokes or None)."""
        profile = check_profile(profile)
        with self._connection(write=False) as conn:
            rows = conn.execute(sa.select(PERSONAL.c.drawing_png, PERSONAL.c.label, PERSONAL.c.strokes)
                                .where(PERSONAL.c.profile == profile).order_by(PERSONAL.c.id)).all()
        return [(bytes(png), int(label), None if strokes is None else json.loads(strokes))
                for png, label, strokes in rows]

    def delete_personal(self, profile: str, example_id: int) -> bool:
        """Delete one of a profile's examples (the id `add_personal` returned); True if it existed."""
        profile, example_id = check_profile(profile), check_sample_id(example_id)
        with self._connection(write=True) as conn:
            return conn.execute(PERSONAL.delete().where(PERSONAL.c.profile == profile,
                                                        PERSONAL.c.id == example_id)).rowcount > 0

    def clear_personal(self, profile: str) -> int:
        """Delete every example of a profile; return how many there were."""
        profile = check_profile(profile)
        with self._connection(write=True) as conn:
            return conn.execute(PERSONAL.delete().where(PERSONAL.c.profile == profile)).rowcount

    # ---- reading -------------------------------------------------------------------------

    def get(self, sample_id: int) -> Sample | None:
        """The sample with this id, or None."""
        sample_id = check_sample_id(sample_id)
        with self._connection(write=False) as conn:
            row = conn.execute(sa.select(*SAMPLE_COLUMNS).where(SAMPLES.c.id == sample_id)).first()
        return None if row is None else self._sample_from_row(row)

    def drawing(self, sample_id: int) -> bytes | None:
        """The PNG drawing saved with one sample (None if it has none or does not exist)."""
        sample_id = check_sample_id(sample_id)
        with self._connection(write=False) as conn:
            row = conn.execute(sa.select(SAMPLES.c.drawing_png).where(SAMPLES.c.id == sample_id)).first()
        return None if row is None or row[0] is None else bytes(row[0])

    def count(self) -> int:
        """How many samples are stored."""
        with self._connection(write=False) as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(SAMPLES)).scalar_one()

    def count_by_label(self) -> dict[int, int]:
        """Samples per digit, with all ten digits present (zero when none)."""
        counts = {digit: 0 for digit in DIGITS}
        with self._connection(write=False) as conn:
            for label, number in conn.execute(sa.select(SAMPLES.c.label, sa.func.count())
                                              .group_by(SAMPLES.c.label)):
                counts[label] = number
        return counts

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All samples for retraining: x float32 (N, 28, 28) and y uint8 (N,), oldest first.

        A sample made with another preprocessing version (preprocess.PREPROCESS_VERSION) is
        preprocessed again from its stored drawing; one without a drawing keeps its input.
        """
        images, labels, stale = [], [], {}
        with self._connection(write=False) as conn:
            for sample_id, label, blob, version in conn.execute(
                    sa.select(SAMPLES.c.id, SAMPLES.c.label, SAMPLES.c.model_input,
                              SAMPLES.c.preprocess_version).order_by(SAMPLES.c.id)):
                if version != PREPROCESS_VERSION:
                    stale[sample_id] = len(images)
                images.append(self._image_from_blob(blob, sample_id))
                labels.append(label)
            if stale:  # only their drawings are loaded
                for sample_id, png in conn.execute(
                        sa.select(SAMPLES.c.id, SAMPLES.c.drawing_png)
                        .where(SAMPLES.c.id.in_(list(stale)), SAMPLES.c.drawing_png.is_not(None))):
                    images[stale[sample_id]] = _reprocessed(bytes(png), images[stale[sample_id]])
        if not images:
            return np.zeros((0, *IMAGE_SHAPE), np.float32), np.zeros((0,), np.uint8)
        return np.stack(images).astype(np.float32), np.array(labels, dtype=np.uint8)

    def export_npz(self) -> bytes:
        """All samples as .npz bytes with arrays x and y, as returned by arrays()."""
        x, y = self.arrays()
        buffer = io.BytesIO()
        np.savez(buffer, x=x, y=y)
        return buffer.getvalue()

    def export_csv(self) -> bytes:
        """All samples as UTF-8 CSV, oldest first, one row per sample.

        Columns: id, created (UTC), label, predicted, confidence, model_version, then
        prob_0..prob_9 (the model's probability of each digit), then px_r0_c0..px_r27_c27 (the
        28x28 model input, row by row, rounded to 3 decimals). Missing values are empty cells.
        `pandas.read_csv(io.BytesIO(data))` gives numeric columns directly, and
        `df[store.PIXEL_COLUMNS].to_numpy().reshape(-1, 28, 28)` the images.
        """
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(CSV_COLUMNS + PROBABILITY_COLUMNS + PIXEL_COLUMNS)
        with self._connection(write=False) as conn:
            for row in conn.execute(sa.select(*LIST_COLUMNS).order_by(SAMPLES.c.id)):
                writer.writerow(csv_row(self._sample_from_row(row)))
        return text.getvalue().encode("utf-8")

    def list(self, label: int | None = None, limit: int = 100, offset: int = 0) -> list[Sample]:
        """Samples newest first, optionally only one label, `limit` at most after `offset`.

        Drawings are left out (drawing_png is None): load one with drawing(sample_id).
        """
        limit = check_count(limit, "limit")
        offset = check_count(offset, "offset")
        # Ordered by id, not by time: ids grow with every insert, clocks can tie or step back.
        query = sa.select(*LIST_COLUMNS).order_by(SAMPLES.c.id.desc()).limit(limit).offset(offset)
        if label is not None:
            query = query.where(SAMPLES.c.label == check_digit(label, "label"))
        with self._connection(write=False) as conn:
            rows = conn.execute(query).all()
        return [self._sample_from_row(row) for row in rows]

    # ---- connections ---------------------------------------------------------------------

    @contextmanager
    def _connection(self, write: bool, lock: sa.Table | None = None) -> Iterator[sa.Connection]:
        """One connection for one call; writes run in one transaction (committed at the end,
        rolled back on any error), with `lock`'s table locked against other writers; database
        errors become StoreError."""
        if write and self.read_only:
            raise StoreError("the samples database was opened read-only: open it without"
                             " read_only=True to save corrections", detail=self.location)
        try:
            if self.url:
                with self._postgres_connection(write, lock) as conn:
                    yield conn
            else:
                with self._sqlite_connection(write) as conn:
                    yield conn
        except sa_exc.DBAPIError as error:
            raise self._store_error(error.orig) from error
        except sqlite3.Error as error:
            raise self._store_error(error) from error
        except sa_exc.TimeoutError as error:  # every pooled connection stayed in use
            raise self._logged(StoreError(
                f"the samples database stayed busy for {self.timeout:g} s: try again in a moment",
                detail=f"{self.location}: {error}")) from error

    @contextmanager
    def _postgres_connection(self, write: bool, lock: sa.Table | None) -> Iterator[sa.Connection]:
        with _postgres_engine(self.url, self.timeout).connect() as conn:
            if not self._schema_ready:
                self._migrate(conn)
            # Lock waits (a writer's table lock, a migration) end after `timeout` seconds.
            wait = f"{max(1, round(self.timeout * 1000))}ms"
            conn.execute(sa.select(sa.func.set_config("lock_timeout", wait, True)))
            if write and lock is not None:
                conn.exec_driver_sql(f"LOCK TABLE {lock.name} IN SHARE ROW EXCLUSIVE MODE")
            yield conn
            if write:
                conn.commit()

    @contextmanager
    def _sqlite_connection(self, write: bool) -> Iterator[sa.Connection]:
        read_only = self.read_only or (not write and self._looks_read_only())
        self._refuse_empty_file()
        if not read_only:
            self._make_folder()
        with self._sqlite_engine(read_only).connect() as conn:
            if not read_only and not self._schema_ready:
                self._migrate(conn)
            if write:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the whole file, until the commit
            yield conn
            if write:
                conn.commit()

    def _sqlite_engine(self, read_only: bool) -> sa.Engine:
        """An engine whose every connect() opens the file anew (no pool), read-only or not."""
        engine = self._sqlite_engines.get(read_only)
        if engine is None:
            engine = sa.create_engine("sqlite://", poolclass=NullPool,
                                      creator=lambda: self._open(read_only))
            self._sqlite_engines[read_only] = engine
        return engine

    def _migrate(self, conn: sa.Connection) -> None:
        """Bring the database to SCHEMA_VERSION (checked once per store object): a plain read
        when it is there already, else one transaction that other processes' migrations and
        writers wait for."""
        version = schema_version(conn)
        if version < SCHEMA_VERSION:
            if self.url:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            else:
                conn.commit()  # nothing open: the pragma and BEGIN below need that
                # WAL is stored in the file, so this only does work the first time the file is used.
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            version = schema_version(conn)  # another process may have migrated meanwhile
        if version > SCHEMA_VERSION:
            raise self._logged(StoreError(
                f"the samples database was written by a newer digitrec (schema version {version};"
                f" this one knows up to {SCHEMA_VERSION}): update digitrec",
                detail=f"{self.location}: schema version {version} > {SCHEMA_VERSION}"))
        if version < SCHEMA_VERSION:
            SCHEMA_VERSIONS.create(conn, checkfirst=True)
            for number, _, step in MIGRATIONS:
                if number > version:
                    step(conn)
                    conn.execute(SCHEMA_VERSIONS.insert().values(
                        version=number, applied=datetime.now(UTC).isoformat(timespec="seconds")))
        conn.commit()
        self._schema_ready = True

    def _refuse_empty_file(self) -> None:
        """A zero-byte file is a lost database (SQLite would take it as a new, empty one)."""
        try:
            empty = self.path.stat().st_size == 0
        except OSError:
            return  # missing (created on first write) or unreadable (reported on opening)
        if empty:
            raise self._logged(StoreError(
                "the samples database is an empty file (0 bytes), not a database: its samples are"
                " lost or it was never written. Restore it from a backup, delete it to start afresh,"
                f" or set {ENV_VARIABLE} to another file", detail=f"{self.path}: 0 bytes"))

    def _looks_read_only(self) -> bool:
        """True when the file exists but this process cannot write it or create files beside it."""
        # WAL mode needs the -wal and -shm files next to the database, hence the folder check.
        return self.path.exists() and not (os.access(self.path, os.W_OK)
                                           and os.access(self.path.parent, os.W_OK))

    def _make_folder(self) -> None:
        """Create the database's folder, or explain why it cannot be created."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise self._logged(StoreError(
                "cannot create the folder for the samples database"
                f" ({error.strerror or type(error).__name__}): set {ENV_VARIABLE} to a writable file",
                detail=f"{self.path.parent}: {error}")) from error

    def _open(self, read_only: bool) -> sqlite3.Connection:
        """A DB-API connection to the file (SQLAlchemy's creator): read-only ones see the tables
        even in a file that has none yet (temporary ones shadow them)."""
        if read_only:
            return self._open_read_only()
        if not self.path.exists():
            self._create()
        # mode=rw never creates a file: a database that vanished is not silently made anew.
        return sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True,
                               timeout=self.timeout, check_same_thread=False)

    def _create(self) -> None:
        """Create the database complete under a temporary name, then link it into place.

        So the file at `path` is never seen empty while being created, and a zero-byte file
        there is always a lost database (refused), never one being made.
        """
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.new")
        engine = sa.create_engine("sqlite://", poolclass=NullPool,
                                  creator=lambda: sqlite3.connect(temporary, check_same_thread=False))
        try:
            with engine.connect() as conn:
                self._migrate(conn)
            self._schema_ready = False  # the file at `path` may be another process's: checked on use
            try:
                os.link(temporary, self.path)
            except FileExistsError:
                pass  # another process or thread created it meanwhile: use theirs
            except OSError:  # a file system without hard links
                if not self.path.exists():
                    os.rename(temporary, self.path)
        finally:
            engine.dispose()
            temporary.unlink(missing_ok=True)

    def _open_read_only(self) -> sqlite3.Connection:
        """A connection that never writes the file, for read-only files and folders."""
        if not self.path.exists():
            raise self._logged(StoreError(
                f"the samples database does not exist: set {ENV_VARIABLE} to an existing file to"
                " read it read-only", detail=f"{self.path}: missing"))
        uri = self.path.resolve().as_uri()
        try:
            return self._connect_uri(f"{uri}?mode=ro")
        except sqlite3.OperationalError as error:
            # A WAL file in a read-only folder cannot get its -shm file; immutable=1 reads it
            # without one, which is safe because nobody can be writing there.
            if primary_code(error) not in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
                raise
        return self._connect_uri(f"{uri}?immutable=1")

    def _connect_uri(self, uri: str) -> sqlite3.Connection:
        """Open a URI connection and make sure the tables are visible on it."""
        conn = sqlite3.connect(uri, uri=True, timeout=self.timeout, check_same_thread=False)
        try:
            for table in (SAMPLES, PERSONAL):
                exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                      " AND name = ?", (table.name,)).fetchone()
                if exists is None:
                    conn.execute(TEMP_TABLES[table.name])
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _logged(self, error: StoreError) -> StoreError:
        """`error`, its detail (where, and the driver's words) written to the server's log."""
        log.warning("samples store: %s (%s)", error, error.detail)
        return error

    def _store_error(self, error: BaseException) -> StoreError:
        """A StoreError that says what to do about `error` without naming where the database is."""
        detail = f"{self.location}: {type(error).__name__}: {error}"
        return self._logged(StoreError(self._explain(error), detail=detail))

    def _explain(self, error: BaseException) -> str:
        where = "the samples database"
        busy = f"{where} stayed locked by another writer for {self.timeout:g} s: try again in a moment"
        if self.url:
            state = getattr(error, "sqlstate", None) or ""
            if not state and "authentication failed" in str(error):  # said while connecting: no sqlstate
                state = "28P01"
            if state in ("55P03", "40P01", "40001", "57014"):  # lock timeout, deadlock, serialization, cancel
                return busy
            if state == "25006":
                return f"{where} is read-only on its server"
            if state in ("28P01", "28000"):
                return f"{where}'s server refused the user name or password: check the database URL"
            if state == "3D000":
                return f"{where} named in the database URL does not exist on its server"
            if state == "42501":
                return f"{where}'s user lacks a permission it needs: grant it, or use another user"
            if state.startswith("53"):
                return f"{where}'s server is out of resources (disk, memory or connections): try again later"
            if state.startswith("08") or not state:
                return f"{where}'s server cannot be reached: check that it is running and the database URL"
            return f"{where} failed (PostgreSQL error {state})"
        code = primary_code(error) if isinstance(error, sqlite3.Error) else None
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return busy
        if code == sqlite3.SQLITE_READONLY:
            return f"{where} is read-only: set {ENV_VARIABLE} to a writable file"
        if code == sqlite3.SQLITE_NOTADB:
            return f"{where} is not a SQLite database: move it away or set {ENV_VARIABLE} to another file"
        if code == sqlite3.SQLITE_CORRUPT:
            return f"{where} is corrupt: restore it from a backup or set {ENV_VARIABLE} to another file"
        if code == sqlite3.SQLITE_FULL:
            return f"{where} cannot grow, the disk is full: free some space"
        if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
            return (f"{where} cannot be opened: check that the file and its folder are writable,"
                    f" or set {ENV_VARIABLE} to another file")
        if code == sqlite3.SQLITE_IOERR:
            return f"{where} could not be read or written (I/O error): check the disk"
        return f"{where} failed ({type(error).__name__})"

    # ---- decoding ------------------------------------------------------------------------

    def _sample_from_row(self, row: tuple) -> Sample:
        """Build a Sample from a row selected with SAMPLE_COLUMNS."""
        sample_id, created, label, predicted, probabilities, model_version, blob, png = row
        return Sample(
            id=sample_id,
            created=created,
            label=label,
            predicted=predicted,
            probabilities=None if probabilities is None else tuple(json.loads(probabilities)),
            model_version=model_version,
            model_input=self._image_from_blob(blob, sample_id),
            drawing_png=None if png is None else bytes(png),
        )

    def _image_from_blob(self, blob: bytes, sample_id: int) -> np.ndarray:
        """The stored 28x28 float32 image; read-only, as it is a view of the row's bytes."""
        if blob is None or len(blob) != IMAGE_BYTES:
            raise self._logged(StoreError(f"sample {sample_id} in the samples database has a damaged"
                                          " image: delete that sample", detail=self.location))
        return np.frombuffer(blob, dtype=np.float32).reshape(IMAGE_SHAPE)


def _reprocessed(drawing_png: bytes, model_input: np.ndarray) -> np.ndarray:
    """A stored drawing through today's `preprocess`; the stored input if it cannot be read."""
    try:
        return preprocess(decode_upload(drawing_png)).model_input
    except (UploadError, ValueError):
        return model_input


# ---- validation (module level so the app can check input before saving) -------------------

def check_digit(value, name: str) -> int:
    """Return `value` as an int if it is a digit 0-9 (bools are not digits), else raise ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer digit 0-9, got {value!r}")
    if int(value) not in DIGITS:
        raise ValueError(f"{name} must be a digit 0-9, got {int(value)}")
    return int(value)


def check_model_input(model_input) -> np.ndarray:
    """Return the model input as a (28, 28) float32 array of finite numbers, else raise ValueError."""
    array = np.asarray(model_input)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"model_input must hold numbers, got dtype {array.dtype}")
    if array.shape != IMAGE_SHAPE:
        raise ValueError(f"model_input must have shape {IMAGE_SHAPE}, got {array.shape}")
    # Checked after the cast: a huge float64 becomes inf in float32, which is rejected
    # below, so numpy's overflow warning would only be noise.
    with np.errstate(over="ignore"):
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("model_input must contain only finite numbers (no NaN or infinity)")
    return array


def check_probabilities(probabilities) -> tuple[float, ...] | None:
    """Return None or the ten probabilities as finite floats, else raise ValueError."""
    if probabilities is None:
        return None
    array = np.asarray(probabilities)
    if array.dtype.kind not in "iuf" or array.shape != (10,):
        raise ValueError(f"probabilities must be None or 10 numbers, got {probabilities!r}")
    values = tuple(float(value) for value in array)
    if not all(math.isfinite(value) for value in values):
        raise ValueError("probabilities must be finite numbers (no NaN or infinity)")
    return values


def encode_probabilities(probabilities: tuple[float, ...] | None) -> str | None:
    """The probabilities as a JSON list, or None."""
    return None if probabilities is None else json.dumps(list(probabilities))


def check_model_version(model_version) -> str | None:
    """Return None or the model version string, else raise ValueError."""
    if model_version is not None and not isinstance(model_version, str):
        raise ValueError(f"model_version must be a string or None, got {model_version!r}")
    return model_version


def check_png(drawing_png) -> bytes | None:
    """Return None or the drawing re-encoded as a bounded PNG, else raise ValueError."""
    if drawing_png is None:
        return None
    if not isinstance(drawing_png, (bytes, bytearray, memoryview)):
        raise ValueError(f"drawing_png must be PNG bytes or None, got {type(drawing_png).__name__}")
    data = bytes(drawing_png)
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("drawing_png is not a PNG image (wrong signature)")
    try:
        return stored_drawing(data)
    except UploadError as error:
        raise ValueError(f"drawing_png cannot be read as a PNG image: {error}") from None


def check_profile(profile) -> str:
    """A profile name: 1-40 letters, digits, '-', '_' or '.'; ValueError otherwise."""
    if not isinstance(profile, str) or not PROFILE_PATTERN.fullmatch(profile):
        raise ValueError("a profile name is 1-40 letters, digits, '-', '_' or '.'")
    return profile


def encode_strokes(strokes) -> str | None:
    """Strokes as compact JSON, thinned to at most MAX_STORED_STROKE_POINTS points in all."""
    from digitrec.strokes import checked

    strokes = checked(strokes)
    if not strokes:
        return None
    total = sum(len(stroke) for stroke in strokes)
    step = max(1, math.ceil(total / MAX_STORED_STROKE_POINTS))
    thinned = [stroke[::step] + ([stroke[-1]] if (len(stroke) - 1) % step else []) for stroke in strokes]
    return json.dumps([[[round(x, 1), round(y, 1)] for x, y in stroke] for stroke in thinned],
                      separators=(",", ":"))


def check_sample_id(sample_id) -> int:
    """Return the sample id as an int, else raise ValueError."""
    if isinstance(sample_id, (bool, np.bool_)) or not isinstance(sample_id, (int, np.integer)):
        raise ValueError(f"sample id must be an integer, got {sample_id!r}")
    return int(sample_id)


def check_count(value, name: str) -> int:
    """Return `value` if it is an int >= 0 (for limit and offset), else raise ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def primary_code(error: sqlite3.Error) -> int | None:
    """The primary SQLite result code of `error` (extended codes carry it in the low byte)."""
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def csv_row(sample: Sample) -> list:
    """One CSV row for export_csv: metadata, ten probabilities, then 784 pixels rounded to 3 decimals."""
    confidence = sample.confidence
    metadata = [
        sample.id, sample.created, sample.label,
        "" if sample.predicted is None else sample.predicted,
        "" if confidence is None else f"{confidence:.6g}",
        "" if sample.model_version is None else sample.model_version,
    ]
    probabilities = ([""] * len(PROBABILITY_COLUMNS) if sample.probabilities is None
                     else [f"{value:.6g}" for value in sample.probabilities])
    # + 0.0 turns a rounded -0.0 into 0.0 so the file never shows "-0".
    pixels = [f"{round(float(value), 3) + 0.0:g}" for value in sample.model_input.ravel()]
    return metadata + probabilities + pixels
