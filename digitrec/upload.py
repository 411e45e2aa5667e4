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
from dataclasses import dataclass

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


# A drawing carried to a lower canvas (a phone's Number canvas is 200 px high, its Digit canvas
# as wide as the screen) is shrunk to its height with this much paper above and below, but never
# below MIN_CARRY_SCALE: smaller, a digit would be hard to see and to draw beside.
CARRY_MARGIN = 10  # CSS pixels
MIN_CARRY_SCALE = 0.5


@dataclass(frozen=True)
class Placement:
    """Where a drawing goes on another canvas: its point (x, y), in CSS pixels, lands on
    (scale * x + dx, scale * y + dy)."""

    scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)

    @property
    def moves(self) -> bool:
        return self.scale != 1.0 or self.offset != (0.0, 0.0)

    def strokes(self, strokes):
        """Pen strokes (canvas pixels, as digitrec.strokes reads them) placed alike."""
        if not self.moves or strokes is None:
            return strokes
        (dx, dy), scale = self.offset, self.scale
        return [[(scale * x + dx, scale * y + dy) for x, y in stroke] for stroke in strokes]

    def objects(self, json_data: dict) -> dict:
        """A canvas's Fabric objects placed alike, for the next canvas's initial drawing: each
        object's position (its origin point) and scale change; its path stays as drawn. Objects
        without a numeric position are left out."""
        if not self.moves:
            return json_data
        (dx, dy), scale = self.offset, self.scale
        placed = []
        for item in json_data.get("objects", []):
            try:
                left, top = float(item.get("left", 0)), float(item.get("top", 0))
                scale_x, scale_y = float(item.get("scaleX", 1)), float(item.get("scaleY", 1))
            except (AttributeError, TypeError, ValueError):
                continue
            centre = item.get("pathOffset")
            if not isinstance(centre, dict) and scale_x == scale_y == 1 and not item.get("angle"):
                # A freshly drawn path is centred where it is: said outright, it is read back
                # exactly (digitrec.strokes) once scaled; Fabric computes the same centre.
                centre = {"x": left, "y": top}
            placed.append({**item, "left": scale * left + dx, "top": scale * top + dy,
                           "scaleX": scale * scale_x, "scaleY": scale * scale_y,
                           **({"pathOffset": centre} if isinstance(centre, dict) else {})})
        return {**json_data, "objects": placed}


def placement(drawing: np.ndarray, size: tuple[int, int], new_size: tuple[int, int]) -> Placement | None:
    """How a canvas drawing's ink goes onto a canvas of another size (Digit <-> Number mode, CSS
    pixels, width x height): where it is when it fits; shrunk to the new canvas's height and
    centred in it when only its height does not (down to MIN_CARRY_SCALE); else None."""
    drawing = np.asarray(drawing)
    factor = drawing.shape[1] / size[0] if size[0] > 0 else 1.0
    ink = drawing[..., 3] > 0
    if not ink.any():
        return Placement()
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    top, bottom = rows[0] / factor, (rows[-1] + 1) / factor
    right = (columns[-1] + 1) / factor
    width, height = new_size
    if bottom <= height and right <= width:
        return Placement()
    scale = min(1.0, (height - 2 * CARRY_MARGIN) / (bottom - top))
    if scale < MIN_CARRY_SCALE or scale * right > width:
        return None
    return Placement(scale, (0.0, (height - scale * (bottom - top)) / 2 - scale * top))


def moved_drawing(drawing: np.ndarray, size: tuple[int, int], new_size: tuple[int, int],
                  place: Placement | None = None) -> np.ndarray | None:
    """A canvas drawing's RGBA pixels on a canvas of another size (Digit <-> Number mode), placed
    by `place` (default: `placement`): the paper cut or extended to `new_size` (CSS pixels, width
    x height; the pixels keep the drawing's devicePixelRatio). None when it cannot be placed.
    """
    drawing = np.asarray(drawing)
    place = placement(drawing, size, new_size) if place is None else place
    if place is None:
        return None
    factor = drawing.shape[1] / size[0] if size[0] > 0 else 1.0
    width, height = round(new_size[0] * factor), round(new_size[1] * factor)
    if not place.moves:
        moved = np.zeros((height, width, 4), np.uint8)
        kept = drawing[:height, :width]
        moved[: kept.shape[0], : kept.shape[1]] = kept
        return moved
    # Area-averaged (no ringing) with premultiplied alpha: the transparent paper does not bleed into the ink.
    image = Image.fromarray(np.ascontiguousarray(drawing, np.uint8), "RGBA").convert("RGBa")
    shrunk = image.resize((max(1, round(image.width * place.scale)),
                           max(1, round(image.height * place.scale))), Image.Resampling.BOX)
    moved = Image.new("RGBa", (width, height), (0, 0, 0, 0))
    moved.paste(shrunk, (round(place.offset[0] * factor), round(place.offset[1] * factor)))
    return np.asarray(moved.convert("RGBA"))


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
