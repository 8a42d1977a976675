"""Image decoding under our control.

BentoML's own PIL coercion turns a bad upload into a 500, so every image the
service sees arrives as raw bytes and passes through `decode_image`, which
either returns 8-bit RGB pixels or raises `ImageError` with a stable code
the API layer maps to a 4xx status (api/errors).

A photo far larger than detection and alignment can use is decoded smaller
(JPEG by DCT scaling, others by an integer box reduction): holding a
36-megapixel array per request only to downscale it later multiplied the
service's memory by the number of requests in flight.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


class ImageError(ValueError):
    """A client-side problem with an image; `code` is part of the public API."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 16
    reduce_to: int | None = None
    """Decode smaller by an integer factor while the long side stays at least this; None decodes full size."""


@dataclass(frozen=True)
class DecodedImage:
    """Upright RGB pixels, possibly reduced, and the size of the image as sent.

    Coordinates found on `pixels` times `scale` are coordinates in the image
    as sent (a reduction by k maps pixel i onto original pixels [k·i, k·i + k)).
    """

    pixels: np.ndarray
    width: int
    height: int
    scale: int = 1


def reduction(width: int, height: int, reduce_to: int | None) -> int:
    """The largest integer factor that keeps the long side at least `reduce_to`."""
    if reduce_to is None:
        return 1
    return max(1, max(width, height) // reduce_to)


def _swaps_axes(img: Image.Image) -> bool:
    """Whether EXIF orientation turns the stored image a quarter turn (width and height trade places)."""
    return img.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)


def _to_rgb8(img: Image.Image) -> Image.Image:
    """Collapse every PIL mode we accept to 8-bit RGB.

    16-bit greyscale ("I;16", "I") must be rescaled rather than clipped, or a
    16-bit PNG comes out almost white; alpha is composited on white so that a
    transparent background does not turn into a black blob MTCNN sees as hair.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray((arr * (255.0 / top)).clip(0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray((arr.clip(0, 1) * 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img if img.mode == "RGB" else img.convert("RGB")


def decode_cost(data: bytes, limits: ImageLimits = ImageLimits()) -> int:
    """Pixels `decode_image` will hold at full size, read from the header; 0 for what it refuses undecoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            width, height = Image.open(io.BytesIO(data)).size
    except Exception:  # anything unreadable is refused by decode_image before it decodes a pixel
        return 0
    pixels = width * height
    return pixels if pixels <= limits.max_pixels else 0


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()) -> DecodedImage:
    """Decode JPEG/PNG/WebP bytes into H×W×3 uint8 pixels, EXIF-upright, reduced as `limits.reduce_to` allows.

    The pixel limit is checked from the header before any pixel is decoded,
    which is what stops a few-KB decompression bomb from taking the memory.
    Animated images use their first frame.
    """
    if not data:
        raise ImageError("empty_image", "The image is empty.")
    if len(data) > limits.max_bytes:
        raise ImageError("image_too_large", f"The image is {len(data)} bytes; the limit is {limits.max_bytes}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format
            if fmt not in ALLOWED_FORMATS:
                raise ImageError(
                    "unsupported_format",
                    f"Image format {fmt} is not supported; send JPEG, PNG or WebP.",
                )
            width, height = img.size
            if width * height > limits.max_pixels:
                raise ImageError(
                    "image_too_many_pixels",
                    f"The image is {width}x{height} pixels; the limit is {limits.max_pixels} pixels.",
                )
            if min(width, height) < limits.min_side:
                raise ImageError(
                    "image_too_small",
                    f"The image is {width}x{height}; each side must be at least {limits.min_side} pixels.",
                )
            factor = reduction(width, height, limits.reduce_to)
            # JPEG decodes at 1/2, 1/4 or 1/8 by DCT scaling, never below the size asked for, so its scale is at
            # most `factor`; the rest of the factor is a box reduction. draft is a no-op (None) for PNG and WebP.
            drafted = (
                img.draft(img.mode, (math.ceil(width / factor), math.ceil(height / factor))) if factor > 1 else None
            )
            scale = round(width / drafted[1][2]) if drafted else 1
            img.load()
            upright = (height, width) if _swaps_axes(img) else (width, height)
            ImageOps.exif_transpose(img, in_place=True)
            rgb = _to_rgb8(img)
            if factor // scale > 1:
                rgb = rgb.reduce(factor // scale)
                scale *= factor // scale
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("image_too_many_pixels", f"The image has too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("invalid_image", "The data is not a readable JPEG, PNG or WebP image.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError("corrupt_image", f"The image could not be decoded: {exc}.") from exc
    pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    return DecodedImage(pixels, upright[0], upright[1], scale)
