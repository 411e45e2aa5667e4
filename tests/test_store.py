"""Tests for digitrec.store: a fresh SQLite file per test under tmp_path, and the same tests
on a fresh PostgreSQL database (the `backend` parameter; skipped, saying why, without a server)."""

from __future__ import annotations

import csv
import io
import os
import socket
import sqlite3
import threading
import time
from contextlib import closing

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from digitrec import store as store_module
from digitrec.errors import LimitError, StoreError
from digitrec.store import Sample, SampleStore, default_path


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def drawing(size=(280, 280)) -> Image.Image:
    """An RGBA canvas drawing: a dark bar on a transparent background."""
    pixels = np.zeros((size[1], size[0], 4), np.uint8)
    pixels[size[1] // 5: -size[1] // 5, size[0] // 2 - 10: size[0] // 2 + 10] = (17, 17, 17, 255)
    return Image.fromarray(pixels, "RGBA")


PNG_BYTES = png(drawing())


def pixels_of(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def image(seed: int) -> np.ndarray:
    """A distinct, reproducible 28x28 float32 model input."""
    return np.random.default_rng(seed).random((28, 28), dtype=np.float32)


def probabilities_for(digit: int) -> list[float]:
    """Ten probabilities summing to 1 with `digit` the most likely."""
    values = [0.02] * 10
    values[digit] = 0.82
    return values


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request, tmp_path):
    """SampleStore(**options) on a fresh SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return lambda **options: SampleStore(tmp_path / "samples.db", **options)
    url = request.getfixturevalue("postgres_url")
    return lambda **options: SampleStore(url=url, **options)


@pytest.fixture
def store(make_store) -> SampleStore:
    return make_store()


def raw_engine(store: SampleStore) -> sa.Engine:
    """An engine on the store's database, beside the store (what another program would see)."""
    return sa.create_engine(store.url if store.url else f"sqlite:///{store.path}")


# ---- paths -----------------------------------------------------------------------------

def test_default_path_uses_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITREC_SAMPLES_DB", str(tmp_path / "elsewhere.db"))
    assert default_path() == tmp_path / "elsewhere.db"
    assert SampleStore().path == tmp_path / "elsewhere.db"


def test_default_path_falls_back_to_repository_data(monkeypatch):
    monkeypatch.delenv("DIGITREC_SAMPLES_DB", raising=False)
    path = default_path()
    assert path.name == "samples.db" and path.parent.name == "data"
    assert (path.parents[1] / "digitrec" / "store.py").is_file()


def test_creates_parent_folder_and_uses_wal(tmp_path):
    path = tmp_path / "deep" / "er" / "samples.db"
    SampleStore(path).add(image(0), 3)
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ---- round trips -----------------------------------------------------------------------

def test_add_then_get_round_trip(store):
    model_input = image(1)
    sample_id = store.add(model_input, 7, predicted=1, probabilities=probabilities_for(1),
                          model_version="v2024-01", drawing_png=PNG_BYTES)
    sample = store.get(sample_id)
    assert isinstance(sample, Sample)
    assert sample.id == sample_id
    assert sample.label == 7 and sample.predicted == 1
    assert sample.probabilities == tuple(probabilities_for(1))
    assert sample.confidence == pytest.approx(0.82)
    assert sample.model_version == "v2024-01"
    np.testing.assert_array_equal(pixels_of(sample.drawing_png), pixels_of(PNG_BYTES))
    assert store.drawing(sample_id) == sample.drawing_png
    assert sample.model_input.dtype == np.float32 and sample.model_input.shape == (28, 28)
    np.testing.assert_array_equal(sample.model_input, model_input)
    assert sample.created.endswith("+00:00")  # UTC ISO time


def test_optional_fields_stay_none(store):
    sample = store.get(store.add(image(2), 0))
    assert sample.predicted is None and sample.probabilities is None
    assert sample.model_version is None and sample.drawing_png is None
    assert sample.confidence is None


def test_get_missing_returns_none(store):
    assert store.get(12345) is None


def test_accepts_lists_and_other_number_types(store):
    model_input = (np.arange(784).reshape(28, 28) / 784).tolist()
    sample = store.get(store.add(model_input, np.int64(4), probabilities=np.full(10, 0.1)))
    assert sample.label == 4
    np.testing.assert_allclose(sample.model_input, np.asarray(model_input, np.float32))


def test_list_is_newest_first_and_filters_by_label(store):
    ids = [store.add(image(index), index % 3) for index in range(7)]
    assert [sample.id for sample in store.list()] == ids[::-1]
    assert [sample.id for sample in store.list(label=1)] == [ids[4], ids[1]]
    assert store.list(label=9) == []
    assert [sample.id for sample in store.list(limit=2, offset=1)] == [ids[5], ids[4]]
    assert all(sample.label == 0 for sample in store.list(label=0))


def test_delete(store):
    keep, gone = store.add(image(1), 1), store.add(image(2), 2)
    assert store.delete(gone) is True
    assert store.delete(gone) is False
    assert store.get(gone) is None
    assert store.get(keep) is not None
    assert store.count() == 1


def test_a_deleted_samples_id_is_never_given_to_a_new_one(store):
    store.add(image(1), 1)
    newest = store.add(image(2), 2)
    store.delete(newest)  # "#2" is gone: a new drawing must not become "#2" too
    assert store.add(image(3), 3) > newest


def test_count_by_label_includes_zeros(store):
    assert store.count_by_label() == {digit: 0 for digit in range(10)}
    for label in (3, 3, 5):
        store.add(image(label), label)
    expected = {digit: 0 for digit in range(10)} | {3: 2, 5: 1}
    assert store.count_by_label() == expected
    assert store.count() == 3


# ---- retraining and export -------------------------------------------------------------

def add_some(store: SampleStore) -> tuple[np.ndarray, np.ndarray]:
    """Add five samples; return the x, y they should read back as, oldest first."""
    x = np.stack([image(seed) for seed in range(5)])
    y = np.array([4, 0, 9, 4, 1], dtype=np.uint8)
    for model_input, label in zip(x, y):
        store.add(model_input, int(label), predicted=2, probabilities=probabilities_for(2),
                  model_version="v1, with a comma")
    return x, y


def test_arrays_empty_shapes(store):
    x, y = store.arrays()
    assert x.shape == (0, 28, 28) and x.dtype == np.float32
    assert y.shape == (0,) and y.dtype == np.uint8


def test_arrays_return_all_samples(store):
    expected_x, expected_y = add_some(store)
    x, y = store.arrays()
    assert x.dtype == np.float32 and y.dtype == np.uint8
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(y, expected_y)


def test_export_npz_loads_back(store):
    expected_x, expected_y = add_some(store)
    with np.load(io.BytesIO(store.export_npz())) as data:
        np.testing.assert_array_equal(data["x"], expected_x)
        np.testing.assert_array_equal(data["y"], expected_y)
        assert data["x"].dtype == np.float32 and data["y"].dtype == np.uint8


def test_export_npz_empty(store):
    with np.load(io.BytesIO(store.export_npz())) as data:
        assert data["x"].shape == (0, 28, 28) and data["y"].shape == (0,)


def test_export_csv_parses_to_the_right_rows(store):
    expected_x, expected_y = add_some(store)
    rows = list(csv.DictReader(io.StringIO(store.export_csv().decode("utf-8"))))
    assert len(rows) == 5
    assert list(rows[0])[:6] == ["id", "created", "label", "predicted", "confidence",
                                 "model_version"]
    # Probabilities and pixels have names that cannot be mistaken for each other.
    assert list(rows[0])[6:16] == ["prob_0", "prob_1", "prob_2", "prob_3", "prob_4", "prob_5",
                                   "prob_6", "prob_7", "prob_8", "prob_9"]
    pixel_names = list(rows[0])[16:]
    assert len(pixel_names) == 784
    assert pixel_names[:3] == ["px_r0_c0", "px_r0_c1", "px_r0_c2"]
    assert pixel_names[28] == "px_r1_c0" and pixel_names[-1] == "px_r27_c27"
    ids = [sample.id for sample in store.list()][::-1]
    for row, sample_id, model_input, label in zip(rows, ids, expected_x, expected_y):
        assert int(row["id"]) == sample_id
        assert int(row["label"]) == label
        assert int(row["predicted"]) == 2
        assert float(row["confidence"]) == pytest.approx(0.82)
        assert row["model_version"] == "v1, with a comma"
        probabilities = [float(row[f"prob_{digit}"]) for digit in range(10)]
        np.testing.assert_allclose(probabilities, probabilities_for(2), rtol=1e-5)
        pixels = np.array([float(row[name]) for name in pixel_names]).reshape(28, 28)
        np.testing.assert_allclose(pixels, model_input, atol=0.0005 + 1e-6)
        assert float(row["px_r3_c5"]) == pytest.approx(model_input[3, 5], abs=0.0005 + 1e-6)


def test_export_csv_empty_values_and_header_only(store):
    assert store.export_csv().decode("utf-8").count("\n") == 1  # header only
    store.add(np.zeros((28, 28)), 6)
    row = next(csv.DictReader(io.StringIO(store.export_csv().decode("utf-8"))))
    assert row["predicted"] == row["confidence"] == row["model_version"] == ""
    assert all(row[f"prob_{digit}"] == "" for digit in range(10))
    assert row["px_r0_c0"] == "0" and "p0" not in row


# ---- concurrency and locking -----------------------------------------------------------

def test_concurrent_writes_lose_nothing(make_store):
    ids: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(thread_index: int) -> None:
        own_store = make_store(timeout=30)  # generous: the machine may be busy
        try:
            for index in range(40):
                sample_id = own_store.add(image(thread_index * 100 + index), index % 10)
                with lock:
                    ids.append(sample_id)
        except Exception as error:  # reported below, so a failure names its cause
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert make_store().count() == 320
    assert len(set(ids)) == 320
    assert sum(make_store().count_by_label().values()) == 320


def test_write_lock_held_elsewhere_raises_store_error_after_timeout(tmp_path):
    path = tmp_path / "samples.db"
    store = SampleStore(path, timeout=0.2)
    store.add(image(0), 1)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked") as caught:
            store.add(image(1), 2)
        elapsed = time.monotonic() - started
        # Visitors see the message: the file is named only in the detail, for the log.
        assert str(path) not in str(caught.value) and str(path) in caught.value.detail
        assert 0.15 <= elapsed < 10
        # WAL: readers are not blocked by the writer.
        assert store.count() == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.add(image(1), 2)  # works again once the lock is gone
    assert store.count() == 2


def test_postgres_write_lock_held_elsewhere_raises_store_error_after_timeout(postgres_url):
    store = SampleStore(url=postgres_url, timeout=0.2)
    store.add(image(0), 1)
    other = sa.create_engine(postgres_url)
    try:
        with other.connect() as conn:
            conn.exec_driver_sql("LOCK TABLE samples IN SHARE ROW EXCLUSIVE MODE")  # a writer's lock
            started = time.monotonic()
            with pytest.raises(StoreError, match="locked") as caught:
                store.add(image(1), 2)
            elapsed = time.monotonic() - started
            assert 0.15 <= elapsed < 10
            assert "127.0.0.1" not in str(caught.value) and "digitrec_test_" in caught.value.detail
            assert store.count() == 1  # readers are not blocked by the writer
            conn.rollback()
    finally:
        other.dispose()
    store.add(image(1), 2)
    assert store.count() == 2


# ---- unusable files --------------------------------------------------------------------

def test_read_only_option_reads_but_refuses_writes(tmp_path):
    path = tmp_path / "samples.db"
    SampleStore(path).add(image(0), 8)
    reader = SampleStore(path, read_only=True)
    assert reader.count() == 1
    assert reader.list()[0].label == 8
    with pytest.raises(StoreError, match="read-only"):
        reader.add(image(1), 1)
    with pytest.raises(StoreError, match="read-only"):
        reader.delete(1)
    assert SampleStore(path).count() == 1


@pytest.mark.parametrize("read_only", [True, False])
def test_zero_byte_database_is_refused_not_taken_as_new(tmp_path, read_only):
    path = tmp_path / "empty.db"
    path.touch()  # a database whose contents were lost (a failed copy, a full disk)
    store = SampleStore(path, read_only=read_only)
    for call in (store.count, store.count_by_label, lambda: store.list(), store.arrays):
        with pytest.raises(StoreError, match="empty file"):
            call()
    if not read_only:
        with pytest.raises(StoreError, match="empty file"):
            store.add(image(0), 1)
    assert path.read_bytes() == b""  # nothing written


def test_new_database_is_created_complete(tmp_path):
    path = tmp_path / "new.db"
    store = SampleStore(path)
    assert store.count() == 0
    assert path.stat().st_size > 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".new")]  # no leftovers


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores file permissions")
def test_chmod_read_only_file_and_folder(tmp_path):
    folder = tmp_path / "locked"
    path = folder / "samples.db"
    SampleStore(path).add(image(0), 5)
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        store = SampleStore(path)
        assert store.count() == 1  # reading still works
        with pytest.raises(StoreError):
            store.add(image(1), 1)
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)


