"""Decoding every input format a user will send, and refusing what we must."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from api.errors import ApiError
from models.detector import FaceDetector
from models.imaging import ImageError, ImageLimits, decode_image
from scripts.faces_data import FACES_DIR

pytestmark = pytest.mark.skipif(not FACES_DIR.is_dir(), reason=f"shared photos not found at {FACES_DIR}")
OBAMA = FACES_DIR / "face_recognition/tests/test_images/obama.jpg"


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(OBAMA).convert("RGB")


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def exif_rotated(photo: Image.Image) -> bytes:
    """Pixels stored sideways with EXIF orientation 6, as phones write them."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif.tobytes())


def sixteen_bit_png(photo: Image.Image) -> bytes:
    grey = np.asarray(photo.convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey), "PNG")


VARIANTS = {
    "cmyk_jpeg": lambda p: encode(p.convert("CMYK"), "JPEG"),
    "png_16bit": sixteen_bit_png,
    "rgba_png": lambda p: encode(p.convert("RGBA"), "PNG"),
    "palette_png": lambda p: encode(p.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
    "greyscale_jpeg": lambda p: encode(p.convert("L"), "JPEG"),
    "webp": lambda p: encode(p, "WEBP"),
    "animated_webp": lambda p: encode(p, "WEBP", save_all=True, append_images=[p.rotate(180)], duration=100),
    "exif_rotated_jpeg": exif_rotated,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_accepted_variants_decode_upright_and_detect(variant, photo, detector):
    rgb = decode_image(VARIANTS[variant](photo)).pixels
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[:2] == (photo.height, photo.width)
    faces = detector.detect([rgb])[0]
    assert faces, "the portrait's face must be found"
    (lx, ly), (rx, ry) = faces[0].landmarks[:2]
    assert 350 < lx < rx < 650, "the largest face is the portrait's, where the original has it"
    assert lx < rx and abs(ly - ry) < 0.2 * (rx - lx), "eyes should be level: image upright"


def test_rgba_file_from_shared_set():
    rgb = decode_image((FACES_DIR / "face_recognition/tests/test_images/32bit.png").read_bytes()).pixels
    assert rgb.shape[2] == 3


def bomb_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG header claiming width×height with a tiny compressed body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * (width + 1) * 16, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


REJECTED = {
    "empty": (lambda p: b"", "empty_image", 400),
    "text": (lambda p: b"hello, this is not an image at all" * 10, "invalid_image", 415),
    "truncated_jpeg": (lambda p: encode(p, "JPEG")[:5000], "corrupt_image", 400),
    "corrupt_png": (lambda p: encode(p, "PNG")[:200] + b"\x00" * 500, "corrupt_image", 400),
    "gif": (lambda p: encode(p, "GIF"), "unsupported_format", 415),
    "bmp": (lambda p: encode(p, "BMP"), "unsupported_format", 415),
    "bomb_30000x30000": (lambda p: bomb_png(30000, 30000), "image_too_many_pixels", 413),
    "tiny": (lambda p: encode(p.resize((8, 8)), "PNG"), "image_too_small", 400),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_rejected_inputs_have_stable_codes(case, photo):
    make, code, status = REJECTED[case]
    with pytest.raises(ImageError) as info:
        decode_image(make(photo))
    assert (info.value.code, ApiError.from_image_error(info.value).status) == (code, status)


def test_byte_and_pixel_limits(photo):
    data = encode(photo, "JPEG")
    with pytest.raises(ImageError) as info:
        decode_image(data, ImageLimits(max_bytes=len(data) - 1))
    assert info.value.code == "image_too_large" and ApiError.from_image_error(info.value).status == 413
    with pytest.raises(ImageError) as info:
        decode_image(data, ImageLimits(max_pixels=photo.width * photo.height - 1))
    assert info.value.code == "image_too_many_pixels"


LARGE = {
    "jpeg": lambda p: encode(p.resize((p.width * 5, p.height * 5)), "JPEG"),
    "png": lambda p: encode(p.resize((p.width * 5, p.height * 5)), "PNG"),
    "webp": lambda p: encode(p.resize((p.width * 5, p.height * 5)), "WEBP"),
}


@pytest.mark.parametrize("fmt", sorted(LARGE))
def test_large_images_decode_reduced_keeping_the_long_side(fmt, photo):
    """5× the portrait (~4.6k px wide) decoded for a working side of 1000: reduced by an integer factor, the
    long side still at least 1000, the size as sent reported, and scale mapping one onto the other."""
    decoded = decode_image(LARGE[fmt](photo), ImageLimits(reduce_to=1000))
    width, height = photo.width * 5, photo.height * 5
    assert (decoded.width, decoded.height) == (width, height)
    factor = max(width, height) // 1000
    # JPEG's DCT scaling gives 1/2, 1/4 or 1/8 of a side, at most the factor; PNG and WebP reduce by the factor
    assert decoded.scale == factor if fmt != "jpeg" else 2 <= decoded.scale <= factor
    h, w = decoded.pixels.shape[:2]
    assert max(w, h) >= 1000
    assert (w, h) == (-(-width // decoded.scale), -(-height // decoded.scale))


def test_reduction_is_off_by_default_and_for_images_under_twice_the_side(photo):
    data = encode(photo, "JPEG")
    for limits in (ImageLimits(), ImageLimits(reduce_to=max(photo.size) // 2 + 1)):
        decoded = decode_image(data, limits)
        assert decoded.scale == 1 and decoded.pixels.shape[:2] == (photo.height, photo.width)


def test_reduced_exif_rotated_jpeg_reports_its_upright_size(photo):
    big = photo.resize((photo.width * 4, photo.height * 4))
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(
        encode(big.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif.tobytes()), ImageLimits(reduce_to=800)
    )
    assert (decoded.width, decoded.height) == big.size
    assert decoded.scale > 1
    assert decoded.pixels.shape[:2] == (-(-big.height // decoded.scale), -(-big.width // decoded.scale))
