"""Data: the IDX reader, MNIST loading, pendigits parsing and drawing strokes on a canvas."""

import gzip
import struct

import numpy as np
import pytest

from digitrec import data
from digitrec.errors import DataUnavailableError


def write_idx(path, array, compress=True):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def test_read_idx_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "images.gz", images)
    write_idx(tmp_path / "plain.idx", images, compress=False)
    assert np.array_equal(data.read_idx(tmp_path / "images.gz"), images)
    assert np.array_equal(data.read_idx(tmp_path / "plain.idx"), images)


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    images = np.zeros((5, 28, 28), np.uint8)
    write_idx(tmp_path / "full.gz", images)
    full = gzip.decompress((tmp_path / "full.gz").read_bytes())
    (tmp_path / "short.gz").write_bytes(gzip.compress(full[:-10]))
    (tmp_path / "text.gz").write_bytes(gzip.compress(b"hello world, not idx"))
    (tmp_path / "broken.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match="promises"):
        data.read_idx(tmp_path / "short.gz")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        data.read_idx(tmp_path / "text.gz")
    with pytest.raises(ValueError, match="cannot read"):
        data.read_idx(tmp_path / "broken.gz")


def test_load_mnist_folder_checks_shapes(tmp_path):
    for key, name in data.MNIST_FILES.items():
        count = 3
        array = np.zeros((count, 28, 28) if "images" in key else (count,), np.uint8)
        write_idx(tmp_path / name, array)
    with pytest.raises(ValueError, match="expected \\(60000, 28, 28\\)"):
        data.load_mnist(tmp_path)


def test_missing_mnist_says_how_to_provide_it(tmp_path):
    with pytest.raises(DataUnavailableError, match="DIGITREC_MNIST_DIR"):
        data.load_mnist(tmp_path)


def test_plain_pytest_reads_mnist_without_being_handed_a_folder(mnist_dir):
    # Bug: a plain `pytest` (the README's command) without DIGITREC_MNIST_DIR set failed every
    # test needing companion training: load_mnist() fell back to Keras' download.
    from digitrec.data import load_mnist

    assert load_mnist().x_test.shape == (10_000, 28, 28)


def test_real_mnist_loads_with_checksums(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.y_test.shape == (10000,)
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.checksums["t10k-labels-idx1-ubyte.gz"] == "ec29112dd5afa0611ce80d1b7f02629c"


def test_pendigits_parse(pen_digits):
    assert len(pen_digits) == 7494
    assert (np.bincount([d.label for d in pen_digits]).tolist()
            == [780, 779, 780, 719, 780, 720, 720, 778, 719, 719])
    assert {d.writer for d in pen_digits} == set(range(1, 31))
    first = pen_digits[0]
    assert first.label == 8 and first.writer == 12 and len(first.strokes[0]) > 10


def test_split_writers_never_mixes(pen_digits):
    train, held_out = data.split_writers(pen_digits)
    assert {d.writer for d in train}.isdisjoint({d.writer for d in held_out})
    assert len(train) + len(held_out) == len(pen_digits)


def test_render_strokes_draws_a_round_brush():
    canvas = data.render_strokes([[(40, 140), (240, 140)]], brush=20)
    assert canvas.shape == (280, 280, 4) and canvas.dtype == np.uint8
    column = canvas[:, 140, 3]
    assert 18 <= (column > 127).sum() <= 22  # the line is as thick as the brush
    assert canvas[140, 20, 3] == 0 and canvas[140, 35, 3] > 127  # round cap past the end point
    assert not canvas[..., :3].any()  # black strokes, transparent background


def test_place_strokes_fits_height_and_centre(pen_digits):
    placed = data.place_strokes(pen_digits[0].strokes, 100, (70, 90))
    points = np.array([p for stroke in placed for p in stroke])
    assert np.isclose(points[:, 1].max() - points[:, 1].min(), 100, atol=1)
    assert np.allclose((points.max(axis=0) + points.min(axis=0)) / 2, (70, 90), atol=1)


def test_find_mnist_says_where_mnist_will_come_from(tmp_path, monkeypatch, mnist_dir):
    import http.server
    import threading

    monkeypatch.setattr(data, "MNIST_URL", "http://127.0.0.1:9/mnist.npz")  # nothing answers here
    assert data.find_mnist(mnist_dir).origin == data.MnistOrigin.FOLDER
    with pytest.raises(DataUnavailableError, match="lacks train-images-idx3-ubyte.gz"):
        data.find_mnist(tmp_path)  # DIGITREC_MNIST_DIR pointing at a folder without the files
    monkeypatch.delenv("DIGITREC_MNIST_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DataUnavailableError, match="cannot be reached") as raised:
        data.find_mnist()  # no folder, no Keras copy, no network
    assert "DIGITREC_MNIST_DIR" in str(raised.value) and "mnist.npz" in str(raised.value)

    class Answers(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(data, "MNIST_URL", f"http://127.0.0.1:{server.server_port}/mnist.npz")
        assert data.find_mnist().origin == data.MnistOrigin.DOWNLOAD
    finally:
        server.shutdown()
    copy = tmp_path / "keras" / "datasets" / "mnist.npz"
    copy.parent.mkdir(parents=True)
    empty = np.zeros((1, 28, 28), np.uint8)
    np.savez(copy, x_train=empty, y_train=empty[:, 0, 0], x_test=empty, y_test=empty[:, 0, 0])
    assert data.find_mnist().origin == data.MnistOrigin.KERAS_CACHE


def test_small_bitmaps_are_small_grey_or_1bit_in_either_polarity(mnist):
    rng = np.random.default_rng(0)
    smalls = [data.small_bitmap(mnist.x_train[i], rng) for i in range(60)]
    sides = {s.shape[0] for s in smalls}
    assert all(s.shape[0] == s.shape[1] for s in smalls)
    assert min(sides) >= data.SMALL_SIZES[0] and max(sides) <= data.SMALL_SIZES[1] and len(sides) > 5
    one_bit = [s for s in smalls if set(np.unique(s)) <= {0, 255}]
    assert 10 < len(one_bit) < 50  # about half
    inverted = [s for s in smalls if s[0, 0] > 128]  # the corner is background
    assert 10 < len(inverted) < 50


def test_pen_digits_can_be_drawn_at_every_pen_width_visitors_use(pen_digits):
    rng = np.random.default_rng(1)
    thin = data.draw_pen_digit(pen_digits[0], rng, pens=(6, 6))[..., 3]
    thick = data.draw_pen_digit(pen_digits[0], np.random.default_rng(1), pens=(40, 40))[..., 3]
    assert (thick > 128).sum() > 2 * (thin > 128).sum()