def test_uncreatable_location_raises_store_error(tmp_path):
    regular_file = tmp_path / "a_file"
    regular_file.write_text("not a folder")
    store = SampleStore(regular_file / "sub" / "samples.db")
    with pytest.raises(StoreError, match="cannot create the folder"):
        store.add(image(0), 1)
    with pytest.raises(StoreError):
        store.count()


def test_file_that_is_not_a_database_raises_store_error(tmp_path):
    path = tmp_path / "samples.db"
    path.write_bytes(b"this is certainly not sqlite " * 200)
    store = SampleStore(path)
    with pytest.raises(StoreError, match="not a SQLite database") as caught:
        store.add(image(0), 1)
    assert str(path) not in str(caught.value) and str(path) in caught.value.detail
    with pytest.raises(StoreError, match="not a SQLite database"):
        store.count()


# ---- input validation ------------------------------------------------------------------

@pytest.mark.parametrize("label", [10, -1, True, False, 3.0, "3", None])
def test_bad_label_raises_value_error(store, label):
    with pytest.raises(ValueError, match="label"):
        store.add(image(0), label)


@pytest.mark.parametrize("model_input", [
    np.zeros((28, 27)), np.zeros((784,)), np.zeros((1, 28, 28)), [[0.0] * 28] * 27,
    np.full((28, 28), "a"),
])
def test_bad_model_input_shape_or_type_raises_value_error(store, model_input):
    with pytest.raises(ValueError, match="model_input"):
        store.add(model_input, 1)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf, 1e300])
