"""Safe image decoding shared by the scraper, the data checks and the app."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

# Formats a photo of a dog can reasonably arrive in; anything else is refused before decoding.
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})
MAX_PIXELS = 40_000_000  # ~ a 7300x5500 photo; larger is almost surely a decompression bomb


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
    return None


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Fully decode image bytes into an upright RGB image, or raise ImageError saying why not.

    Alpha is composited on white, the first frame of an animation is used, EXIF orientation is
    applied, and images over `max_pixels` are refused before their pixels are decoded.
    """
    if not data:
        raise ImageError("empty", "the file is empty")
    if sniff_format(data) is None:
        raise ImageError("not_an_image", "the content is not an image (unknown file signature)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise ImageError("unsupported_format", f"unsupported image format {image.format}")
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    "too_many_pixels",
                    f"image is {width}x{height} pixels, over the limit of {max_pixels:,}",
                )
            image.load()
            upright = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError("too_many_pixels", f"refused as a decompression bomb: {err}") from err
    except UnidentifiedImageError as err:
        raise ImageError("not_an_image", "the content could not be read as an image") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError("corrupt", f"the image is corrupt or truncated: {err}") from err
    return to_rgb(upright)


def to_rgb(image: Image.Image) -> Image.Image:
    """Return an RGB copy of any PIL image, compositing transparency on white."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
