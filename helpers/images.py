"""Safe image decoding shared by the scraper, the data checks and the app."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

try:  # HEIC, the iPhone's default, needs libheif from pillow-heif; AVIF is Pillow's own
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:
    HEIF_SUPPORTED = False

# Formats a photo of a dog can reasonably arrive in; anything else is refused before decoding.
ALLOWED_FORMATS = frozenset(
    {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "AVIF", *(("HEIF",) * HEIF_SUPPORTED)}
)
MAX_PIXELS = 40_000_000  # ~ a 7300x5500 photo; larger is almost surely a decompression bomb
# ISO base media (HEIF family) brands: the file's ftyp box names them, major brand first.
_HEIF_BRANDS = {b"heic": "HEIF", b"heix": "HEIF", b"hevc": "HEIF", b"heim": "HEIF",
                b"heis": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}  # fmt: skip
# What ImageOps.exif_transpose does for each EXIF orientation value.
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


class ImageError(ValueError):
    """An input that is not a usable image; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def sniff_format(data: bytes) -> str | None:
    """Return the image format the bytes' signature says (e.g. 'JPEG'), or None if not an image."""
    signatures = {
        b"\xff\xd8\xff": "JPEG",
        b"\x89PNG\r\n\x1a\n": "PNG",
        b"GIF87a": "GIF",
        b"GIF89a": "GIF",
        b"BM": "BMP",
        b"II*\x00": "TIFF",
        b"MM\x00*": "TIFF",
    }
    for magic, fmt in signatures.items():
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        size = int.from_bytes(data[:4], "big")
        brands = [data[8:12]] + [data[i : i + 4] for i in range(16, min(size, 64), 4)]
        for brand in brands:
            if brand in _HEIF_BRANDS:
                return _HEIF_BRANDS[brand]
    return None


def _unsupported_message(fmt: str | None) -> str:
    if fmt == "HEIF":
        return (
            "HEIC/HEIF photos cannot be read here (pillow-heif is not installed); send it as "
            "JPEG (iPhone: Settings > Camera > Formats > Most Compatible)"
        )
    return f"unsupported image format {fmt}"


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block is no reason to refuse the photo
        return 1


def _reduce(image: Image.Image, min_size: int) -> Image.Image:
    """Shrink by an integer factor (box filter) while the short side stays >= `min_size`."""
    factor = min(image.size) // min_size
    return image.reduce(factor) if factor >= 2 else image


def decode_image(
    data: bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    min_size: int | None = None,
    max_aspect: float | None = None,
) -> Image.Image:
    """Decode image bytes into an upright RGB image, or raise ImageError saying why not.

    Alpha is composited on white, the first frame of an animation is used, EXIF orientation is
    applied, and images over `max_pixels` are refused before their pixels are decoded. With
    `min_size`, big images are shrunk while decoding (JPEG's DCT scaling, then an integer box
    reduction) to a short side of at least `min_size`; `info["original_size"]` keeps the size
    sent. With `max_aspect`, images longer than that many times their width (or vice versa) are
    refused.
    """
    if not data:
        raise ImageError("empty", "the file is empty")
    sniffed = sniff_format(data)
    if sniffed is None:
        raise ImageError("not_an_image", "the content is not an image (unknown file signature)")
    if sniffed not in ALLOWED_FORMATS:
        raise ImageError("unsupported_format", _unsupported_message(sniffed))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise ImageError("unsupported_format", _unsupported_message(image.format))
            width, height = size = image.size
            if width * height > max_pixels:
                raise ImageError(
                    "too_many_pixels",
                    f"image is {width}x{height} pixels, over the limit of {max_pixels:,}",
                )
            if max_aspect is not None and max(size) > max_aspect * min(size):
                raise ImageError(
                    "bad_aspect_ratio",
                    f"image is {width}x{height} pixels: more than {max_aspect:g} times longer "
                    "than wide; crop it around the dog",
                )
            orientation = _orientation(image)
            if min_size is not None and image.format == "JPEG":
                scale = min(size) / min_size
                image.draft(image.mode, (int(width / scale), int(height / scale)))
            image.load()
            rgb = to_rgb(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError("too_many_pixels", f"refused as a decompression bomb: {err}") from err
    except UnidentifiedImageError as err:
        raise ImageError("not_an_image", "the content could not be read as an image") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError("corrupt", f"the image is corrupt or truncated: {err}") from err
    if min_size is not None:
        rgb = _reduce(rgb, min_size)
    upright = _upright(rgb, orientation)
    upright.info["original_size"] = size if orientation < 5 else size[::-1]
    return upright


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    """Apply an EXIF orientation (1-8), read before conversion dropped the tag, to `image`."""
    method = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    return image.transpose(method) if method is not None else image


def to_rgb(image: Image.Image) -> Image.Image:
    """Return an RGB copy of any PIL image, compositing transparency on white.

    16-bit grayscale is scaled to 8 bits (Pillow's convert would clip it to white).
    """
    if image.mode in _SIXTEEN_BIT_MODES:
        pixels = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if image.mode != "I" or pixels.max() > 255 else 255.0
        gray = np.clip(pixels * (255.0 / scale) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