def test_non_finite_model_input_raises_value_error(store, bad_value):
    model_input = np.zeros((28, 28))
    model_input[3, 4] = bad_value
    with pytest.raises(ValueError, match="finite"):
        store.add(model_input, 1)


@pytest.mark.parametrize("probabilities", [[0.1] * 9, [0.1] * 11, [0.1] * 9 + [np.nan],
                                           ["a"] * 10, 0.5])
def test_bad_probabilities_raise_value_error(store, probabilities):
    with pytest.raises(ValueError, match="probabilities"):
        store.add(image(0), 1, probabilities=probabilities)


def test_other_bad_inputs_raise_value_error(store):
    with pytest.raises(ValueError, match="predicted"):
        store.add(image(0), 1, predicted=11)
    with pytest.raises(ValueError, match="model_version"):
        store.add(image(0), 1, model_version=3)
    with pytest.raises(ValueError, match="PNG"):
        store.add(image(0), 1, drawing_png=b"GIF89a")
    with pytest.raises(ValueError, match="limit"):
        store.list(limit=-1)
    with pytest.raises(ValueError, match="sample id"):
        store.get("1")
    assert store.count() == 0  # nothing half-saved


# ---- SQL parameters --------------------------------------------------------------------

def test_sql_in_values_is_stored_verbatim(store):
    hostile = "x'); DROP TABLE samples; --"
    sample_id = store.add(image(0), 2, model_version=hostile)
    assert store.get(sample_id).model_version == hostile
    store.add(image(1), 3)
    assert store.count() == 2
    engine = raw_engine(store)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            assert {"samples", "personal_examples", "schema_version"} <= tables
    finally:
        engine.dispose()


