"""faceserve's Python client and command line: typed calls to a running service.

Installs without torch (`pip install .` needs only httpx, pydantic and tqdm).
"""

from faceserve.client import Faceserve, FaceserveError, ImageInput, encode_image

__all__ = ["Faceserve", "FaceserveError", "ImageInput", "encode_image"]
