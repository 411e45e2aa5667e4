"""Uploaded bytes -> a fully decoded, upright PIL image, or an UploadError a user understands.

Uploads come from anyone, so nothing is trusted: the size is checked before decoding, the
pixel count before pixels are allocated, and the whole image is decoded here (PIL decodes
lazily, so a truncated file would otherwise fail later, somewhere else).
"""

from __future__ import annotations

import io
import struct
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from digitrec.errors import DigitrecError

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "BMP"}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 4000x4000 phone photo passes, a decompression bomb does not
# Phone cameras write JPEGs with extra embedded pictures (depth maps, previews) that PIL
# reads as "MPO": they are JPEGs, and their first picture is the photo.
JPEG_VARIANTS = {"MPO": "JPEG"}
# Modes preprocess reads as they are; everything else is converted below.
KEPT_MODES = {"1", "L", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
TRANSPARENT_MODES = {"LA", "La", "PA", "RGBa"}
# Errors PIL raises on damaged or hostile files; EOFError and struct.error come from
# plugins reading past the end of a short file.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


class UploadError(DigitrecError):
    """An uploaded file cannot be used as an image."""


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
        _check_single_frame(image)
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError(_too_many_pixels(image.size)) from None
        except DECODE_ERRORS:
            raise UploadError("The image file is damaged or incomplete and cannot be read; "
                              "please upload it again or use another file.") from None
    return _to_readable_mode(_upright(image))


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


def _to_readable_mode(image: Image.Image) -> Image.Image:
    """Bring the image into a mode preprocess reads without losing ink or transparency."""
    mode = image.mode
    if mode in KEPT_MODES:
        return image
    if mode in TRANSPARENT_MODES or (mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, P without transparency, ...