# ---- bounded memory and disk (issue 8) -------------------------------------------------

def test_list_leaves_drawings_out_and_drawing_loads_one(store):
    ids = [store.add(image(index), index, drawing_png=PNG_BYTES) for index in range(3)]
    listed = store.list()
    assert [sample.id for sample in listed] == ids[::-1]
    assert all(sample.drawing_png is None for sample in listed)
    np.testing.assert_array_equal(listed[0].model_input, image(2))
    np.testing.assert_array_equal(pixels_of(store.drawing(ids[1])), pixels_of(PNG_BYTES))
    assert store.drawing(store.add(image(9), 9)) is None  # saved without a drawing
    assert store.drawing(99_999) is None


def test_stored_drawing_is_reencoded_and_bounded(store):
    from digitrec.limits import MAX_DRAWING_SIZE, MAX_STORED_DRAWING_BYTES

    big = png(drawing((1400, 1400)))
    sample_id = store.add(image(0), 1, drawing_png=big)
    stored = store.drawing(sample_id)
    with Image.open(io.BytesIO(stored)) as picture:
        assert picture.format == "PNG"
        assert picture.width <= MAX_DRAWING_SIZE[0] and picture.height <= MAX_DRAWING_SIZE[1]
    assert len(stored) <= MAX_STORED_DRAWING_BYTES


