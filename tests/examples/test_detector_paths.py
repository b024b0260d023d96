"""The traffic example's detection kernel on every execution path present here.

Each path (TensorRT, onnxruntime on CUDA, CuPy, PyTorch on CUDA, onnxruntime on the CPU) runs
on the same synthetic frames, drawn by ``examples/traffic/generate.py`` at 640x360 and at 4K,
and must give OpenCV's mask bit for bit, hence the same boxes (asserted within one pixel, as
the issue states it). A path that cannot run here is skipped with its reason. TensorRT's
pure parts (cache folder, cache key, engine file name, bindings) are tested without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="the traffic example needs opencv-python-headless")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "traffic"
sys.path.insert(0, str(EXAMPLE))

import generate  # noqa: E402
from detector import (  # noqa: E402
    MODEL_PATH,
    ORDER,
    REFERENCE,
    Unavailable,
    best_path,
    blobs_from_mask,
    blur_background,
    no_gpu_reason,
    open_path,
    reference_mask,
)
from detector.kernel import array_mask  # noqa: E402
from detector.tensorrt_path import (  # noqa: E402
    bindings,
    cache_dir,
    cache_key,
    engine_file_name,
    network_flags,
    profile_shapes,
    write_atomically,
)

THRESHOLD = 30
MIN_AREA = 150
NO_GPU = {"CUDA_VISIBLE_DEVICES": ""}


def synthetic_frames(
    width: int, height: int, seconds: float, times: list[float], seed: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The generator's road, vehicles and sensor noise at ``times``: (blurred background,
    frames)."""
    rng = np.random.default_rng(seed)
    background = generate.draw_background(width, height, rng)
    vehicles = generate.plan_vehicles(6, width, height, seconds, 15.0, 0.1, rng)
    frames = []
    for t in times:
        frame = background.copy()
        for vehicle in vehicles:
            generate.draw_vehicle(frame, vehicle, t)
        noise = rng.standard_normal(frame.shape, dtype=np.float32)
        noise *= generate.SENSOR_NOISE_SIGMA
        noise += frame
        frames.append(np.clip(noise, 0, 255).astype(np.uint8))
    return blur_background(background), frames


@pytest.fixture(scope="module")
def small_frames() -> tuple[np.ndarray, list[np.ndarray]]:
    return synthetic_frames(640, 360, 10.0, [1.5, 3.0, 4.5, 6.0], seed=5)


@pytest.fixture(scope="module")
def frame_4k() -> tuple[np.ndarray, list[np.ndarray]]:
    return synthetic_frames(3840, 2160, 16.0, [8.0], seed=6)


def assert_same_detections(mask: np.ndarray, expected: np.ndarray) -> None:
    got, want = blobs_from_mask(mask, MIN_AREA), blobs_from_mask(expected, MIN_AREA)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert all(abs(a[k] - b[k]) <= 1 for k in ("x", "y", "w", "h")), (a, b)


def test_the_frames_hold_vehicles_and_the_reference_finds_them(small_frames, frame_4k):
    """Guards the comparisons below against comparing empty masks."""
    for background, frames in (small_frames, frame_4k):
        found = [
            len(blobs_from_mask(reference_mask(f, background, THRESHOLD), MIN_AREA)) for f in frames
        ]
        assert sum(found) >= len(frames), found


@pytest.mark.parametrize("name", [name for name in ORDER if name != REFERENCE])
def test_every_path_present_gives_the_reference_detections(name, small_frames, frame_4k):
    try:
        path = open_path(name, os.environ)
    except Unavailable as exc:
        pytest.skip(f"{name}: {exc}")
    for background, frames in (small_frames, frame_4k):
        for frame in frames:
            expected = reference_mask(frame, background, THRESHOLD)
            mask = path.mask(frame, background, THRESHOLD)
            assert mask.shape == expected.shape and mask.dtype == np.uint8
            assert_same_detections(mask, expected)
            # Stronger than the issue asks: the kernels are exact, so the masks are equal.
            assert np.array_equal(mask, expected), (
                f"{name}: {np.sum(mask != expected)} pixels differ"
            )


