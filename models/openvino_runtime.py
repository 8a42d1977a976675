"""The torch nets recompiled for OpenVINO's CPU plugin (FACESERVE_RUNTIME=openvino).

Each net alone runs faster on OpenVINO's CPU kernels than on torch's. On the
2-core machine measured the embedder kept that gain, but the detector's nets,
which take turns with torch's own work on the same cores, did not
(BENCHMARKS.md, "OpenVINO runtime"): torch is the default, and this is the
option to measure on other hosts.

The conversion starts from the torch module already built from the model
store's weights, so there is nothing else to import, download or cache:
`openvino.convert_model` traces it in memory (no ONNX step, no file), and
the CPU plugin compiles it for this machine at load.

Only the detector and embedder import this module, and only when the runtime
is chosen, so the torch runtime never loads openvino.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable

import openvino as ov
import torch
from torch import nn

CompiledNet = Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, ...]]
"""Answers as the torch module did: its one output tensor, or its tuple of heads."""

# f32: on CPUs with bf16 units the plugin otherwise infers in bf16 by default, far outside the 1e-4 parity
# the tests hold it to. LATENCY: one stream over all cores per call, as torch runs; the services batch.
CONFIG = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
CORE = ov.Core()


def compile_net(module: nn.Module, example: torch.Tensor, any_size: bool = False, callers: int = 1) -> CompiledNet:
    """`module` (on the CPU, in eval mode) compiled for any batch size and, with `any_size`, any height and
    width; otherwise the other dimensions are the example's, which is what lets shapes the module reads in
    Python (dlib's zero-padded skip connections) be traced as constants.

    `callers` threads calling at once (the detector's workers) each get a single-threaded stream of their
    own, as torch's kernels run single-threaded on each worker: on all cores each, their calls contend.
    """
    if any(p.device.type != "cpu" for p in module.parameters()):
        raise ValueError("the openvino runtime runs on the CPU only: set the device to cpu")
    dims = [-1, example.shape[1], -1, -1] if any_size else [-1, *example.shape[1:]]
    with warnings.catch_warnings():
        # dlib's skip connections compare shapes in Python, which the tracer warns it freezes: on purpose, the
        # chip size is fixed
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        model = ov.convert_model(module, example_input=example, input=ov.PartialShape(dims))
    streams = {"NUM_STREAMS": callers, "INFERENCE_NUM_THREADS": callers} if callers > 1 else {}
    compiled = CORE.compile_model(model, "CPU", CONFIG | streams)
    outputs = compiled.outputs
    local = threading.local()

    def run(x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        # One infer request per thread: a request runs one inference at a time, and the services call their
        # models from a thread pool. Outputs are copied out of the request, so they outlive the next call.
        if not hasattr(local, "request"):
            local.request = compiled.create_infer_request()
        results = local.request.infer(x.numpy())
        heads = tuple(torch.from_numpy(results[output]) for output in outputs)
        return heads[0] if len(heads) == 1 else heads

    return run