def test_png_with_data_appended_is_not_stored_whole(store):
    tail = os.urandom(3 * 1024 * 1024)  # under the upload limit: read, then re-encoded
    sample_id = store.add(image(0), 1, drawing_png=PNG_BYTES + tail)
    stored = store.drawing(sample_id)
    assert tail[:64] not in stored and len(stored) < 64 * 1024
    np.testing.assert_array_equal(pixels_of(stored), pixels_of(PNG_BYTES))


def test_noise_drawing_is_halved_until_small(store):
    from digitrec.limits import MAX_STORED_DRAWING_BYTES

    noise = np.random.default_rng(0).integers(0, 256, (280, 700, 4), dtype=np.uint8)
    stored = store.drawing(store.add(image(0), 1, drawing_png=png(Image.fromarray(noise, "RGBA"))))
    assert len(stored) <= MAX_STORED_DRAWING_BYTES


def test_total_cap_refuses_with_a_message(make_store):
    store = make_store(max_samples=3)
    for index in range(3):
        store.add(image(index), index)
    with pytest.raises(LimitError, match="3 saved samples, the most it keeps"):
        store.add(image(3), 3)
    assert store.count() == 3
    store.delete(store.list(limit=1)[0].id)
    store.add(image(4), 4)  # room again after a delete
    assert store.count() == 3


