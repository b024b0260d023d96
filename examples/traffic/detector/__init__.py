"""The traffic example's detection kernel and the paths that run it (TensorRT, onnxruntime on
CUDA, CuPy, PyTorch on CUDA, onnxruntime on the CPU, OpenCV): see ``paths`` and ``kernel``."""

from .kernel import blobs_from_mask, blur_background, reference_mask
from .paths import (
    MODEL_PATH,
    ORDER,
    REFERENCE,
    Choice,
    MaskPath,
    Unavailable,
    best_path,
    no_gpu_reason,
    open_path,
)

__all__ = [
    "MODEL_PATH",
    "ORDER",
    "REFERENCE",
    "Choice",
    "MaskPath",
    "Unavailable",
    "best_path",
    "blobs_from_mask",
    "blur_background",
    "no_gpu_reason",
    "open_path",
    "reference_mask",
]