def test_the_cupy_kernel_run_by_numpy_gives_the_reference_mask(small_frames):
    """CuPy runs ``array_mask`` unchanged; numpy checks its arithmetic where no GPU is."""
    background, frames = small_frames
    for frame in frames:
        assert np.array_equal(
            array_mask(np, frame, background, THRESHOLD),
            reference_mask(frame, background, THRESHOLD),
        )


def test_no_pooling_pass_gets_padding_across_its_kernel():
    """onnxruntime folds a Pad into the pooling after it; where that gave a MaxPool with a
    kernel of 1 across as much padding as along, onnxruntime 1.30 refused the model ("Pad
    should be smaller than kernel"; seen on the GPU machine, whose CPU path then could not
    run). Each pass must pad only along its kernel."""
    onnx = pytest.importorskip("onnx", reason="reading the graph needs the onnx package")
    from onnx import numpy_helper

    model = onnx.load(str(MODEL_PATH))
    made_by = {out: node for node in model.graph.node for out in node.output}
    constants = {t.name: numpy_helper.to_array(t).tolist() for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t).tolist()
    pools = [n for n in model.graph.node if n.op_type == "MaxPool"]
    assert pools
    for pool in pools:
        [shape] = [a for a in pool.attribute if a.name == "kernel_shape"]
        kernel = list(onnx.helper.get_attribute_value(shape))
        pad = made_by[pool.input[0]]
        assert pad.op_type == "Pad", pool.name
        begins = constants[pad.input[1]][2:4]  # N, C, H, W begins, then the ends
        ends = constants[pad.input[1]][6:8]
        for axis in (0, 1):
            assert begins[axis] < kernel[axis] and ends[axis] < kernel[axis], (kernel, begins, ends)


def test_the_kernel_treats_the_image_edges_as_opencv_does():
    """Blobs touching the border and odd sizes: reflect padding and ignored morphology borders."""
    rng = np.random.default_rng(2)
    background = blur_background(rng.integers(60, 120, (23, 37, 3), dtype=np.uint8))
    frame = rng.integers(0, 256, (23, 37, 3), dtype=np.uint8)
    frame[:6, :9] = 250
    frame[-4:, -3:] = 0
    expected = reference_mask(frame, background, THRESHOLD)
    assert np.array_equal(array_mask(np, frame, background, THRESHOLD), expected)
    try:
        onnx_path = open_path("onnxruntime-cpu", os.environ)
    except Unavailable as exc:
        pytest.skip(f"onnxruntime-cpu: {exc}")
    assert np.array_equal(onnx_path.mask(frame, background, THRESHOLD), expected)


def test_the_shipped_model_is_what_the_builder_writes():
    pytest.importorskip("onnx", reason="building the graph needs the onnx package")
    from detector.graph import model_bytes

    assert MODEL_PATH.read_bytes() == model_bytes(), (
        "examples/traffic/models/detect.onnx is stale; run examples/traffic/detector/graph.py"
    )


def test_without_a_gpu_the_gpu_paths_are_skipped_saying_so():
    choice = best_path(NO_GPU)

    assert choice.path.name == "opencv"  # the faster of the two CPU paths
    reason = "no GPU given to this stage (CUDA_VISIBLE_DEVICES='')"
    assert choice.skipped == [(name, reason) for name in ORDER[:4]]
    assert choice.describe() == (
        f"mask on opencv (skipped tensorrt, onnxruntime-cuda, cupy, torch-cuda: {reason})"
    )


def test_the_log_line_names_every_skipped_path_with_its_reason():
    from detector.paths import Choice, OpenCvPath

    skipped = [("tensorrt", "not installed"), ("cupy", "no CUDA"), ("torch-cuda", "no CUDA")]

    assert Choice(OpenCvPath(), skipped).describe() == (
        "mask on opencv (skipped tensorrt: not installed; cupy, torch-cuda: no CUDA)"
    )
    assert Choice(OpenCvPath()).describe() == "mask on opencv"