def corrupt_table_pages(path):
    """Overwrite the samples table's leaf pages (not the header or schema) with garbage."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    pages = len(data) // page_size
    for page in range(2, pages - 1):  # keep page 1 (header, schema) and the last page
        data[page * page_size: page * page_size + 64] = b"\xee" * 64
    path.write_bytes(bytes(data))


def test_save_into_a_corrupt_database_fails(tmp_path):
    path = tmp_path / "samples.db"
    store = SampleStore(path)
    for index in range(60):
        store.add(image(index), index % 10, drawing_png=PNG_BYTES)
    corrupt_table_pages(path)
    with pytest.raises(StoreError):  # what the Samples page reads first
        SampleStore(path).count_by_label()
    with pytest.raises(StoreError, match="corrupt|not a SQLite"):
        SampleStore(path).add(image(99), 1)


# ---- personal examples ----------------------------------------------------------------------


def _png(size=(40, 30)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", size, 255).save(buffer, format="PNG")
    return buffer.getvalue()


def test_personal_examples_are_kept_per_profile_and_cleared(store):
    stroke = [[(float(i), float(i * 2)) for i in range(10)]]
    store.add_personal("ana", 4, _png(), stroke)
    store.add_personal("ana", 5, _png())
    store.add_personal("ben", 1, _png(), stroke)
    examples = store.personal_examples("ana")
    assert [label for _, label, _ in examples] == [4, 5]
    assert examples[0][2] == [[[float(i), float(i * 2)] for i in range(10)]] and examples[1][2] is None
    assert store.clear_personal("ana") == 2
    assert store.personal_examples("ana") == [] and len(store.personal_examples("ben")) == 1
    assert store.count() == 0  # personal examples are not training samples


def test_one_personal_example_is_deleted_only_under_its_own_profile(store):
    kept = store.add_personal("ana", 1, PNG_BYTES)
    doomed = store.add_personal("ana", 7, PNG_BYTES)
    other = store.add_personal("bo", 7, PNG_BYTES)
    assert store.delete_personal("bo", doomed) is False  # another profile's id deletes nothing
    assert store.delete_personal("ana", doomed) is True
    assert store.delete_personal("ana", doomed) is False
    assert [label for _, label, _ in store.personal_examples("ana")] == [1]
    assert [label for _, label, _ in store.personal_examples("bo")] == [7]
    assert kept != other


def test_personal_examples_are_bounded(store, monkeypatch):
    monkeypatch.setattr(store_module, "MAX_PERSONAL_EXAMPLES", 3)
    monkeypatch.setattr(store_module, "MAX_PERSONAL_TOTAL", 5)
    for label in range(5):
        store.add_personal("ana", label, _png())
    assert [label for _, label, _ in store.personal_examples("ana")] == [2, 3, 4]  # the newest
    long_stroke = [[(float(i % 280), float(i % 200)) for i in range(5000)]]
    store.add_personal("ben", 1, _png(), long_stroke)
    (_, _, kept), = store.personal_examples("ben")
    assert len(kept[0]) <= store_module.MAX_STORED_STROKE_POINTS + 1
    store.add_personal("cy", 1, _png())
    with pytest.raises(LimitError):
        store.add_personal("dee", 1, _png())
    for bad in ("", "a" * 41, "semi;colon", "../x", None, 3):
        with pytest.raises(ValueError):
            store.add_personal(bad, 1, _png())


def test_a_huge_personal_drawing_is_stored_re_encoded_and_small(store):
    big = _png((3000, 2000)) + b"\0" * 1_000_000  # a valid PNG with a megabyte appended
    store.add_personal("ana", 7, big)
    (png, _, _), = store.personal_examples("ana")
    assert len(png) < 70_000 and png.startswith(b"\x89PNG")


# ---- backends, schema versions and migrations (issue 10) ------------------------------------

# The tables exactly as digitrec wrote them before the schema_version table existed.
LEGACY_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    predicted INTEGER CHECK (predicted IS NULL OR predicted BETWEEN 0 AND 9),
    probabilities TEXT,
    model_version TEXT,
    model_input BLOB NOT NULL,
    drawing_png BLOB
)""",
    """CREATE TABLE IF NOT EXISTS personal_examples (
    id INTEGER PRIMARY KEY,
    profile TEXT NOT NULL,
    created TEXT NOT NULL,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    drawing_png BLOB NOT NULL,
    strokes TEXT
)""")


