"""The execution paths of the detection kernel and the choice among them.

Each path is a small class with ``name``, ``open(model, env, log)`` (raises ``Unavailable``
with the reason where it cannot run here) and ``mask(frame, background, threshold)`` returning
the HxW uint8 mask; ``background`` is the blurred background, the same array for a whole
video (GPU paths keep it on the device and upload it again only for another array).
``best_path`` opens the first that works in ``ORDER`` and says why the others were passed over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .kernel import array_mask, reference_mask
from .tensorrt_path import TensorRtPath

MODEL_PATH = Path(__file__).resolve().parents[1] / "models" / "detect.onnx"
ORDER = ("tensorrt", "onnxruntime-cuda", "cupy", "torch-cuda", "opencv", "onnxruntime-cpu")
"""Best first: TensorRT's fused engine, then the other GPU runtimes, then the CPU. On the
CPU OpenCV wins: its kernel ran 3.5 times as many 4K frames a second as onnxruntime's
(``bench/detect.py`` on a 2-core machine), so onnxruntime-cpu runs only when asked
(``DETECT_PATH``) and is the benchmark's baseline."""
GPU_PATHS = frozenset(ORDER[:4])
REFERENCE = "opencv"


class Unavailable(Exception):
    """A path cannot run here; the message says why (``"not installed"``, ``"no GPU"``)."""


class MaskPath(Protocol):
    name: str

    def mask(self, frame: np.ndarray, background: np.ndarray, threshold: float) -> np.ndarray: ...