def test_without_the_model_file_the_reference_runs(tmp_path):
    order = ("onnxruntime-cpu", "opencv")
    choice = best_path(NO_GPU, order=order, model=tmp_path / "missing.onnx")

    assert choice.path.name == "opencv"
    assert choice.skipped[-1][0] == "onnxruntime-cpu"
    assert (
        "missing.onnx is missing; run examples/traffic/detector/graph.py" in choice.skipped[-1][1]
    )


def test_a_missing_runtime_is_named_as_not_installed():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorrt is installed here")
    with pytest.raises(Unavailable, match=r"^not installed \(import tensorrt failed\)$"):
        open_path("tensorrt", {})


@pytest.mark.parametrize(
    ("visible", "reason"),
    [
        (None, None),
        ("0", None),
        ("1,2", None),
        ("", "''"),
        (" -1", "'-1'"),
        ("NoDevFiles", "'NoDevFiles'"),
    ],
)
def test_no_gpu_reason_reads_cuda_visible_devices(visible, reason):
    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    said = no_gpu_reason(env)
    assert said == (
        None if reason is None else f"no GPU given to this stage (CUDA_VISIBLE_DEVICES={reason})"
    )


# TensorRT's pure parts -------------------------------------------------------------------


def test_engines_live_in_the_node_cache_else_the_user_cache(tmp_path):
    assert cache_dir({"WINSLOW_CACHE_DIR": "/n/cache", "XDG_CACHE_HOME": "/x"}) == Path(
        "/n/cache/tensorrt"
    )
    assert cache_dir({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/winslow/tensorrt")
    assert cache_dir({"HOME": "/h"}) == Path("/h/.cache/winslow/tensorrt")


def test_the_cache_key_changes_with_gpu_model_tensorrt_version_model_and_size():
    base = ("NVIDIA H100 80GB HBM3", "10.3.0", "ab" * 32, 2160, 3840)
    key = cache_key(*base)
    assert key == cache_key(*base) and len(key) == 64
    variants = [
        ("NVIDIA A100-SXM4-40GB", *base[1:]),
        (base[0], "10.4.0", *base[2:]),
        (*base[:2], "cd" * 32, *base[3:]),
        (*base[:3], 1080, 1920),
    ]
    assert len({key, *(cache_key(*v) for v in variants)}) == 5


def test_the_engine_file_name_says_gpu_and_size():
    key = cache_key("NVIDIA H100 80GB HBM3", "10.3.0", "00" * 32, 2160, 3840)
    name = engine_file_name("NVIDIA H100 80GB HBM3", key, 2160, 3840)
    assert name == f"detect-nvidia-h100-80gb-hbm3-2160x3840-{key[:16]}.engine"
    assert engine_file_name("  ", key, 1, 2).startswith("detect-gpu-1x2-")


def test_bindings_and_profile_follow_the_graph():
    onnx = pytest.importorskip("onnx", reason="reading the graph needs the onnx package")
    graph = onnx.load(str(MODEL_PATH)).graph
    found = bindings(2160, 3840)

    assert [b.name for b in found if b.is_input] == [i.name for i in graph.input]
    assert [b.name for b in found if not b.is_input] == [o.name for o in graph.output]
    assert {b.name: b.nbytes for b in found} == {
        "frame": 2160 * 3840 * 3,
        "background": 2160 * 3840 * 3,
        "threshold": 4,
        "mask": 2160 * 3840,
    }
    assert profile_shapes(2160, 3840) == {"frame": (2160, 3840, 3), "background": (2160, 3840, 3)}
    # What the graph leaves open is exactly what the profile fixes.
    open_size = {
        i.name for i in graph.input if any(d.dim_param for d in i.type.tensor_type.shape.dim)
    }
    assert open_size == set(profile_shapes(1, 1))


def test_network_flags_ask_for_explicit_batch_before_tensorrt_10():
    assert network_flags("8.6.1", 0) == 1
    assert network_flags("10.3.0", 0) == 0


def test_engines_are_written_whole_or_not_at_all(tmp_path):
    target = tmp_path / "engines" / "detect.engine"
    write_atomically(target, b"engine")
    write_atomically(target, b"engine 2")
    assert target.read_bytes() == b"engine 2"
    assert [p.name for p in target.parent.iterdir()] == ["detect.engine"]


# TensorRT's build-or-load, with stand-ins for tensorrt and pycuda ------------------------

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-40GB"


def fake_tensorrt(version: str = "10.3.0", *, parses: bool = True, builds: bool = True):
    """A stand-in for the ``tensorrt`` module, just what ``TensorRtPath.engine_bytes`` calls.

    ``Logger(severity)`` is ``trt.Logger``; ``Builder(logger)`` is ``trt.Builder``, with
    ``create_network(flags)`` (``INetworkDefinition``), ``create_builder_config()``
    (``IBuilderConfig``: ``clear_flag``, ``add_optimization_profile``),
    ``create_optimization_profile()`` (``IOptimizationProfile.set_shape(name, min, opt, max)``)
    and ``build_serialized_network(network, config)``, which returns an engine (``IHostMemory``,
    here a memoryview) or ``None`` when the build fails; ``OnnxParser(network, logger)`` is
    ``trt.OnnxParser`` (``parse(bytes)``, ``num_errors``, ``get_error(i)``). Each build is
    recorded in ``trt.built`` with the model bytes, network flags, profile and cleared flags it
    got; the engine it returns names its build's number, so bytes from the cache can be told
    apart from a rebuild.
    """
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.built = []
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(EXPLICIT_BATCH=0)
    trt.BuilderFlag = types.SimpleNamespace(TF32="TF32")

    class Logger:
        WARNING = "WARNING"

        def __init__(self, severity):
            self.severity = severity

    class Network:
        def __init__(self, flags):
            self.flags = flags
            self.model = None

    class OnnxParser:
        def __init__(self, network, logger):
            self.network = network
            self.num_errors = 0 if parses else 1

        def parse(self, data):
            self.network.model = data
            return parses

        def get_error(self, index):
            return f"In node {index}: unsupported operator"

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, smallest, best, largest):
            self.shapes[name] = (smallest, best, largest)

    class Config:
        def __init__(self):
            self.cleared = set()
            self.profiles = []

        def clear_flag(self, flag):
            self.cleared.add(flag)

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            trt.built.append(
                {
                    "model": network.model,
                    "flags": network.flags,
                    "profiles": [p.shapes for p in config.profiles],
                    "cleared": config.cleared,
                }
            )
            return memoryview(b"engine %d" % len(trt.built)) if builds else None

    class Runtime:
        """``trt.Runtime``: ``deserialize_cuda_engine`` answers None for bytes it cannot read,
        as TensorRT does; these fakes read only what their builder wrote."""

        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data):
            return types.SimpleNamespace(data=data) if data.startswith(b"engine ") else None

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
    return trt


