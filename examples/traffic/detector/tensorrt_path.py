"""The TensorRT path: an engine built from ``detect.onnx`` once per GPU model, TensorRT
version, model file and frame size, cached on the node, run with pycuda buffers.

The pure parts (where the cache is, the cache key, the engine's file name, the bindings for
a frame size) need neither TensorRT nor a GPU and are tested everywhere; ``TensorRtPath``
imports ``tensorrt`` and ``pycuda`` only when opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ENGINE_DIR = "tensorrt"
"""Sub-folder of the cache folder that holds the engines."""


@dataclass(frozen=True)
class Binding:
    """One input or output of the engine for a given frame size."""

    name: str
    shape: tuple[int, ...]
    dtype: type[np.generic]
    is_input: bool
    sized: bool = True
    """Whether the graph leaves its size open (height, width), so the optimization profile
    and the execution context must be told it."""

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


def bindings(height: int, width: int) -> list[Binding]:
    """The engine's tensors for ``height``x``width`` frames, inputs first, as in the graph."""
    return [
        Binding("frame", (height, width, 3), np.uint8, True),
        Binding("background", (height, width, 3), np.uint8, True),
        Binding("threshold", (1,), np.float32, True, sized=False),
        Binding("mask", (height, width), np.uint8, False),
    ]


def profile_shapes(height: int, width: int) -> dict[str, tuple[int, ...]]:
    """The optimization profile: the inputs of open size fixed at the video's (min = opt =
    max), which lets TensorRT pick the fastest kernels for exactly that size."""
    return {b.name: b.shape for b in bindings(height, width) if b.is_input and b.sized}