def test_a_file_written_before_schema_versions_is_migrated_in_place(tmp_path):
    path = tmp_path / "samples.db"
    with sqlite3.connect(path) as conn:  # as the previous digitrec left it
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in LEGACY_SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT INTO samples (created, label, predicted, model_input) VALUES (?, ?, ?, ?)",
                     ("2026-01-01T00:00:00+00:00", 7, 1, image(5).tobytes()))
        conn.execute("INSERT INTO personal_examples (profile, created, label, drawing_png)"
                     " VALUES (?, ?, ?, ?)", ("ana", "2026-01-01T00:00:00+00:00", 4, PNG_BYTES))
    conn.close()
    store = SampleStore(path)
    (sample,) = store.list()
    assert sample.label == 7 and sample.predicted == 1
    np.testing.assert_array_equal(sample.model_input, image(5))
    assert [label for _, label, _ in store.personal_examples("ana")] == [4]
    newest = store.add(image(6), 3)
    assert store.get(newest).label == 3 and newest > sample.id  # ids go on from the old rows
    assert store.delete(newest) and store.add(image(7), 4) > newest  # and are not reused after a delete
    assert [s.id for s in store.list()][-1] == sample.id  # the old row kept its id
    with closing(sqlite3.connect(path)) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert versions == list(range(1, store_module.SCHEMA_VERSION + 1))
    assert {"ix_samples_label", "ix_personal_examples_profile"} <= indexes


def test_a_postgres_database_with_the_old_tables_is_migrated(postgres_url):
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:  # the same tables another tool made from the old DDL
            for statement in LEGACY_SCHEMA:
                conn.exec_driver_sql(statement.replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY")
                                     .replace("BLOB", "BYTEA"))
            conn.execute(sa.text("INSERT INTO samples (created, label, model_input) VALUES (:c, 2, :x)"),
                         {"c": "2026-01-01T00:00:00+00:00", "x": image(1).tobytes()})
        store = SampleStore(url=postgres_url)
        assert store.count_by_label()[2] == 1
        store.add(image(2), 2)
        with engine.connect() as conn:
            assert store_module.schema_version(conn) == store_module.SCHEMA_VERSION
            assert "ix_samples_label" in {index["name"] for index in sa.inspect(conn).get_indexes("samples")}
    finally:
        engine.dispose()


def test_a_database_from_a_newer_digitrec_is_refused(store):
    store.count()  # created at the current version
    engine = raw_engine(store)
    try:
        with engine.begin() as conn:
            conn.execute(store_module.SCHEMA_VERSIONS.insert().values(version=99, applied="later"))
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match="newer digitrec"):
        url = store.url.render_as_string(hide_password=False) if store.url else None
        SampleStore(store.path, url=url).count()  # a fresh store object checks the version


def test_first_use_by_many_processes_at_once_creates_the_schema_once(make_store):
    """Replicas starting together on an empty database: one creates the tables, none fails."""
    errors, barrier = [], threading.Barrier(6)

    def first_use(index):
        try:
            barrier.wait()
            make_store(timeout=30).add(image(index), index)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=first_use, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert make_store().count() == 6


def test_the_url_chooses_the_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITREC_SAMPLES_URL", "postgresql://app:s3cret-pw@db.internal:5432/digits")
    store = SampleStore()
    assert store.backend == "postgresql" and store.path is None
    assert store.url.drivername == "postgresql+psycopg"  # psycopg 3, whatever the URL named
    assert "s3cret-pw" not in store.location and "s3cret-pw" not in repr(store)
    monkeypatch.setenv("DIGITREC_SAMPLES_URL", f"sqlite:///{tmp_path}/other.db")
    assert SampleStore().path == tmp_path / "other.db" and SampleStore().backend == "sqlite"
    monkeypatch.delenv("DIGITREC_SAMPLES_URL")
    assert SampleStore().backend == "sqlite"
    # An explicit path wins over the environment's URL (tests, tools).
    monkeypatch.setenv("DIGITREC_SAMPLES_URL", "postgresql://app:s3cret-pw@db.internal/digits")
    assert SampleStore(tmp_path / "x.db").backend == "sqlite"


