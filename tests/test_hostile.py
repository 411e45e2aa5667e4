"""Hostile and careless input: every case ends in a prediction, 'empty', or a clear error.

Arrays go through Recognizer.predict; files through the upload path (decode_upload then
predict, exactly what the Draw page does) and through the CLI. A case that raised anything
but ValueError/DigitrecError would be a traceback on the page; one that never returned a hang.
"""

import io
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from digitrec import DigitrecError, Recognizer
from digitrec.upload import MAX_UPLOAD_BYTES, decode_upload

HANG_LIMIT = 60  # seconds; generous for a 2-core machine, far below "hung"


@pytest.fixture(scope="module")
def recognizer(tiny_model):
    return Recognizer.load(tiny_model)


def outcome(function):
    """Run `function` with a hang guard; return 'prediction', 'empty' or 'error: ...'."""
    result = {}

    def target():
        try:
            prediction = function()
            result["value"] = "empty" if prediction.status == "empty" else "prediction"
        except (ValueError, DigitrecError) as error:
            assert str(error), "an error without a message"
            result["value"] = f"error: {error}"
        except BaseException as error:  # anything else would be a traceback on the page
            result["value"] = f"UNEXPECTED {type(error).__name__}: {error}"

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_LIMIT)
    assert not thread.is_alive(), "input made predict hang"
    return result["value"]


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def digit_image(size=200, mode="L") -> Image.Image:
    image = Image.new("L", (size, size), 255)
    pixels = np.asarray(image).copy()
    pixels[size // 5 : -size // 5, size // 2 - size // 20 : size // 2 + size // 20] = 0  # a "1"
    return Image.fromarray(pixels).convert(mode)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width=50_000, height=50_000) -> bytes:
    """A tiny PNG that claims 2.5 gigapixels."""
    import struct

    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    rows = zlib.compress(b"\x00" * (width // 8 + 1) * 10)
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    return encoded(digit_image().rotate(90, expand=True).convert("RGB"), "JPEG", exif=exif)


def animated(fmt: str) -> bytes:
    frames = [digit_image(60).convert("RGB"), Image.new("RGB", (60, 60), "white")]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:])


ARRAYS = {
    "empty 0x0": np.zeros((0, 0)),
    "empty 0x28": np.zeros((0, 28)),
    "1x1 black": np.zeros((1, 1)),
    "1x1 white": np.ones((1, 1)),
    "1x1 RGBA opaque": np.full((1, 1, 4), 255, np.uint8),
    "NaN": np.full((28, 28), np.nan),
    "inf": np.full((28, 28), np.inf),
    "minus inf pixel": np.where(np.eye(28) > 0, -np.inf, 0.0),
    "1-D": np.zeros(784),
    "4-D batch": np.zeros((1, 28, 28, 1)),
    "5 channels": np.zeros((28, 28, 5)),
    "channels first": np.zeros((3, 28, 28)),
    "strings": np.full((28, 28), "x"),
    "objects": np.empty((28, 28), dtype=object),
    "complex": np.ones((28, 28), complex),
    "all True": np.ones((28, 28), bool),
    "all white": np.full((280, 280, 3), 255, np.uint8),
    "all black": np.zeros((280, 280, 3), np.uint8),
    "transparent canvas": np.zeros((280, 280, 4), np.uint8),
    "single dot": np.pad(np.full((12, 12, 4), 255, np.uint8), ((134, 134), (134, 134), (0, 0))),
    "int64 huge": np.full((28, 28), 2**40, np.int64) * np.eye(28, dtype=np.int64),
    "negative ints": np.full((28, 28), -5, np.int32),
    "float above 255": np.full((28, 28), 1000.0),
    "float16": (np.eye(28) * 255).astype(np.float16),
    "uint16": (np.eye(28) * 65535).astype(np.uint16),
    "int8 negative": np.full((28, 28), -1, np.int8),
    "python list": [[0, 255] * 14] * 28,
    "None": None,
    "a dict": {"pixels": 1},
    "random noise": np.random.default_rng(0).integers(0, 256, (280, 280), dtype=np.uint8),
    "one row 1x5000": np.ones((1, 5000)),
    "tall 5000x1": np.ones((5000, 1)),
    "giant photo 4000x4000": np.asarray(digit_image(4000).convert("RGB")),
}