def fake_pycuda(gpu_name: str) -> types.ModuleType:
    """A stand-in for ``pycuda`` whose ``driver`` has what ``TensorRtPath.open`` calls:
    ``init()``, ``Device.count()``, ``Device(0).name()`` (the GPU model, part of the cache key),
    ``Device(0).retain_primary_context()`` with ``push``/``pop``, and ``Error``."""
    driver = types.ModuleType("pycuda.driver")
    driver.Error = type("Error", (Exception,), {})
    driver.init = lambda: None

    class Device:
        def __init__(self, ordinal):
            self.ordinal = ordinal

        @staticmethod
        def count():
            return 1

        def name(self):
            return gpu_name

        def retain_primary_context(self):
            return types.SimpleNamespace(push=lambda: None, pop=lambda: None)

    driver.Device = Device
    package = types.ModuleType("pycuda")
    package.driver = driver
    return package


@pytest.fixture
def open_tensorrt(monkeypatch, tmp_path):
    """Opens the TensorRT path as a stage run does (``open_path`` with the node cache in the
    environment), on the fake GPU model and fake TensorRT given; returns it and its log."""
    model = tmp_path / "detect.onnx"
    model.write_bytes(b"onnx graph v1")
    env = {"WINSLOW_CACHE_DIR": str(tmp_path / "node-cache")}

    def opened(trt, gpu_name=H100):
        pycuda = fake_pycuda(gpu_name)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setitem(sys.modules, "pycuda", pycuda)
        monkeypatch.setitem(sys.modules, "pycuda.driver", pycuda.driver)
        log: list[str] = []
        path = open_path("tensorrt", env, model=model, log=log.append)
        assert path.engines == tmp_path / "node-cache" / "tensorrt"
        return path, log

    return opened


