"""Corrections users send back, kept in a SQLite file for retraining and export.

Every method opens its own connection and closes it before returning, so one store object
is safe to share between Streamlit sessions and threads, and several processes can write
the same file: WAL mode lets readers go on while one writer commits, and the busy timeout
makes writers queue instead of failing at once.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sqlite3
import threading
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from digitrec.errors import LimitError, StoreError, UploadError
from digitrec.limits import (MAX_PERSONAL_EXAMPLES, MAX_PERSONAL_TOTAL, MAX_SAMPLES_TOTAL,
                             MAX_STORED_STROKE_POINTS)
from digitrec.upload import stored_drawing

REPO_SAMPLES_DB = Path(__file__).resolve().parents[1] / "data" / "samples.db"
ENV_VARIABLE = "DIGITREC_SAMPLES_DB"
IMAGE_SHAPE = (28, 28)
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

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    predicted INTEGER CHECK (predicted IS NULL OR predicted BETWEEN 0 AND 9),
    probabilities TEXT,
    model_version TEXT,
    model_input BLOB NOT NULL,
    drawing_png BLOB
)
"""
# A person's examples for personal adaptation (digitrec.personal), kept under a profile name
# they chose so the examples come back on their next visit; bounded per profile and in total.
PERSONAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS personal_examples (
    id INTEGER PRIMARY KEY,
    profile TEXT NOT NULL,
    created TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    drawing_png BLOB NOT NULL,
    strokes TEXT
)
"""
SCHEMAS = (SCHEMA, PERSONAL_SCHEMA)
# On a read-only connection the real table may be missing (a brand-new empty file); a temp
# table of the same name shadows it there, so reads simply find no rows.
TEMP_SCHEMAS = {name: schema.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE IF NOT EXISTS")
                for name, schema in (("samples", SCHEMA), ("personal_examples", PERSONAL_SCHEMA))}
SAMPLE_COLUMNS = "id, created, label, predicted, probabilities, model_version, model_input, drawing_png"
# What list() reads: everything but the drawing, which only a page that shows it loads (drawing()).
LIST_COLUMNS = "id, created, label, predicted, probabilities, model_version, model_input, NULL"


def default_path() -> Path:
    """The samples database: DIGITREC_SAMPLES_DB, else data/samples.db in the repository."""
    return Path(os.environ.get(ENV_VARIABLE) or REPO_SAMPLES_DB)


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
    """Corrections in one SQLite file; each call opens, uses and closes its own connection."""

    def __init__(self, path: str | os.PathLike | None = None, timeout: float = 5.0,
                 read_only: bool = False, max_samples: int = MAX_SAMPLES_TOTAL) -> None:
        self.path = Path(path).expanduser() if path is not None else default_path()
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        self.timeout = float(timeout)
        self.read_only = bool(read_only)
        self.max_samples = check_count(max_samples, "max_samples")
        self._schema_ready = False

    def __repr__(self) -> str:
        return f"SampleStore({str(self.path)!r}, timeout={self.timeout:g}, read_only={self.read_only})"

    # ---- writing -------------------------------------------------------------------------

    def add(self, model_input, label: int, predicted: int | None = None, probabilities=None,
            model_version: str | None = None, drawing_png: bytes | None = None) -> int:
        """Save one correction and return its new id.

        The drawing is re-encoded (digitrec.upload.stored_drawing), never stored as given.
        LimitError when the store holds max_samples already; StoreError when the database
        cannot be read (corrupt) or written.
        """
        row = (
            datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            check_digit(label, "label"),
            None if predicted is None else check_digit(predicted, "predicted"),
            encode_probabilities(check_probabilities(probabilities)),
            check_model_version(model_version),
            check_model_input(model_input).tobytes(),
            check_png(drawing_png),
        )
        with self._connection(write=True) as conn:
            conn.execute("BEGIN IMMEDIATE")  # the count below holds until the insert commits
            # Counting reads every row's page, as the Samples page does: a database it
            # reports as corrupt refuses saves too, instead of taking them in.
            stored = conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
            if stored >= self.max_samples:
                raise LimitError(f"The app holds {stored} saved samples, the most it keeps; "
                                 "no more can be saved until some are deleted.")
            cursor = conn.execute(
                "INSERT INTO samples (created, label, predicted, probabilities, model_version,"
                " model_input, drawing_png) VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            return cursor.lastrowid

    def delete(self, sample_id: int) -> bool:
        """Delete one sample; True if it existed."""
        sample_id = check_sample_id(sample_id)
        with self._connection(write=True) as conn:
            return conn.execute("DELETE FROM samples WHERE id = ?", (sample_id,)).rowcount > 0

    # ---- personal examples -----------------------------------------------------------------

    def add_personal(self, profile: str, label: int, drawing_png: bytes, strokes=None) -> int:
        """Keep one of a person's examples under their profile name; return its id.

        The drawing is re-encoded and bounded like a sample's; strokes are thinned to at most
        MAX_STORED_STROKE_POINTS points. A profile keeps its newest MAX_PERSONAL_EXAMPLES;
        LimitError when the app holds MAX_PERSONAL_TOTAL examples of all profiles.
        """
        row = (check_profile(profile), datetime.now(timezone.utc).isoformat(timespec="microseconds"),
               check_digit(label, "label"), check_png(drawing_png), encode_strokes(strokes))
        if row[3] is None:
            raise ValueError("a personal example needs its drawing")
        with self._connection(write=True) as conn:
            conn.execute("BEGIN IMMEDIATE")
            stored = conn.execute("SELECT COUNT(*) FROM personal_examples").fetchone()[0]
            if stored >= MAX_PERSONAL_TOTAL:
                raise LimitError(f"The app holds {stored} personal examples, the most it keeps; "
                                 "examples are kept for this visit only.")
            cursor = conn.execute("INSERT INTO personal_examples (profile, created, label, drawing_png,"
                                  " strokes) VALUES (?, ?, ?, ?, ?)", row)
            conn.execute("DELETE FROM personal_examples WHERE profile = ? AND id NOT IN (SELECT id FROM"
                         " personal_examples WHERE profile = ? ORDER BY id DESC LIMIT ?)",
                         (row[0], row[0], MAX_PERSONAL_EXAMPLES))
            return cursor.lastrowid

    def personal_examples(self, profile: str) -> list[tuple[bytes, int, list | None]]:
        """A profile's examples, oldest first: (drawing PNG, label, strokes or None)."""
        profile = check_profile(profile)
        with self._connection(write=False) as conn:
            rows = conn.execute("SELECT drawing_png, label, strokes FROM personal_examples"
                                " WHERE profile = ? ORDER BY id", (profile,)).fetchall()
        return [(bytes(png), int(label), None if strokes is None else json.loads(strokes))
                for png, label, strokes in rows]

    def clear_personal(self, profile: str) -> int:
        """Delete every example of a profile; return how many there were."""
        profile = check_profile(profile)
        with self._connection(write=True) as conn:
            return conn.execute("DELETE FROM personal_examples WHERE profile = ?", (profile,)).rowcount

    # ---- reading -------------------------------------------------------------------------

    def get(self, sample_id: int) -> Sample | None:
        """The sample with this id, or None."""
        sample_id = check_sample_id(sample_id)
        with self._connection(write=False) as conn:
            row = conn.execute(f"SELECT {SAMPLE_COLUMNS} FROM samples WHERE id = ?",
                               (sample_id,)).fetchone()
        return None if row is None else self._sample_from_row(row)

    def drawing(self, sample_id: int) -> bytes | None:
        """The PNG drawing saved with one sample (None if it has none or does not exist)."""
        sample_id = check_sample_id(sample_id)
        with self._connection(write=False) as conn:
            row = conn.execute("SELECT drawing_png FROM samples WHERE id = ?", (sample_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def count(self) -> int:
        """How many samples are stored."""
        with self._connection(write=False) as conn:
            return conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def count_by_label(self) -> dict[int, int]:
        """Samples per digit, with all ten digits present (zero when none)."""
        counts = {digit: 0 for digit in DIGITS}
        with self._connection(write=False) as conn:
            for label, number in conn.execute("SELECT label, COUNT(*) FROM samples GROUP BY label"):
                counts[label] = number
        return counts

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All samples for retraining: x float32 (N, 28, 28) and y uint8 (N,), oldest first."""
        images, labels = [], []
        with self._connection(write=False) as conn:
            for sample_id, label, blob in conn.execute(
                    "SELECT id, label, model_input FROM samples ORDER BY id"):
                images.append(self._image_from_blob(blob, sample_id))
                labels.append(label)
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
            for row in conn.execute(f"SELECT {LIST_COLUMNS} FROM samples ORDER BY id"):
                writer.writerow(csv_row(self._sample_from_row(row)))
        return text.getvalue().encode("utf-8")

    def list(self, label: int | None = None, limit: int = 100, offset: int = 0) -> list[Sample]:
        """Samples newest first, optionally only one label, `limit` at most after `offset`.

        Drawings are left out (drawing_png is None): load one with drawing(sample_id).
        """
        limit = check_count(limit, "limit")
        offset = check_count(offset, "offset")
        # Ordered by id, not by time: ids grow with every insert, clocks can tie or step back.
        if label is None:
            sql, parameters = (f"SELECT {LIST_COLUMNS} FROM samples"
                               " ORDER BY id DESC LIMIT ? OFFSET ?"), (limit, offset)
        else:
            sql, parameters = (f"SELECT {LIST_COLUMNS} FROM samples WHERE label = ?"
                               " ORDER BY id DESC LIMIT ? OFFSET ?"),\
                (check_digit(label, "label"), limit, offset)
        with self._connection(write=False) as conn:
            rows = conn.execute(sql, parameters).fetchall()
        return [self._sample_from_row(row) for row in rows]

    # ---- connections ---------------------------------------------------------------------

    @contextmanager
    def _connection(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One connection for one call; writes run in a transaction; sqlite errors become StoreError."""
        if write and self.read_only:
            raise StoreError(f"the samples database {self.path} was opened read-only:"
                             " open it without read_only=True to save corrections")
        read_only = self.read_only or (not write and self._looks_read_only())
        self._refuse_empty_file()
        try:
            if not read_only:
                self._make_folder()
            with closing(self._open(read_only)) as conn:
                if write:
                    with conn:  # commits on success, rolls back on any error
                        yield conn
                else:
                    yield conn
        except sqlite3.Error as error:
            raise self._store_error(error) from error

    def _refuse_empty_file(self) -> None:
        """A zero-byte file is a lost database (SQLite would take it as a new, empty one)."""
        try:
            empty = self.path.stat().st_size == 0
        except OSError:
            return  # missing (created on first write) or unreadable (reported on opening)
        if empty:
            raise StoreError(f"the samples database {self.path} is an empty file (0 bytes), not a"
                             " database: its samples are lost or it was never written. Restore it"
                             f" from a backup, delete it to start afresh, or set {ENV_VARIABLE}"
                             " to another file")

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
            raise StoreError(f"cannot create the folder {self.path.parent} for the samples database"
                             f" ({error.strerror or error}): set {ENV_VARIABLE} to a writable file"
                             ) from error

    def _open(self, read_only: bool) -> sqlite3.Connection:
        """A ready connection: schema in place, or shadowed by a temp table when read-only."""
        if read_only:
            return self._open_read_only()
        if not self.path.exists():
            self._create()
        # mode=rw never creates a file: a database that vanished is not silently made anew.
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True,
                               timeout=self.timeout)
        try:
            self._prepare(conn)
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _create(self) -> None:
        """Create the database complete under a temporary name, then link it into place.

        So the file at `path` is never seen empty while being created, and a zero-byte file
        there is always a lost database (refused), never one being made.
        """
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.new")
        try:
            with closing(sqlite3.connect(temporary)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                with conn:
                    for statement in SCHEMAS:
                        conn.execute(statement)
            try:
                os.link(temporary, self.path)
            except FileExistsError:
                pass  # another process or thread created it meanwhile: use theirs
            except OSError:  # a file system without hard links
                if not self.path.exists():
                    os.rename(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Turn on WAL and create the table, once per store object."""
        if self._schema_ready:
            return
        # WAL is stored in the file, so this only does work the first time the file is used.
        conn.execute("PRAGMA journal_mode=WAL")
        with conn:
            for statement in SCHEMAS:
                conn.execute(statement)
        self._schema_ready = True

    def _open_read_only(self) -> sqlite3.Connection:
        """A connection that never writes the file, for read-only files and folders."""
        if not self.path.exists():
            raise StoreError(f"the samples database {self.path} does not exist:"
                             f" set {ENV_VARIABLE} to an existing file to read it read-only")
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
        conn = sqlite3.connect(uri, uri=True, timeout=self.timeout)
        try:
            for name, temporary in TEMP_SCHEMAS.items():
                exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                      " AND name = ?", (name,)).fetchone()
                if exists is None:
                    conn.execute(temporary)
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _store_error(self, error: sqlite3.Error) -> StoreError:
        """A StoreError that names the file and says what to do about `error`."""
        code = primary_code(error)
        where = f"the samples database {self.path}"
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return StoreError(f"{where} stayed locked by another writer for {self.timeout:g} s:"
                              " try again in a moment")
        if code == sqlite3.SQLITE_READONLY:
            return StoreError(f"{where} is read-only: set {ENV_VARIABLE} to a writable file")
        if code == sqlite3.SQLITE_NOTADB:
            return StoreError(f"{where} is not a SQLite database: move it away or set"
                              f" {ENV_VARIABLE} to another file")
        if code == sqlite3.SQLITE_CORRUPT:
            return StoreError(f"{where} is corrupt: restore it from a backup or set"
                              f" {ENV_VARIABLE} to another file")
        if code == sqlite3.SQLITE_FULL:
            return StoreError(f"{where} cannot grow, the disk is full: free some space")
        if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
            return StoreError(f"{where} cannot be opened: check that the file and its folder are"
                              f" writable, or set {ENV_VARIABLE} to another file")
        if code == sqlite3.SQLITE_IOERR:
            return StoreError(f"{where} could not be read or written (I/O error): check the disk")
        return StoreError(f"{where} failed: {error}")

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
            raise StoreError(f"sample {sample_id} in the samples database {self.path} has a damaged"
                             " image: delete that sample")
        return np.frombuffer(blob, dtype=np.float32).reshape(IMAGE_SHAPE)


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