UPLOADS = {
    "empty bytes": b"",
    "plain text": b"hello, this is not an image",
    "SVG renamed .png": b'<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>',
    "PDF renamed .png": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer<<>>\n%%EOF",
    "HTML": b"<html><body><img src=x onerror=alert(1)></body></html>",
    "zip archive": b"PK\x03\x04" + b"\x00" * 100,
    "truncated PNG": (lambda b: b[: len(b) // 2])(encoded(digit_image(), "PNG")),
    "truncated JPEG": (lambda b: b[: len(b) // 2])(encoded(digit_image(), "JPEG")),
    "corrupt JPEG": (lambda b: b[:200] + bytes(x ^ 0xFF for x in b[200:600]) + b[600:])(
        encoded(digit_image(), "JPEG")),
    "GIF": encoded(digit_image(), "GIF"),
    "animated GIF": animated("GIF"),
    "animated PNG": animated("PNG"),
    "TIFF": encoded(digit_image(), "TIFF"),
    "ICO": encoded(digit_image(64), "ICO"),
    "decompression bomb": bomb_png(),
    "over the size limit": b"\x89PNG\r\n\x1a\n" + b"\x00" * (MAX_UPLOAD_BYTES + 1),
    "CMYK JPEG": encoded(digit_image(mode="CMYK"), "JPEG"),
    "16-bit PNG": encoded(Image.fromarray(np.asarray(digit_image(), np.uint16) * 257), "PNG"),
    "palette PNG with transparency": encoded(digit_image().convert("P"), "PNG", transparency=255),
    "LA PNG": encoded(digit_image(mode="LA"), "PNG"),
    "EXIF-rotated photo": exif_rotated_jpeg(),
    "1x1 PNG": encoded(Image.new("L", (1, 1), 0), "PNG"),
    "WebP": encoded(digit_image(), "WEBP"),
    "BMP": encoded(digit_image(), "BMP"),
}


@pytest.mark.parametrize("name", ARRAYS)
def test_hostile_arrays(recognizer, name):
    result = outcome(lambda: recognizer.predict(ARRAYS[name]))
    assert not result.startswith("UNEXPECTED"), result


@pytest.mark.parametrize("name", UPLOADS)
def test_hostile_uploads(recognizer, name):
    result = outcome(lambda: recognizer.predict(decode_upload(UPLOADS[name])))
    assert not result.startswith("UNEXPECTED"), result


def test_expected_outcomes(recognizer):
    """The cases a user could mean something with are read; the rest are refused or empty."""
    read = {name for name in ("CMYK JPEG", "16-bit PNG", "palette PNG with transparency", "LA PNG",
                              "EXIF-rotated photo", "WebP", "BMP")
            if outcome(lambda name=name: recognizer.predict(decode_upload(UPLOADS[name]))) == "prediction"}
    assert len(read) == 7, read
    assert outcome(lambda: recognizer.predict(ARRAYS["giant photo 4000x4000"])) == "prediction"
    for name in ("one row 1x5000", "tall 5000x1"):  # no numpy error leaks out for thin strips
        assert outcome(lambda name=name: recognizer.predict(ARRAYS[name])) in ("prediction", "empty"), name
    for name in ("all white", "all black", "transparent canvas", "single dot", "1x1 black"):
        assert outcome(lambda name=name: recognizer.predict(ARRAYS[name])) == "empty", name
    for name in ("decompression bomb", "animated GIF", "SVG renamed .png", "over the size limit"):
        result = outcome(lambda name=name: recognizer.predict(decode_upload(UPLOADS[name])))
        assert result.startswith("error"), name


def test_exif_rotation_is_applied():
    image = decode_upload(exif_rotated_jpeg())
    assert image.size == (200, 200)
    assert np.asarray(image.convert("L"))[100, 100] < 128  # the "1" is upright in the middle


@pytest.mark.parametrize("name", ["plain text", "decompression bomb", "truncated PNG", "GIF"])
def test_cli_refuses_bad_files_with_one_line(tmp_path, tiny_model, name):
    path = tmp_path / "upload.png"
    path.write_bytes(UPLOADS[name])
    result = subprocess.run([sys.executable, "-m", "digitrec", "predict", "--model", str(tiny_model),
                             str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.stderr


def test_cli_missing_file(tiny_model, tmp_path):
    result = subprocess.run([sys.executable, "-m", "digitrec", "predict", "--model", str(tiny_model),
                             str(tmp_path / "nope.png")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error:") and "nope.png" in result.stderr


ANY_ARRAY = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64, np.bool_]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=40),
    elements=None,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ANY_ARRAY)
def test_random_arrays_never_crash(recognizer, array):
    result = outcome(lambda: recognizer.predict(array))
    assert not result.startswith("UNEXPECTED"), result


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_the_upload_path(recognizer, data):
    result = outcome(lambda: recognizer.predict(decode_upload(data)))
    assert not result.startswith("UNEXPECTED"), result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hnp.arrays(np.uint8, st.tuples(st.integers(5, 60), st.integers(5, 60), st.just(4))))
def test_random_rgba_canvases_give_a_valid_prediction(recognizer, canvas):
    result = outcome(lambda: recognizer.predict(canvas))
    assert result in ("prediction", "empty"), result


# ---- what one visitor must not be able to do to the server (issue 8) ---------------------

def rgba_bomb_png(width=9000, height=9000) -> bytes:
    """A valid RGBA PNG of width x height transparent pixels: a few hundred KB of bytes."""
    import struct

    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + 4 * width)
    rows = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def canvas_bomb() -> bytes:
    return rgba_bomb_png()


def test_canvas_bomb_is_refused_before_decoding(canvas_bomb, monkeypatch):
    import tracemalloc

    from digitrec.errors import CanvasError
    from digitrec.upload import decode_canvas

    assert len(canvas_bomb) < 1_000_000  # small on the wire, 324 MB of pixels
    opened = []
    monkeypatch.setattr(Image, "open", lambda *args, **kwargs: opened.append(1))
    tracemalloc.start()
    try:
        with pytest.raises(CanvasError, match="9000x9000"):
            decode_canvas(canvas_bomb, 700, 280)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert opened == []  # PIL never saw it
    assert peak < 5 * len(canvas_bomb)  # a copy of the bytes at most, no pixels


def test_canvas_pngs_a_browser_sends_decode(recognizer):
    from digitrec.upload import decode_canvas

    for width, scale in ((280, 1), (280, 3), (700, 2), (700, 4)):
        drawing = np.zeros((280 * scale, width * scale, 4), np.uint8)
        drawing[60 * scale: 220 * scale, width * scale // 2 - 9 * scale: width * scale // 2 + 9 * scale] = (
            17, 17, 17, 255)
        pixels = decode_canvas(encoded(Image.fromarray(drawing, "RGBA"), "PNG"), width, 280)
        np.testing.assert_array_equal(pixels, drawing)
        if width == 280:
            assert recognizer.predict(pixels).status != "empty"
    assert decode_canvas(None, 280, 280) is None  # nothing drawn yet


@pytest.mark.parametrize("name, data, words", [
    ("too wide for the digit canvas", lambda: encoded(Image.new("RGBA", (1200, 280)), "PNG"),
     "1200x280 pixels"),
    ("too tall", lambda: encoded(Image.new("RGBA", (280, 1200)), "PNG"), "at most 1120x1120"),
    ("not a PNG", lambda: encoded(Image.new("RGB", (280, 280)), "JPEG"), "not a PNG"),
    ("truncated", lambda: encoded(digit_image(280, "RGBA"), "PNG")[:300], "cannot be read"),
    ("over the byte limit", lambda: encoded(Image.new("RGBA", (280, 280)), "PNG") + b"\0" * 5_000_000,
     "MB"),
    ("animated", lambda: animated("PNG"), "cannot be read"),
])
def test_bad_canvas_pngs_are_refused_with_a_message(name, data, words):
    from digitrec.errors import CanvasError
    from digitrec.upload import decode_canvas

    with pytest.raises(CanvasError, match=words):
        decode_canvas(data(), 280, 280)


class BrowserCanvas:
    """A stand-in for st_canvas's result that decodes image_data as the real one does."""

    def __init__(self, png: bytes):
        self.image_bytes = png
        self.json_data = {"objects": []}

    @property
    def image_data(self):
        raise AssertionError("the page decoded the canvas PNG with Pillow's own limits")


def canvas_page(monkeypatch, png: bytes, mode="Digit"):
    import sys
    import types

    from streamlit.testing.v1 import AppTest

    repo = Path(__file__).resolve().parents[1]
    fake = types.ModuleType("streamlit_drawable_canvas")
    fake.st_canvas = lambda **kwargs: BrowserCanvas(png)
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", fake)
    app = AppTest.from_file(str(repo / "app_pages" / "draw.py"), default_timeout=HANG_LIMIT)
    app.session_state["mode"] = mode
    return app.run()


@pytest.mark.parametrize("mode", ["Digit", "Number"])
def test_draw_page_refuses_a_canvas_bomb(app_env, monkeypatch, canvas_bomb, mode):
    app = canvas_page(monkeypatch, canvas_bomb, mode)
    assert not app.exception, app.exception
    assert any("9000x9000" in error.value for error in app.error)
    assert not app.metric  # no prediction of it


def digit_canvas_png(pen_digits, label=7) -> bytes:
    from digitrec.data import draw_pen_digit

    digit = next(d for d in pen_digits if d.writer > 20 and d.label == label)
    return encoded(Image.fromarray(draw_pen_digit(digit), "RGBA"), "PNG")


def test_draw_page_reads_a_real_canvas_png(app_env, monkeypatch, pen_digits):
    app = canvas_page(monkeypatch, digit_canvas_png(pen_digits))
    assert not app.exception and not app.error
    assert app.metric[0].label == "Prediction"


class HostileCanvas(BrowserCanvas):
    """st_canvas's result for what a crafted websocket message can hold: any data URL (decoded as
    the real one decodes it) and any json_data."""

    def __init__(self, url, json_data):
        self.url, self.json_data = url, json_data

    @property
    def image_bytes(self):
        import base64

        _, encoded_png = self.url.split(";base64,", 1)  # as streamlit-drawable-canvas 0.13 does
        return base64.b64decode(encoded_png)


def hostile_page(monkeypatch, url, json_data, mode):
    import sys
    import types

    from streamlit.testing.v1 import AppTest

    repo = Path(__file__).resolve().parents[1]
    fake = types.ModuleType("streamlit_drawable_canvas")
    fake.st_canvas = lambda **kwargs: HostileCanvas(url, json_data)
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", fake)
    app = AppTest.from_file(str(repo / "app_pages" / "draw.py"), default_timeout=HANG_LIMIT)
    app.session_state["mode"] = mode
    return app.run()


def _path(points, **transform):
    commands = [["M", *points[0]]] + [["L", *point] for point in points[1:]]
    return {"type": "Path", "path": commands, **transform}


@pytest.mark.parametrize("mode", ["Digit", "Number"])
@pytest.mark.parametrize("name", ["no base64 marker", "not a string", "not base64",
                                  "stroke scaled far off the canvas", "a 400-digit integer",
                                  "strokes just inside the canvas limit"])
def test_crafted_canvas_messages_get_a_message_not_a_crash(app_env, models_copy, monkeypatch, pen_digits,
                                                          name, mode):
    # Bugs: these ended the page's fragment with an uncaught ValueError, AttributeError,
    # OverflowError or StrokesError instead of a message (or the pixels' reading); strokes far
    # off the canvas were read instead of the picture ("2, 75%" for the picture's 7).
    import base64

    monkeypatch.setenv("DIGITREC_MODELS_DIR", str(models_copy))  # a model that reads strokes

    png = digit_canvas_png(pen_digits)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    stroke = [(100.0, 60.0), (140.0, 60.0), (110.0, 220.0)]
    json_data = {"objects": [_path(stroke)]}
    if name == "no base64 marker":
        url = "data:image/png," + base64.b64encode(png).decode()
    elif name == "not a string":
        url = 12345
    elif name == "not base64":
        url = "data:image/png;base64,%%%%"
    elif name == "stroke scaled far off the canvas":
        json_data = {"objects": [_path(stroke, scaleX=100, scaleY=100, left=0, top=0,
                                       pathOffset={"x": 0, "y": 0})]}
    elif name == "a 400-digit integer":
        json_data = {"objects": [_path([(10**400, 60), (140, 60)])]}
    else:  # inside the strokes' limit in canvas pixels, beyond it in a dense screen's image pixels
        json_data = {"objects": [_path([(9_000.0, 60.0), (9_990.0, 220.0)])]}
    app = hostile_page(monkeypatch, url, json_data, mode)
    assert not app.exception, app.exception
    if name in ("no base64 marker", "not a string", "not base64"):
        assert any("is not a picture" in error.value or "is not a PNG" in error.value for error in app.error)
        assert not app.metric
    else:  # the picture is read, not the strokes, and the page says why
        assert any("Read from the picture only" in warning.value for warning in app.warning)
        assert app.metric[0].value == "7"  # the picture's digit (Digit: Prediction; Number: Number)


def test_saves_are_rate_limited_per_session(app_env, monkeypatch, pen_digits):
    """A session that saved SAVES_PER_MINUTE samples this minute is told to wait; nothing is saved."""
    import sys
    import types

    from streamlit.testing.v1 import AppTest

    from digitrec.limits import SAVES_PER_MINUTE, SaveQuota
    from digitrec.store import SampleStore

    quota = SaveQuota()
    for _ in range(SAVES_PER_MINUTE):  # this session's earlier saves of the last minute
        quota.record()
    fake = types.ModuleType("streamlit_drawable_canvas")
    fake.st_canvas = lambda **kwargs: BrowserCanvas(digit_canvas_png(pen_digits))
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", fake)
    repo = Path(__file__).resolve().parents[1]
    app = AppTest.from_file(str(repo / "app_pages" / "draw.py"), default_timeout=HANG_LIMIT)
    app.session_state["save_quota"] = quota
    app.run()
    next(b for b in app.button if b.label.startswith("Yes, it is a")).click().run()
    assert not app.exception
    assert any(f"At most {SAVES_PER_MINUTE} samples a minute" in e.value for e in app.error)
    assert SampleStore(app_env["samples"]).count() == 0


def test_save_quota_caps_a_session_and_its_rate():
    from digitrec.errors import LimitError
    from digitrec.limits import SaveQuota

    now = [0.0]
    quota = SaveQuota(per_session=5, per_minute=3, clock=lambda: now[0])
    for _ in range(3):
        quota.check()
        quota.record()
        now[0] += 1
    with pytest.raises(LimitError, match="At most 3 samples a minute.*wait 57 s"):
        quota.check()
    now[0] = 61.0  # the first save is a minute old
    quota.check()
    quota.record()
    quota.check()
    quota.record()
    now[0] = 200.0
    with pytest.raises(LimitError, match="saved 5 samples, the most one session may save"):
        quota.check()


def test_a_5_mb_photo_is_stored_as_a_small_png(tmp_path):
    from digitrec.limits import MAX_DRAWING_SIZE, MAX_STORED_DRAWING_BYTES
    from digitrec.store import SampleStore
    from digitrec.upload import stored_drawing

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (2000, 2600, 3), dtype=np.uint8)).convert("RGB")
    jpeg = encoded(photo, "JPEG", quality=95)
    assert len(jpeg) > 5_000_000
    image = decode_upload(jpeg)
    store = SampleStore(tmp_path / "samples.db")
    # What the Draw page saves for an upload (it saved the photo's full-size PNG before).
    stored = store.drawing(store.add(np.zeros((28, 28)), 1, drawing_png=stored_drawing(image)))
    assert len(stored) <= MAX_STORED_DRAWING_BYTES
    with Image.open(io.BytesIO(stored)) as picture:
        assert picture.width <= MAX_DRAWING_SIZE[0] and picture.height <= MAX_DRAWING_SIZE[1]


def test_png_with_17_mb_appended_is_not_stored(tmp_path):
    from digitrec.store import SampleStore

    store = SampleStore(tmp_path / "samples.db")
    padded = encoded(digit_image(280, "RGBA"), "PNG") + b"\0" * (17 * 2**20)
    with pytest.raises(ValueError, match="larger than 10 MB"):
        store.add(np.zeros((28, 28)), 1, drawing_png=padded)
    assert store.count() == 0


HOSTILE_NAME = "[win a prize](https://evil.example/x) ![t](https://evil.example/t.png) <b>hi</b>"


def test_visitor_name_keeps_no_markup():
    from digitrec.limits import MAX_NAME_CHARS, visitor_name

    assert visitor_name("Ada Lovelace") == "Ada Lovelace"
    assert visitor_name("  Zoë  O'Neil-Smith ") == "Zoë O'Neil-Smith"
    cleaned = visitor_name(HOSTILE_NAME)
    assert not set(cleaned) & set("[]()!<>/:*_`#|~\\")
    assert len(visitor_name("x" * 500)) == MAX_NAME_CHARS
    assert visitor_name("***") == ""


def test_trainer_name_is_shown_to_others_as_plain_text(app_env, monkeypatch):
    """Another visitor's training: their name must not become a link or a tracking image."""
    import types

    from streamlit.testing.v1 import AppTest

    from digitrec import jobs

    state = types.SimpleNamespace(state=types.SimpleNamespace(active=True), owner=HOSTILE_NAME,
                                  progress=None, curve=[], epochs=[], error=None, version=None,
                                  finishing=None, started=time.time(), counts=None)
    job = types.SimpleNamespace(running=True, owner=HOSTILE_NAME, token="someone-else",
                                snapshot=lambda: state, stop=lambda: None)
    monkeypatch.setattr(jobs.manager, "current", lambda: job)
    repo = Path(__file__).resolve().parents[1]
    app = AppTest.from_file(str(repo / "app_pages" / "retrain.py"), default_timeout=HANG_LIMIT).run()
    assert not app.exception, app.exception
    shown = [element.value for element in (*app.info, *app.markdown, *app.caption)]
    shown += [element.proto.text for element in app.get("progress")]
    assert any("win a prize" in text or "winaprize" in text.replace(" ", "") for text in shown), shown
    for text in shown:
        assert "](" not in text and "<b>" not in text and "evil.example/" not in text, text


@pytest.mark.parametrize("page", ["models.py", "samples.py"])
def test_server_paths_are_not_shown_to_visitors(app_env, page):
    from streamlit.testing.v1 import AppTest

    from digitrec.store import SampleStore

    SampleStore(app_env["samples"]).add(np.zeros((28, 28)), 3)
    repo = Path(__file__).resolve().parents[1]
    app = AppTest.from_file(str(repo / "app_pages" / page), default_timeout=HANG_LIMIT).run()
    assert not app.exception, app.exception
    folder = str(app_env["models"].parent)
    shown = [e.value for e in (*app.title, *app.caption, *app.markdown, *app.error, *app.info,
                               *app.warning, *app.success)]
    assert any("amples" in text or "odel" in text for text in shown)  # the page rendered
    everything = " ".join(str(text) for text in shown)
    assert folder not in everything


def test_error_details_are_not_shown_in_the_browser():
    """A crafted widget value that raises shows a generic message, not the traceback."""
    import tomllib

    repo = Path(__file__).resolve().parents[1]
    config = tomllib.loads((repo / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"


def test_a_browser_message_is_bounded_well_below_streamlits_default():
    # A crafted canvas message is decoded from base64 before its PNG's size can be checked:
    # Streamlit's default websocket limit (200 MB) let one message hold 150 MB of bytes.
    import tomllib

    from digitrec.limits import MAX_CANVAS_BYTES

    repo = Path(__file__).resolve().parents[1]
    config = tomllib.loads((repo / ".streamlit" / "config.toml").read_text())
    limit = config["server"]["maxMessageSize"] * 2**20
    assert MAX_CANVAS_BYTES * 4 / 3 < limit <= 16 * 2**20  # a drawing's base64 fits, little more
