"""A stand-in detector and embedder, so the request logic runs in milliseconds on photos drawn for the test.

A photo is a row of 80×80 squares (`photo`); each square that is not black
is one face, and its colour is who it is: the embedding of colour (r, g, b)
is the unit vector at angle r/255·90° between axes g and g+1, so two faces
of the same g have cosine similarity cos(Δr/255·90°) and faces of different
g (not neighbours) are strangers at similarity 0. A magenta square makes
the detector fail on that photo, as a model failing on one image does.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from PIL import Image

from models.faces import DetectedFace, Detection

SIDE = 80
FAILS = (255, 0, 255)
Colour = tuple[int, int, int]


def photo(*colours: Colour, fmt: str = "PNG", sharp: bool = True) -> str:
    """Base64 of a photo with one face per colour, left to right (black squares are empty background).

    A face is textured in blue, which no embedding reads, so it passes every quality gate; `sharp=False` leaves
    it flat, which models/quality measures as `blurry`. The pattern is 0 at each square's centre, where the
    detector reads who the face is.
    """
    pixels = np.zeros((SIDE, SIDE * max(1, len(colours)), 3), dtype=np.int32)
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    texture = 40 * ((x + y) % 2) if sharp else 0
    for i, colour in enumerate(colours):
        square = pixels[:, i * SIDE : (i + 1) * SIDE]
        square[...] = colour
        if any(colour):
            square[..., 2] = np.clip(colour[2] + texture, 0, 255)
    image = Image.fromarray(pixels.astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def _face(x0: int) -> DetectedFace:
    landmarks = ((x0 + 28.0, 30.0), (x0 + 52.0, 30.0), (x0 + 40.0, 42.0), (x0 + 30.0, 55.0), (x0 + 50.0, 55.0))
    return DetectedFace(box=(x0 + 8.0, 8.0, x0 + 72.0, 72.0), score=0.99, landmarks=landmarks)


async def detect(images: list[np.ndarray]) -> list[Detection]:
    found: list[Detection] = []
    for pixels in images:
        centres = [tuple(int(c) for c in pixels[SIDE // 2, x + SIDE // 2]) for x in range(0, pixels.shape[1], SIDE)]
        faces = [_face(i * SIDE) for i, colour in enumerate(centres) if any(colour)]
        found.append(None if FAILS in centres else faces)
    return found


def vector(colour: Colour, dim: int) -> np.ndarray:
    r, g, _ = colour
    angle = r / 255 * math.pi / 2
    v = np.zeros(dim, dtype=np.float32)
    v[g % dim], v[(g + 1) % dim] = math.cos(angle), math.sin(angle)
    return v


def embedder(dim: int):
    """The embed callable for `dim`-d vectors: each chip's centre colour names the person."""

    async def embed(chips: np.ndarray) -> np.ndarray:
        size = chips.shape[1]
        return np.stack([vector(tuple(int(c) for c in chip[size // 2, size // 2]), dim) for chip in chips])

    return embed
