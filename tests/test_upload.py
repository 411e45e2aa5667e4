"""Decoding uploads: every file is built here, good ones decode, bad ones raise UploadError."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec.errors import DigitrecError
from digitrec.preprocess import preprocess
from digitrec.upload import MAX_PIXELS, MAX_UPLOAD_BYTES, UploadError, decode_upload

SIZE = (120, 160)  # width, height


def digit_like(mode="RGB", background="white", ink="black", size=SIZE) -> Image.Image:
    """A 7-like stroke on plain paper."""
    image = Image.new(mode, size, background)
    width, height = size
    ImageDraw.Draw(image).line(
        [(width * 0.2, height * 0.2), (width * 0.8, height * 0.2), (width * 0.4, height * 0.85)],
        fill=ink, width=max(3, width // 10))
    return image


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def assert_reads_as_a_digit(image: Image.Image):
    assert not preprocess(image).empty


# --- files that decode -----------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP", "BMP"])
def test_allowed_formats_decode_fully(image_format):
    image = decode_upload(encode(digit_like(), image_format))
    assert image.size == SIZE and image.mode == "RGB"
    assert_reads_as_a_digit(image)


def test_a_4000_by_4000_photo_passes():
    photo = digit_like(size=(4000, 4000))
    data = encode(photo, "JPEG", quality=70)
    assert len(data) < MAX_UPLOAD_BYTES
    assert decode_upload(data).size == (4000, 4000)


def test_16_bit_greyscale_png():
    grey = np.asarray(digit_like("L"), np.uint16) * 257  # 0..65535
    data = encode(Image.fromarray(grey), "PNG")
    image = decode_upload(data)
    assert image.mode.startswith("I")
    assert_reads_as_a_digit(image)


def test_cmyk_jpeg_comes_back_as_rgb():
    data = encode(digit_like("CMYK", background=(0, 0, 0, 0), ink=(0, 0, 0, 255)), "JPEG")
    image = decode_upload(data)
    assert image.mode == "RGB"
    assert_reads_as_a_digit(image)


def test_palette_png_with_transparency_comes_back_as_rgba():
    palette_image = Image.new("P", SIZE, 0)
    palette_image.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    ImageDraw.Draw(palette_image).line([(20, 30), (100, 30), (50, 140)], fill=1, width=12)
    image = decode_upload(encode(palette_image, "PNG", transparency=0))
    assert image.mode == "RGBA"
    assert np.asarray(image)[0, 0, 3] == 0  # the background stays transparent
    assert_reads_as_a_digit(image)


def test_la_png_comes_back_as_rgba():
    alpha = digit_like("L", background=0, ink=255)  # ink in alpha, as a canvas export has
    la = Image.merge("LA", [Image.new("L", SIZE, 0), alpha])
    image = decode_upload(encode(la, "PNG"))
    assert image.mode == "RGBA"
    assert_reads_as_a_digit(image)


def test_exif_rotated_photo_comes_back_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned 90 degrees
    data = encode(Image.new("RGB", (20, 10), "white"), "JPEG", exif=exif.tobytes())
    assert decode_upload(data).size == (10, 20)


def test_a_phone_jpeg_with_extra_pictures_is_a_jpeg():
    # Phones write MPO files (a JPEG plus depth maps or previews); they are not animations.
    data = encode(digit_like(), "MPO", save_all=True, append_images=[Image.new("RGB", SIZE)])
    image = decode_upload(data)
    assert image.size == SIZE
    assert_reads_as_a_digit(image)


def test_bytearray_is_accepted_and_pil_limits_are_untouched():
    before = Image.MAX_IMAGE_PIXELS
    decode_upload(bytearray(encode(digit_like(), "PNG")))
    assert Image.MAX_IMAGE_PIXELS == before


# --- files that do not -----------------------------------------------------------------------


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">' \
      b'<path d="M1 1 L9 9"/></svg>'
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"hello", "not an image"),
    (SVG, "not an image"),
    (PDF, "not an image"),
])
def test_things_that_are_not_images(data, words):
    with pytest.raises(UploadError, match=words):
        decode_upload(data)


def test_gif_is_refused_naming_the_accepted_formats():
    with pytest.raises(UploadError) as caught:
        decode_upload(encode(digit_like(), "GIF"))
    message = str(caught.value)
    assert "GIF" in message
    assert all(name in message for name in ("PNG", "JPEG", "WEBP", "BMP"))


def test_tiff_is_refused():
    with pytest.raises(UploadError, match="TIFF images are not accepted"):
        decode_upload(encode(digit_like(), "TIFF"))


def noisy_image() -> Image.Image:
    """An image that compresses badly, so its pixel data fills most of the file."""
    pixels = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_truncated_png():
    data = encode(noisy_image(), "PNG")
    with pytest.raises(UploadError, match="damaged"):
        decode_upload(data[: len(data) // 2])


def test_truncated_jpeg():
    data = encode(noisy_image(), "JPEG")
    with pytest.raises(UploadError, match="damaged"):
        decode_upload(data[: len(data) // 2])


def test_corrupt_jpeg():
    data = bytearray(encode(noisy_image(), "JPEG"))
    third = len(data) // 3
    for index in range(third, 2 * third):  # flip every bit of the middle third
        data[index] ^= 0xFF
    with pytest.raises(UploadError, match="damaged"):
        decode_upload(bytes(data))


def test_corrupt_png_checksum():
    data = bytearray(encode(noisy_image(), "PNG"))
    data[len(data) // 2] ^= 0xFF  # PNG chunks carry CRCs, so one flipped byte is caught
    with pytest.raises(UploadError, match="damaged"):
        decode_upload(bytes(data))


@pytest.mark.parametrize("image_format", ["WEBP", "PNG"])
def test_animated_images_are_refused(image_format):
    frames = [digit_like(), digit_like(background="grey")]
    data = encode(frames[0], image_format, save_all=True, append_images=frames[1:])
    with pytest.raises(UploadError, match="[Aa]nimated images are not supported"):
        decode_upload(data)


@pytest.mark.parametrize("side", [
    20000,  # 400 megapixels: PIL itself refuses it
    10000,  # 100 megapixels: PIL only warns
    int(MAX_PIXELS ** 0.5) + 100,  # just over our limit, well within PIL's
])
def test_decompression_bombs_are_refused_before_decoding(side):
    bomb = encode(Image.new("1", (side, side)), "PNG")  # a small file claiming many pixels
    assert len(bomb) < MAX_UPLOAD_BYTES
    with pytest.raises(UploadError, match="40 megapixels"):
        decode_upload(bomb)


def test_file_over_the_size_limit():
    data = encode(digit_like(), "PNG")
    with pytest.raises(UploadError, match="larger than 10 MB"):
        decode_upload(data + b"\0" * (MAX_UPLOAD_BYTES + 1 - len(data)))


def test_upload_errors_are_digitrec_errors_and_not_bytes_is_a_type_error():
    assert issubclass(UploadError, DigitrecError)
    with pytest.raises(TypeError):
        decode_upload("picture.png")


def test_importing_segment_and_upload_pulls_in_neither_tensorflow_nor_streamlit():
    code = ("import sys, digitrec.segment, digitrec.upload; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'streamlit') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "[]"


# --- a drawing moved to a canvas of another size (Digit <-> Number mode) ---------------------


def _drawing(height, width, ink_box):
    drawing = np.zeros((height, width, 4), np.uint8)
    top, bottom, left, right = ink_box
    drawing[top:bottom, left:right] = (17, 17, 17, 255)
    return drawing


def test_a_digit_moves_onto_the_wider_number_canvas_where_it_was():
    from digitrec.upload import moved_drawing

    digit = _drawing(280, 280, (40, 240, 90, 190))
    moved = moved_drawing(digit, (280, 280), (700, 280))
    assert moved.shape == (280, 700, 4) and moved.dtype == np.uint8
    assert np.array_equal(moved[:, :280], digit) and not moved[:, 280:].any()


def test_a_high_density_drawing_keeps_its_pixel_ratio():
    from digitrec.upload import moved_drawing

    digit = _drawing(560, 560, (80, 480, 180, 380))  # a 280x280 canvas on a 2x screen
    moved = moved_drawing(digit, (280, 280), (700, 280))
    assert moved.shape == (560, 1400, 4) and np.array_equal(moved[:, :560], digit)


def test_a_number_moves_back_only_when_all_its_ink_fits():
    from digitrec.upload import moved_drawing

    one_digit = _drawing(280, 700, (40, 240, 60, 200))
    assert np.array_equal(moved_drawing(one_digit, (700, 280), (280, 280)), one_digit[:, :280])
    two_digits = _drawing(280, 700, (40, 240, 60, 420))
    assert moved_drawing(two_digits, (700, 280), (280, 280)) is None
    assert moved_drawing(two_digits, (700, 280), (358, 200)) is None  # nor onto a phone's, any smaller


def test_a_digit_shrinks_onto_a_phones_lower_number_canvas():
    # A phone's Digit canvas is as wide as the screen, its Number canvas 200 px high: a digit
    # drawn as big as the box asks used to be dropped there (the canvas came up empty).
    from digitrec.upload import CARRY_MARGIN, moved_drawing, placement

    digit = _drawing(840, 840, (60, 780, 270, 570))  # 358 px canvas at 3x (cut to 280 rows here)
    place = placement(digit, (280, 280), (358, 200))
    assert place.scale == pytest.approx((200 - 2 * CARRY_MARGIN) / 240)
    moved = moved_drawing(digit, (280, 280), (358, 200), place)
    assert moved.shape == (600, 1074, 4)
    rows = np.flatnonzero(moved[..., 3].any(axis=1))
    assert abs(rows[0] - 3 * CARRY_MARGIN) <= 2 and abs(599 - rows[-1] - 3 * CARRY_MARGIN) <= 2  # centred
    solid = moved[..., :3][moved[..., 3] == 255].astype(int)  # ink stays the ink's colour
    assert len(solid) and np.abs(solid - 17).max() <= 1
    assert placement(_drawing(280, 280, (10, 270, 90, 190)), (280, 280), (358, 120)) is None  # past half size


def test_a_shrunk_drawings_strokes_are_read_where_the_next_canvas_draws_them():
    from digitrec.data import render_strokes
    from digitrec.strokes import strokes_from_canvas
    from digitrec.upload import moved_drawing, placement

    canvas = {"version": "7.4.0", "objects": [  # two strokes as the canvas sends them (origin: centre)
        {"type": "Path", "originX": "center", "originY": "center", "left": 140, "top": 140, "scaleX": 1,
         "scaleY": 1, "angle": 0, "path": [["M", 140, 20], ["Q", 140, 30, 140, 140], ["L", 140, 260]]},
        {"type": "Path", "originX": "center", "originY": "center", "left": 120, "top": 40, "scaleX": 1,
         "scaleY": 1, "angle": 0, "path": [["M", 100, 60], ["Q", 110, 50, 120, 30], ["L", 140, 20]]}]}
    strokes = strokes_from_canvas(canvas)
    drawing = render_strokes(strokes, size=280, brush=16)
    place = placement(drawing, (280, 280), (358, 200))
    assert place is not None and place.scale < 1
    again = strokes_from_canvas(place.objects(canvas))  # what the Number canvas shows, read back
    for read, expected in zip(again, place.strokes(strokes), strict=True):
        assert np.allclose(read, expected)
    shown = moved_drawing(drawing, (280, 280), (358, 200), place)
    top = np.flatnonzero(shown[..., 3].any(axis=1))[0]
    assert abs(top - (place.scale * (20 - 8) + place.offset[1])) <= 2  # the pixels moved alike


def test_only_a_drawing_of_bounded_size_is_sent_back_to_the_browser():
    from digitrec.limits import MAX_CANVAS_BYTES
    from digitrec.upload import carriable

    drawing = {"version": "6.0", "objects": [{"type": "Path", "path": [["M", 1, 2], ["L", 3, 4]]}]}
    assert carriable(drawing)
    assert not carriable({"objects": [{"type": "Path", "junk": "x" * MAX_CANVAS_BYTES}]})
    assert not carriable({"objects": [object()]})  # not JSON at all
    nested = []
    for _ in range(100_000):
        nested = [nested]
    assert not carriable({"objects": nested})
