"""Untrusted image bytes in and out: uploads, canvas drawings, and the drawing a sample stores.

Uploaded bytes -> a fully decoded, upright PIL image, or an UploadError a user understands.
Canvas PNG bytes -> RGBA pixels, or a CanvasError. Any image -> a small re-encoded PNG to store.
These come from anyone, so nothing is trusted: the size is checked before decoding, the
pixel count before pixels are allocated, and the whole image is decoded here (PIL decodes
lazily, so a truncated file would otherwise fail later, somewhere else).
"""

from __future__ import annotations

import binascii
import io
import json
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitrec.errors import CanvasError, UploadError
from digitrec.limits import MAX_CANVAS_BYTES, MAX_CANVAS_SCALE, MAX_DRAWING_SIZE, MAX_STORED_DRAWING_BYTES
from digitrec.preprocess import HIGH_DEPTH_MODES

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "BMP"}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 4000x4000 phone photo passes, a decompression bomb does not
# Phone cameras write JPEGs with extra embedded pictures (depth maps, previews) that PIL
# reads as "MPO": they are JPEGs, and their first picture is the photo.
JPEG_VARIANTS = {"MPO": "JPEG"}
# Modes preprocess reads as they are; everything else is converted below.
KEPT_MODES = {"1", "L", "RGB", "RGBA"} | HIGH_DEPTH_MODES
TRANSPARENT_MODES = {"LA", "La", "PA", "RGBa"}
# Errors PIL raises on damaged or hostile files; EOFError and struct.error come from
# plugins reading past the end of a short file.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _accepted_list() -> str:
    names = sorted(ALLOWED_FORMATS)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def decode_upload(data: bytes) -> Image.Image:
    """Decode uploaded bytes into an upright image preprocess reads; UploadError if unusable."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_upload expects bytes, got {type(data).__name__}")
    size = len(data)
    if size == 0:
        raise UploadError("The file is empty.")
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB, "
                          "the most that is accepted.")
    with warnings.catch_warnings():
        # PIL only warns about images between its own two size limits; here that is an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _open(bytes(data))
        _check_pixels(image.size)
        _load(image)
    return _to_readable_mode(_upright(image))


def canvas_png(result) -> bytes | None:
    """The PNG bytes of an st_canvas result (its `image_bytes`, decoded from the data URL the
    browser sent), None before anything is drawn; CanvasError when the message held no data URL
    of base64 bytes (a crafted websocket message)."""
    if result is None:
        return None
    try:
        return result.image_bytes
    except (ValueError, TypeError, AttributeError, binascii.Error):
        raise CanvasError("The drawing sent is not a picture. Clear the canvas and draw again.") from None


def decode_canvas(data: bytes | None, width: int, height: int) -> np.ndarray | None:
    """The canvas drawing's RGBA pixels from the PNG bytes the browser sent, or None if none.

    `width` x `height` is the canvas size in CSS pixels; the browser draws it at its
    devicePixelRatio, so up to MAX_CANVAS_SCALE times that is accepted. The byte count and
    the size in the PNG header are checked before any pixel is decoded: a small PNG that
    claims 9000x9000 pixels is refused without allocating them.
    """
    if data is None:
        return None
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_canvas expects bytes, got {type(data).__name__}")
    if len(data) > MAX_CANVAS_BYTES:
        raise CanvasError(f"The drawing sent is {len(data) / 2**20:.1f} MB; a drawing of this "
                          f"canvas is at most {MAX_CANVAS_BYTES // 2**20} MB. Clear it and draw again.")
    size = png_size(bytes(data[:24]))
    if size is None:
        raise CanvasError("The drawing sent is not a PNG image. Clear the canvas and draw again.")
    most = (width * MAX_CANVAS_SCALE, height * MAX_CANVAS_SCALE)
    if not (0 < size[0] <= most[0] and 0 < size[1] <= most[1]):
        raise CanvasError(f"The drawing sent is {size[0]}x{size[1]} pixels; this canvas is "
                          f"{width}x{height} and its drawings are at most {most[0]}x{most[1]}. "
                          "Clear it and draw again.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _open(bytes(data))
            _load(image)
    except UploadError as error:
        raise CanvasError(f"The drawing sent cannot be read: {error}") from None
    if image.mode != "RGBA":
        image = image.convert("RGBA")
    return np.asarray(image)


def moved_drawing(drawing: np.ndarray, size: tuple[int, int], new_size: tuple[int, int]) -> np.ndarray | None:
    """A canvas drawing's RGBA pixels on a canvas of another size (Digit <-> Number mode): the
    ink where it was, the paper cut or extended to `new_size` (CSS pixels, width x height; the
    pixels keep the drawing's devicePixelRatio). None when some ink would fall off the new canvas.
    """
    drawing = np.asarray(drawing)
    factor = drawing.shape[1] / size[0] if size[0] > 0 else 1.0
    width, height = round(new_size[0] * factor), round(new_size[1] * factor)
    ink = drawing[..., 3] > 0
    if ink[height:].any() or ink[:, width:].any():
        return None
    moved = np.zeros((height, width, 4), np.uint8)
    kept = drawing[:height, :width]
    moved[: kept.shape[0], : kept.shape[1]] = kept
    return moved


def carriable(json_data) -> bool:
    """Whether a canvas's `json_data` may go back to the browser as the next canvas's initial
    drawing: the browser sent it, so at most MAX_CANVAS_BYTES of JSON (a drawing's is a few KB)."""
    try:
        return len(json.dumps(json_data)) <= MAX_CANVAS_BYTES
    except (TypeError, ValueError, RecursionError):  # not JSON, or nested past any drawing's depth
        return False


def png_size(header: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's first 24 bytes (signature and IHDR), or None if not a PNG."""
    if len(header) < 24 or not header.startswith(PNG_SIGNATURE) or header[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", header[16:24])


def stored_drawing(image) -> bytes:
    """The drawing a sample keeps: PNG, at most MAX_DRAWING_SIZE and MAX_STORED_DRAWING_BYTES.

    `image` is a PIL image, an array, or image bytes (decoded with the upload checks). The
    pixels are always re-encoded, so nothing a visitor appended to a file is ever stored.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        image = decode_upload(image)
    elif not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    if image.mode in HIGH_DEPTH_MODES:
        image = eight_bit(image)
    elif image.mode not in ("1", "L", "LA", "RGB", "RGBA"):
        image = _to_readable_mode(image)
        if image.mode not in ("1", "L", "LA", "RGB", "RGBA"):
            image = image.convert("RGBA")
    box = MAX_DRAWING_SIZE
    while True:
        if image.width > box[0] or image.height > box[1]:
            image = image.copy()
            image.thumbnail(box, Image.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= MAX_STORED_DRAWING_BYTES or max(image.size) <= 1:
            return buffer.getvalue()
        box = (max(1, image.width // 2), max(1, image.height // 2))


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UploadError(f"This file is not an image. Please upload a {_accepted_list()} "
                          "image.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(f"The image has far more than {MAX_PIXELS // 1_000_000} megapixels, "
                          "the most that is accepted.") from None
    except DECODE_ERRORS:
        raise UploadError("The image file is damaged and cannot be read.") from None
    image_format = JPEG_VARIANTS.get(image.format, image.format)
    if image_format not in ALLOWED_FORMATS:
        raise UploadError(f"{image.format or 'This'} images are not accepted. Please upload a "
                          f"{_accepted_list()} image.")
    return image


def _load(image: Image.Image) -> None:
    """Decode all pixels of a single-frame image, or raise UploadError."""
    _check_single_frame(image)
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(_too_many_pixels(image.size)) from None
    except DECODE_ERRORS:
        raise UploadError("The image file is damaged or incomplete and cannot be read; "
                          "please upload it again or use another file.") from None


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise UploadError("The image has no pixels.")
    if width * height > MAX_PIXELS:
        raise UploadError(_too_many_pixels(size))


def _too_many_pixels(size: tuple[int, int]) -> str:
    width, height = size
    return (f"The image is {width}x{height} pixels; images up to "
            f"{MAX_PIXELS // 1_000_000} megapixels are accepted.")


def _check_single_frame(image: Image.Image) -> None:
    if image.format in JPEG_VARIANTS:
        return  # the extra pictures of a phone JPEG are no animation: frame 0 is the photo
    try:
        frames = getattr(image, "n_frames", 1)
    except DECODE_ERRORS:  # counting frames reads through the file, which may be damaged
        raise UploadError("The image file is damaged and cannot be read.") from None
    if frames > 1:
        raise UploadError("Animated images are not supported; please upload a still image.")


def _upright(image: Image.Image) -> Image.Image:
    """Turn a photo whose EXIF says it was taken rotated the way it was seen."""
    try:
        return ImageOps.exif_transpose(image)
    except DECODE_ERRORS:
        return image  # unreadable EXIF: the pixels are fine, only their orientation is unknown


def eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit or float image (HIGH_DEPTH_MODES) scaled to 8 bits, instead of clipped to white."""
    pixels = np.asarray(image, np.float64)
    return Image.fromarray((pixels / max(pixels.max(), 1.0) * 255).astype(np.uint8))


def _to_readable_mode(image: Image.Image) -> Image.Image:
    """Bring the image into a mode preprocess reads without losing ink or transparency."""
    mode = image.mode
    if mode in KEPT_MODES:
        return image
    if mode in TRANSPARENT_MODES or (mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, P without transparency, ...
