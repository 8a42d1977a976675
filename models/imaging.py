"""Image decoding under our control.

BentoML's own PIL coercion turns a bad upload into a 500, so every image the
service sees arrives as raw bytes and passes through `decode_image`, which
either returns an 8-bit RGB array or raises `ImageError` with a stable code
the API layer maps to a 4xx.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


class ImageError(ValueError):
    """A client-side problem with an image; `code` is part of the public API."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 16


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
    return img.convert("RGB")


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Decode JPEG/PNG/WebP bytes into an H×W×3 uint8 array, EXIF-upright.

    The pixel limit is checked from the header before any pixel is decoded,
    which is what stops a few-KB decompression bomb from taking the memory.
    Animated images use their first frame.
    """
    if not data:
        raise ImageError("empty_image", "The image is empty.")
    if len(data) > limits.max_bytes:
        raise ImageError(
            "image_too_large",
            f"The image is {len(data)} bytes; the limit is {limits.max_bytes}.",
            status=413,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format
            if fmt not in ALLOWED_FORMATS:
                raise ImageError(
                    "unsupported_format",
                    f"Image format {fmt} is not supported; send JPEG, PNG or WebP.",
                    status=415,
                )
            width, height = img.size
            if width * height > limits.max_pixels:
                raise ImageError(
                    "image_too_many_pixels",
                    f"The image is {width}x{height} pixels; the limit is {limits.max_pixels} pixels.",
                    status=413,
                )
            if min(width, height) < limits.min_side:
                raise ImageError(
                    "image_too_small",
                    f"The image is {width}x{height}; each side must be at least {limits.min_side} pixels.",
                )
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb8(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("image_too_many_pixels", f"The image has too many pixels: {exc}", 413) from exc
    except UnidentifiedImageError as exc:
        raise ImageError("invalid_image", "The data is not a readable JPEG, PNG or WebP image.", 415) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError("corrupt_image", f"The image could not be decoded: {exc}.") from exc
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
