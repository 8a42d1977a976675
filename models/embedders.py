"""Face embedders: aligned uint8 chips in, L2-normalised float32 vectors out.

Every model is compared the same way, by cosine similarity of normalised
vectors (equivalently Euclidean distance, see `models.registry.distance`), so
the gallery and the API need no per-model distance code; only the threshold
differs. What each model is and how it loads is in models/registry.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models import store
from models.isolation import batch_or_one_by_one
from models.registry import EMBEDDERS, ModelEntry, Preprocess, Runtime


class Embedder:
    """A network plus the input scaling it was trained with, run in inference mode by torch or OpenVINO."""

    def __init__(
        self, entry: ModelEntry, net: nn.Module, preprocess: Preprocess, device: str = "cpu", runtime: Runtime = "torch"
    ) -> None:
        self.entry = entry
        self.device = torch.device(device)
        self._preprocess = preprocess
        self._net = net.eval().to(self.device, memory_format=torch.channels_last)
        if runtime == "openvino":
            # imported here so that the torch runtime never loads openvino
            from models.openvino_runtime import compile_net

            # only the network changes hands: mirroring, preprocessing and normalisation stay in `_embed`
            size = entry.geometry.size
            example = self._input(torch.zeros(2, size, size, 3, dtype=torch.uint8, device=self.device))
            self._net = compile_net(self._net, example)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """N×S×S×3 uint8 chips → N×dim float32 unit vectors.

        The chips may come from several requests batched together, so a batch
        that fails is retried chip by chip and a chip that still fails gets a
        row of NaN: its own request fails (models/pipeline checks), not the others.
        """
        size = self.entry.geometry.size
        if chips.ndim != 4 or chips.shape[1:] != (size, size, 3):
            raise ValueError(f"{self.entry.model_id} expects N×{size}×{size}×3 chips, got {chips.shape}")
        if len(chips) == 0:
            return np.zeros((0, self.entry.dim), dtype=np.float32)
        rows = batch_or_one_by_one(lambda batch: list(self._embed(np.stack(batch))), list(chips), "embedding")
        failed = np.full(self.entry.dim, np.nan, dtype=np.float32)
        return np.stack([failed if row is None else row for row in rows])

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.array(chips, copy=True)).to(self.device)
            if self.entry.mirror:
                x = torch.cat([x, x.flip(2)])
            out = self._net(self._input(x)).float()
            if self.entry.mirror:
                out = out[: len(chips)] + out[len(chips) :]
            out = nn.functional.normalize(out, dim=1)
        return out.cpu().numpy()

    def _input(self, chips: torch.Tensor) -> torch.Tensor:
        return self._preprocess(chips).contiguous(memory_format=torch.channels_last)


def load_embedder(choice: str, device: str = "cpu", runtime: Runtime = "torch") -> Embedder:
    """The chosen model ('auto' or a model id) from the model store, run by `runtime` (torch or openvino);
    ModelNotImported says how to import it."""
    entry = EMBEDDERS[store.resolve_model_id(choice)]
    net, preprocess = entry.load(store.stored_file(entry.weights))
    return Embedder(entry, net, preprocess, device, runtime)