def no_gpu_reason(env: Mapping[str, str]) -> str | None:
    """Why the stage may not use a GPU, or None. Winslow's runner sets CUDA_VISIBLE_DEVICES to
    the GPUs it gave the stage, empty for none; a stage must not take another's GPU."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "NoDevFiles"):
        return f"no GPU given to this stage (CUDA_VISIBLE_DEVICES={visible.strip()!r})"
    return None


class OpenCvPath:
    """The reference: OpenCV on the CPU, always present."""

    name = "opencv"

    @classmethod
    def open(cls, model: Path, env: Mapping[str, str], log: Any = print) -> OpenCvPath:
        return cls()

    def mask(self, frame: np.ndarray, background: np.ndarray, threshold: float) -> np.ndarray:
        return reference_mask(frame, background, int(threshold))


class OnnxRuntimePath:
    """``detect.onnx`` through onnxruntime, on the CPU or (onnxruntime-gpu) CUDA."""

    def __init__(self, name: str, session: Any) -> None:
        self.name = name
        self.session = session

    @classmethod
    def open_provider(cls, name: str, provider: str, model: Path) -> OnnxRuntimePath:
        try:
            import onnxruntime as ort
        except ImportError:
            raise Unavailable("not installed (import onnxruntime failed)") from None
        if provider not in ort.get_available_providers():
            hint = " (install onnxruntime-gpu)" if provider == "CUDAExecutionProvider" else ""
            raise Unavailable(f"onnxruntime {ort.__version__} has no {provider}{hint}")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # its warnings about unused providers are noise here
        try:
            session = ort.InferenceSession(str(model), options, providers=[provider])
        except Exception as exc:  # onnxruntime raises its own types for a missing CUDA
            raise Unavailable(f"{provider} did not start: {exc}") from None
        # onnxruntime falls back to the CPU quietly when CUDA does not answer.
        if session.get_providers()[0] != provider:
            raise Unavailable(f"{provider} did not start (running on {session.get_providers()})")
        return cls(name, session)

    def mask(self, frame: np.ndarray, background: np.ndarray, threshold: float) -> np.ndarray:
        feeds = {
            "frame": np.ascontiguousarray(frame),
            "background": np.ascontiguousarray(background),
            "threshold": np.array([threshold], np.float32),
        }
        return np.asarray(self.session.run(["mask"], feeds)[0])


class OnnxRuntimeCpuPath(OnnxRuntimePath):
    @classmethod
    def open(cls, model: Path, env: Mapping[str, str], log: Any = print) -> OnnxRuntimePath:
        return cls.open_provider("onnxruntime-cpu", "CPUExecutionProvider", model)


class OnnxRuntimeCudaPath(OnnxRuntimePath):
    @classmethod
    def open(cls, model: Path, env: Mapping[str, str], log: Any = print) -> OnnxRuntimePath:
        return cls.open_provider("onnxruntime-cuda", "CUDAExecutionProvider", model)


class CupyPath:
    """``kernel.array_mask`` over CuPy: the numpy kernel, on the GPU."""

    name = "cupy"

    def __init__(self, cupy: Any) -> None:
        self.cupy = cupy
        self.background_host: np.ndarray | None = None
        self.background_device: Any = None

    @classmethod
    def open(cls, model: Path, env: Mapping[str, str], log: Any = print) -> CupyPath:
        try:
            import cupy
        except ImportError:
            raise Unavailable("not installed (import cupy failed)") from None
        try:
            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise Unavailable("no CUDA device answers")
        except cupy.cuda.runtime.CUDARuntimeError as exc:
            raise Unavailable(f"no CUDA device answers: {exc}") from None
        return cls(cupy)

    def mask(self, frame: np.ndarray, background: np.ndarray, threshold: float) -> np.ndarray:
        cp = self.cupy
        if self.background_host is not background:
            self.background_device = cp.asarray(background)
            self.background_host = background
        result = array_mask(cp, cp.asarray(frame), self.background_device, float(threshold))
        return np.asarray(cp.asnumpy(result))


class TorchPath:
    """The kernel in PyTorch on CUDA: reflect padding, shifted sums, ``max_pool2d``."""

    name = "torch-cuda"

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self.device = torch.device("cuda", 0)
        self.background_host: np.ndarray | None = None
        self.background_device: Any = None

    @classmethod
    def open(cls, model: Path, env: Mapping[str, str], log: Any = print) -> TorchPath:
        try:
            import torch
        except ImportError:
            raise Unavailable("not installed (import torch failed)") from None
        if not torch.cuda.is_available():
            raise Unavailable(f"torch {torch.__version__} sees no CUDA device")
        return cls(torch)

    def mask(self, frame: np.ndarray, background: np.ndarray, threshold: float) -> np.ndarray:
        torch = self.torch
        if self.background_host is not background:
            self.background_device = torch.from_numpy(background).to(self.device).float()
            self.background_host = background
        with torch.inference_mode():
            image = torch.from_numpy(frame).to(self.device)
            result = torch_mask(torch, image, self.background_device, float(threshold))
        return np.asarray(result.cpu().numpy())


def torch_mask(torch: Any, frame: Any, background: Any, threshold: float) -> Any:
    """``kernel.array_mask`` in torch: HxWx3 uint8 and float tensors in, HxW uint8 out."""
    from torch.nn import functional

    from .kernel import BLUR_RADIUS, BLUR_WEIGHTS, CLOSE_SIZE, OPEN_SIZE

    height, width = frame.shape[:2]
    r = BLUR_RADIUS
    # reflect padding wants NxCxHxW; it is OpenCV's BORDER_REFLECT_101.
    chw = frame.permute(2, 0, 1).unsqueeze(0).float()
    padded = functional.pad(chw, (r, r, r, r), mode="reflect")[0]
    rows = sum(w * padded[:, :, k : k + width] for k, w in enumerate(BLUR_WEIGHTS))
    summed = sum(w * rows[:, k : k + height, :] for k, w in enumerate(BLUR_WEIGHTS))
    blurred = torch.floor((summed + 128) * (1 / 256))
    difference = (blurred - background.permute(2, 0, 1)).abs().amax(dim=0)
    mask = (difference > threshold).float()[None, None]

    def max_filter(x: Any, size: int, fill: float) -> Any:
        s = size // 2
        return functional.max_pool2d(functional.pad(x, (s, s, s, s), value=fill), size, stride=1)

    mask = -max_filter(-mask, OPEN_SIZE, -1.0)
    mask = max_filter(mask, OPEN_SIZE, 0.0)
    mask = max_filter(mask, CLOSE_SIZE, 0.0)
    mask = -max_filter(-mask, CLOSE_SIZE, -1.0)
    return (mask[0, 0] * 255).to(torch.uint8)


OPENERS: dict[str, Callable[..., MaskPath]] = {
    "tensorrt": TensorRtPath.open,
    "onnxruntime-cuda": OnnxRuntimeCudaPath.open,
    "cupy": CupyPath.open,
    "torch-cuda": TorchPath.open,
    "onnxruntime-cpu": OnnxRuntimeCpuPath.open,
    "opencv": OpenCvPath.open,
}


@dataclass
class Choice:
    """The path that will run, and why each better one did not."""

    path: MaskPath
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def describe(self) -> str:
        """``mask on <path> (skipped <names>: <reason>; ...)``, one reason per group of paths
        skipped for it in a row (without a GPU all four GPU paths share one)."""
        groups: list[tuple[list[str], str]] = []
        for name, reason in self.skipped:
            if groups and groups[-1][1] == reason:
                groups[-1][0].append(name)
            else:
                groups.append(([name], reason))
        passed = "; ".join(f"{', '.join(names)}: {reason}" for names, reason in groups)
        return f"mask on {self.path.name}" + (f" (skipped {passed})" if passed else "")


def open_path(
    name: str, env: Mapping[str, str], model: Path = MODEL_PATH, log: Any = print
) -> MaskPath:
    """Open path ``name`` or raise ``Unavailable`` saying why it cannot run here."""
    if name not in OPENERS:
        raise Unavailable(f"unknown path {name!r}; one of {', '.join(ORDER)}")
    if name in GPU_PATHS:
        reason = no_gpu_reason(env)
        if reason:
            raise Unavailable(reason)
    if name != REFERENCE and not model.is_file():
        raise Unavailable(f"{model} is missing; run examples/traffic/detector/graph.py")
    return OPENERS[name](model, env, log)


def best_path(
    env: Mapping[str, str],
    order: Sequence[str] = ORDER,
    model: Path = MODEL_PATH,
    log: Any = print,
) -> Choice:
    """Open the first path of ``order`` that runs here; the reference always does."""
    skipped: list[tuple[str, str]] = []
    for name in order:
        try:
            return Choice(open_path(name, env, model, log), skipped)
        except Unavailable as exc:
            skipped.append((name, str(exc)))
    return Choice(OpenCvPath(), skipped)
