"""dlib itself (test extra `dlib-bin`), as the reference our port and alignment are measured against.

Never on the serving path: it is slow and single-threaded, which is why the
service runs its own PyTorch port.
"""

from __future__ import annotations

import numpy as np

from models.dlib_format import packaged_weights


class DlibReference:
    """HOG detector, 5-point landmarks, dlib's chip and dlib's descriptor."""

    def __init__(self) -> None:
        import dlib

        recognizer = packaged_weights()
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape_predictor = dlib.shape_predictor(str(recognizer.with_name("shape_predictor_5_face_landmarks.dat")))
        self.recognizer = dlib.face_recognition_model_v1(str(recognizer))

    def shape(self, image: np.ndarray):
        """5-point landmarks of the largest HOG-detected face, or None."""
        rects = self.detector(image, 1)
        if not rects:
            return None
        return self.shape_predictor(image, max(rects, key=lambda r: r.area()))

    def chip(self, image: np.ndarray) -> np.ndarray | None:
        """dlib's 150×150 chip of the largest HOG-detected face, or None."""
        shape = self.shape(image)
        if shape is None:
            return None
        return np.asarray(self._dlib.get_face_chip(image, shape, size=150, padding=0.25))

    def descriptor(self, chip: np.ndarray) -> np.ndarray:
        return np.asarray(self.recognizer.compute_face_descriptor(chip), dtype=np.float64)