def profile_for(height, width):
    frame = (height, width, 3)
    return {"frame": (frame, frame, frame), "background": (frame, frame, frame)}


def test_the_first_run_builds_the_engine_once_and_caches_it_whole(open_tensorrt, monkeypatch):
    trt = fake_tensorrt()
    path, log = open_tensorrt(trt)
    renames = []
    replace = os.replace

    def watched_replace(source, target):
        renames.append(
            (Path(source), Path(target), Path(source).read_bytes(), Path(target).exists())
        )
        replace(source, target)

    monkeypatch.setattr(os, "replace", watched_replace)

    engine = path.engine_bytes(360, 640)

    assert engine == b"engine 1"
    assert trt.built == [
        {
            "model": b"onnx graph v1",
            "flags": 0,
            "profiles": [profile_for(360, 640)],
            "cleared": {"TF32"},
        }
    ]
    key = cache_key(H100, "10.3.0", path.model_sha256, 360, 640)
    cached = path.engines / engine_file_name(H100, key, 360, 640)
    assert [p.name for p in path.engines.iterdir()] == [cached.name]
    assert cached.read_bytes() == engine
    # Written beside the engine under another name, whole, then renamed into place.
    [(source, target, written, existed)] = renames
    assert source.parent == target.parent and source.name != target.name
    assert (target, written, existed) == (cached, engine, False)
    assert log == [f"tensorrt: building the engine for {H100}, 360x640 (once)"]


def test_a_later_run_on_the_same_gpu_loads_the_engine_without_building(open_tensorrt):
    trt = fake_tensorrt()
    first, _ = open_tensorrt(trt)
    built = first.engine_bytes(360, 640)
    later, log = open_tensorrt(trt)

    assert later.engine_bytes(360, 640) == built
    assert len(trt.built) == 1
    assert len(log) == 1 and log[0].startswith("tensorrt: engine from the cache, ")


def test_another_frame_size_or_gpu_model_builds_another_engine(open_tensorrt):
    trt = fake_tensorrt()
    h100, _ = open_tensorrt(trt)
    small = h100.engine_bytes(360, 640)
    large = h100.engine_bytes(2160, 3840)
    a100, _ = open_tensorrt(trt, A100)
    other_gpu = a100.engine_bytes(360, 640)

    assert [b["profiles"] for b in trt.built] == [
        [profile_for(360, 640)],
        [profile_for(2160, 3840)],
        [profile_for(360, 640)],
    ]
    assert len({small, large, other_gpu}) == 3
    assert len(list(h100.engines.iterdir())) == 3
    # Each is kept: a later run on either GPU, at either size, builds nothing.
    again, _ = open_tensorrt(trt)
    assert (again.engine_bytes(360, 640), again.engine_bytes(2160, 3840)) == (small, large)
    assert len(trt.built) == 3


def test_a_new_tensorrt_version_builds_again_with_its_network_flags(open_tensorrt):
    trt = fake_tensorrt("10.3.0")
    open_tensorrt(trt)[0].engine_bytes(360, 640)
    older = fake_tensorrt("8.6.1")
    open_tensorrt(older)[0].engine_bytes(360, 640)

    assert [b["flags"] for b in trt.built + older.built] == [0, 1]  # explicit batch before 10


@pytest.mark.parametrize(
    ("trt", "message"),
    [
        (fake_tensorrt(parses=False), r"TensorRT cannot parse .*detect\.onnx: In node 0: "),
        (fake_tensorrt(builds=False), r"^TensorRT could not build the engine"),
    ],
    ids=["unparsable-model", "failed-build"],
)
def test_a_failed_build_caches_nothing_so_the_next_run_tries_again(open_tensorrt, trt, message):
    path, _ = open_tensorrt(trt)
    with pytest.raises(RuntimeError, match=message):
        path.engine_bytes(360, 640)

    assert not path.engines.exists() or list(path.engines.iterdir()) == []