def cache_dir(env: Mapping[str, str]) -> Path:
    """Where engines are kept: ``$WINSLOW_CACHE_DIR`` (the node cache, where a runner hands
    one to the stage), else ``$XDG_CACHE_HOME/winslow``, else ``~/.cache/winslow``; in its
    ``tensorrt`` folder."""
    if env.get("WINSLOW_CACHE_DIR"):
        base = Path(env["WINSLOW_CACHE_DIR"])
    elif env.get("XDG_CACHE_HOME"):
        base = Path(env["XDG_CACHE_HOME"]) / "winslow"
    else:
        base = Path(env.get("HOME") or Path.home()) / ".cache" / "winslow"
    return base / ENGINE_DIR


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_key(
    gpu_name: str, tensorrt_version: str, model_sha256: str, height: int, width: int
) -> str:
    """A serialized engine only runs on the GPU model and TensorRT version it was built for,
    and encodes the graph and the profile: all of them make the key."""
    fields = {
        "gpu": gpu_name.strip(),
        "tensorrt": tensorrt_version,
        "model": model_sha256,
        "height": height,
        "width": width,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def engine_file_name(gpu_name: str, key: str, height: int, width: int) -> str:
    """``detect-<gpu>-<H>x<W>-<key prefix>.engine``: readable in ``ls``, unique by key."""
    slug = "".join(c if c.isalnum() else "-" for c in gpu_name.strip().lower()).strip("-")
    slug = "-".join(part for part in slug.split("-") if part) or "gpu"
    return f"detect-{slug}-{height}x{width}-{key[:16]}.engine"


def network_flags(tensorrt_version: str, explicit_batch_flag: int) -> int:
    """TensorRT before 10 needs the explicit-batch flag for ONNX networks; 10 has only
    explicit batch and deprecates the flag."""
    major = int(tensorrt_version.split(".")[0])
    return 0 if major >= 10 else 1 << explicit_batch_flag


def write_atomically(path: Path, data: bytes) -> None:
    """Two stages on one node may build the same engine at once: each writes a file of its
    own and renames it into place, so a reader never sees half an engine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            # On disk before the rename: after a power cut, no empty engine under its name.
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class TensorRtPath:
    """Runs the ONNX kernel as a TensorRT engine. Raises ``Unavailable`` from ``open`` where
    ``tensorrt`` or ``pycuda`` does not import or no CUDA device answers."""

    name = "tensorrt"

    def __init__(self, model: Path, engines: Path, trt: Any, cuda: Any, log: Any) -> None:
        self.model = model
        self.engines = engines
        self.trt = trt
        self.cuda = cuda
        self.log = log
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.gpu_name = str(cuda.Device(0).name())
        self.model_sha256 = file_sha256(model)
        self.size: tuple[int, int] | None = None
        self.background: np.ndarray | None = None
        self.context: Any = None

    @classmethod
    def open(cls, model: Path, env: Mapping[str, str], log: Any = print) -> TensorRtPath:
        from .paths import Unavailable

        try:
            import tensorrt as trt
        except ImportError:
            raise Unavailable("not installed (import tensorrt failed)") from None
        try:
            import pycuda.driver as cuda
        except ImportError:
            raise Unavailable("pycuda not installed (TensorRT's buffers need it)") from None
        try:
            cuda.init()
            if cuda.Device.count() < 1:
                raise Unavailable("no CUDA device answers")
            path = cls(model, cache_dir(env), trt, cuda, log)
            path.context = cuda.Device(0).retain_primary_context()
            path.context.push()
        except cuda.Error as exc:
            raise Unavailable(f"CUDA did not start: {exc}") from None
        return path

    def engine_path(self, height: int, width: int) -> Path:
        """Where the engine for the frame size is cached on this node."""
        key = cache_key(self.gpu_name, self.trt.__version__, self.model_sha256, height, width)
        return self.engines / engine_file_name(self.gpu_name, key, height, width)

    def engine_bytes(self, height: int, width: int, *, rebuild: bool = False) -> bytes:
        """The serialized engine for the frame size: from the cache, else (or with
        ``rebuild``) built and cached."""
        trt = self.trt
        path = self.engine_path(height, width)
        if path.is_file() and not rebuild:
            self.log(f"tensorrt: engine from the cache, {path}")
            return path.read_bytes()
        self.log(f"tensorrt: building the engine for {self.gpu_name}, {height}x{width} (once)")
        builder = trt.Builder(self.logger)
        explicit = int(getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", 0))
        network = builder.create_network(network_flags(trt.__version__, explicit))
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(self.model.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT cannot parse {self.model}: {errors}")
        config = builder.create_builder_config()
        # TF32 would round the blur's sums; the mask must equal OpenCV's bit for bit.
        config.clear_flag(trt.BuilderFlag.TF32)
        profile = builder.create_optimization_profile()
        for name, shape in profile_shapes(height, width).items():
            profile.set_shape(name, shape, shape, shape)
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("TensorRT could not build the engine (see its log above)")
        data = bytes(serialized)
        write_atomically(path, data)
        return data

    def load_engine(self, height: int, width: int) -> Any:
        """The engine for the frame size, ready to run: the cached one, or one built anew
        where TensorRT cannot read what the cache holds."""
        runtime = self.trt.Runtime(self.logger)
        engine = runtime.deserialize_cuda_engine(self.engine_bytes(height, width))
        if engine is not None:
            return engine
        # TensorRT answers None for bytes it cannot read: a cached file cut short, or one a
        # TensorRT of the same version but another build wrote. Build it again, once.
        self.log(
            f"tensorrt: the cached engine {self.engine_path(height, width)} cannot be read; "
            "building it again"
        )
        engine = runtime.deserialize_cuda_engine(self.engine_bytes(height, width, rebuild=True))
        if engine is None:
            raise RuntimeError("TensorRT cannot read the engine it has just built")
        return engine

    def _prepare(self, height: int, width: int) -> None:
        cuda = self.cuda
        self.engine = self.load_engine(height, width)
        self.execution = self.engine.create_execution_context()
        self.stream = cuda.Stream()
        self.host: dict[str, np.ndarray] = {}
        self.device: dict[str, Any] = {}
        for binding in bindings(height, width):
            self.host[binding.name] = cuda.pagelocked_empty(binding.shape, binding.dtype)
            self.device[binding.name] = cuda.mem_alloc(binding.nbytes)
            if binding.is_input and binding.sized:
                self.execution.set_input_shape(binding.name, binding.shape)
            self.execution.set_tensor_address(binding.name, int(self.device[binding.name]))
        self.size = (height, width)
        self.background = None

    def _upload(self, name: str, array: np.ndarray) -> None:
        np.copyto(self.host[name], array)
        self.cuda.memcpy_htod_async(self.device[name], self.host[name], self.stream)

    def mask(self, frame: np.ndarray, background: np.ndarray, threshold: float) -> np.ndarray:
        height, width = frame.shape[:2]
        if self.size != (height, width):
            self._prepare(height, width)
        # The background stays on the GPU for the whole video; only frames travel.
        if self.background is not background:
            self._upload("background", background)
            self.background = background
        self._upload("threshold", np.array([threshold], np.float32))
        self._upload("frame", frame)
        self.execution.execute_async_v3(self.stream.handle)
        self.cuda.memcpy_dtoh_async(self.host["mask"], self.device["mask"], self.stream)
        self.stream.synchronize()
        return self.host["mask"].copy()

    def close(self) -> None:
        if self.context is not None:
            self.context.pop()
            self.context = None