@pytest.mark.parametrize("url", ["mysql://app:s3cret-pw@host/db", "not a url s3cret-pw", "sqlite://"])
def test_an_unusable_url_is_refused_without_repeating_it(url):
    with pytest.raises(ValueError, match="URL") as caught:
        SampleStore(url=url)
    assert "s3cret-pw" not in str(caught.value)


def test_postgres_errors_never_show_the_host_or_password(postgres_server):
    url = sa.make_url(postgres_server)
    wrong = url.set(password="wrong-s3cret").render_as_string(hide_password=False)
    with pytest.raises(StoreError, match="refused the user name or password") as caught:
        SampleStore(url=wrong, timeout=2).count()
    message = str(caught.value)
    assert "wrong-s3cret" not in message and url.host not in message and str(url.port) not in message
    assert "wrong-s3cret" not in caught.value.detail and url.host in caught.value.detail
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = url.set(port=closed_port).render_as_string(hide_password=False)
    with pytest.raises(StoreError, match="cannot be reached") as caught:
        SampleStore(url=unreachable, timeout=2).add(image(0), 1)
    assert str(closed_port) not in str(caught.value) and url.password not in caught.value.detail


# ---- the preprocessing version each sample was made with (issue 11) --------------------------


def preprocess_versions(store: SampleStore) -> dict:
    engine = raw_engine(store)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT id, preprocess_version FROM samples")).all())
    finally:
        engine.dispose()


def test_a_sample_made_with_another_preprocessing_is_reprocessed_from_its_drawing(store):
    from digitrec.preprocess import PREPROCESS_VERSION, preprocess
    from digitrec.upload import decode_upload

    current = store.add(image(1), 1, drawing_png=PNG_BYTES)
    older = store.add(image(2), 2, drawing_png=PNG_BYTES)
    no_drawing = store.add(image(3), 3)
    assert set(preprocess_versions(store).values()) == {PREPROCESS_VERSION}
    engine = raw_engine(store)
    try:
        with engine.begin() as conn:  # as if preprocess changed since these two were saved
            conn.execute(sa.text("UPDATE samples SET preprocess_version = '1' WHERE id IN (:a, :b)"),
                         {"a": older, "b": no_drawing})
    finally:
        engine.dispose()
    x, y = store.arrays()
    assert y.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(x[0], image(1))  # made with today's preprocessing: kept
    remade = preprocess(decode_upload(store.drawing(older))).model_input
    assert not np.array_equal(remade, image(2))
    np.testing.assert_array_equal(x[1], remade)  # remade from its drawing
    np.testing.assert_array_equal(x[2], image(3))  # nothing to remake it from: kept
    assert store.get(older).model_input.tobytes() == image(2).tobytes()  # the stored row is untouched
    assert current


def test_samples_saved_before_versions_were_recorded_count_as_version_2(tmp_path):
    path = tmp_path / "samples.db"
    with closing(sqlite3.connect(path)) as conn:  # a file at schema version 2: no preprocess_version
        for statement in LEGACY_SCHEMA:
            conn.execute(statement)
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)")
        conn.executemany("INSERT INTO schema_version VALUES (?, 'then')", [(1,), (2,)])
        conn.execute("INSERT INTO samples (created, label, model_input, drawing_png) VALUES (?, ?, ?, ?)",
                     ("2026-01-01T00:00:00+00:00", 7, image(5).tobytes(), PNG_BYTES))
        conn.commit()
    store = SampleStore(path)
    x, y = store.arrays()
    assert list(preprocess_versions(store).values()) == ["2"]
    # Today's preprocessing is a later version: a version-2 sample is remade from its drawing.
    from digitrec.preprocess import PREPROCESS_VERSION, preprocess
    from digitrec.upload import decode_upload

    assert PREPROCESS_VERSION != store_module.UNRECORDED_PREPROCESS_VERSION
    np.testing.assert_array_equal(x[0], preprocess(decode_upload(PNG_BYTES)).model_input)
    with closing(sqlite3.connect(path)) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert max(versions) == store_module.SCHEMA_VERSION