def test_a_cached_engine_tensorrt_cannot_read_is_built_again_once(open_tensorrt):
    """A cached engine cut short (a full disk, a power cut) must not fail every later stage
    on that node: it is built again, and the good one replaces it in the cache."""
    trt = fake_tensorrt()
    first, _ = open_tensorrt(trt)
    first.engine_bytes(360, 640)
    cached = first.engine_path(360, 640)
    cached.write_bytes(b"engi")
    later, log = open_tensorrt(trt)

    engine = later.load_engine(360, 640)

    assert engine.data == b"engine 2" and cached.read_bytes() == b"engine 2"
    assert len(trt.built) == 2
    assert log[-2:] == [
        f"tensorrt: the cached engine {cached} cannot be read; building it again",
        f"tensorrt: building the engine for {H100}, 360x640 (once)",
    ]
    again, _ = open_tensorrt(trt)
    assert again.load_engine(360, 640).data == b"engine 2" and len(trt.built) == 2


def test_an_engine_tensorrt_cannot_read_even_when_just_built_fails_the_stage(open_tensorrt):
    trt = fake_tensorrt()
    trt.Runtime.deserialize_cuda_engine = lambda self, data: None
    path, _ = open_tensorrt(trt)

    with pytest.raises(RuntimeError, match="cannot read the engine it has just built"):
        path.load_engine(360, 640)
    assert len(trt.built) == 2  # the first build, and one more: never a loop


# The stage ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> Path:
    inputs = tmp_path_factory.mktemp("detector-inputs")
    video = inputs / "videos" / "road.mp4"
    video.parent.mkdir(parents=True)
    subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "generate.py"),
            str(video),
            "--seed",
            "4",
            "--vehicles",
            "3",
            "--seconds",
            "3",
            "--width",
            "320",
            "--height",
            "240",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return inputs


def run_detect(inputs: Path, workspace: Path, **env: str) -> subprocess.CompletedProcess[str]:
    workspace.mkdir()
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "stages" / "detect.py")],
        cwd=workspace,
        env={
            **os.environ,
            "WINSLOW_WORKSPACE": str(workspace),
            "WINSLOW_INPUTS": str(inputs),
            "INPUT_VIDEO": "videos/road.mp4",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_stage_logs_and_reports_its_path_and_writes_the_reference_detections(
    short_video, tmp_path
):
    pytest.importorskip("onnxruntime", reason="the CPU ONNX path needs onnxruntime")
    chosen = run_detect(short_video, tmp_path / "best", DETECT_PATH="onnxruntime-cpu", **NO_GPU)
    reference = run_detect(short_video, tmp_path / "ref", **NO_GPU)

    assert chosen.returncode == 0 and reference.returncode == 0, chosen.stderr + reference.stderr
    assert "detect: mask on opencv (skipped tensorrt, onnxruntime-cuda, cupy, " in (
        reference.stdout
    )
    assert "WINSLOW_RESULT: detector=onnxruntime-cpu" in chosen.stdout
    assert "WINSLOW_RESULT: detector=opencv" in reference.stdout
    detections = (tmp_path / "best" / "detections.csv").read_text()
    assert len(detections.splitlines()) > 10
    assert detections == (tmp_path / "ref" / "detections.csv").read_text()


@pytest.mark.parametrize(
    ("forced", "message"),
    [
        ("fastest", "detect: DETECT_PATH='fastest' is not a path; use one of tensorrt, "),
        ("tensorrt", "detect: DETECT_PATH=tensorrt cannot run here: no GPU given to this stage"),
    ],
)
def test_a_forced_path_that_cannot_run_fails_saying_why(short_video, tmp_path, forced, message):
    result = run_detect(short_video, tmp_path / "ws", DETECT_PATH=forced, **NO_GPU)

    assert result.returncode == 2
    assert result.stderr.startswith(message)
