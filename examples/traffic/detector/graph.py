"""Build the detection kernel (``kernel.array_mask``) as an ONNX graph and write it to
``examples/traffic/models/detect.onnx``, the file every ONNX path (TensorRT, onnxruntime on
CUDA or the CPU) runs. Needs the ``onnx`` package; the stage itself only reads the file.

Inputs: ``frame`` and ``background`` (HxWx3 uint8, the background already blurred) and
``threshold`` (float32, shape [1]); output: ``mask`` (HxW uint8, 0 or 255). H and W are
symbolic, so one file serves every frame size. Only elementwise operations, slices, pads and
pooling, in float32 where every intermediate is exact (see ``kernel``)::

    python examples/traffic/detector/graph.py [OUTPUT]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from detector.kernel import BLUR_RADIUS, BLUR_WEIGHTS, CLOSE_SIZE, OPEN_SIZE
else:
    from .kernel import BLUR_RADIUS, BLUR_WEIGHTS, CLOSE_SIZE, OPEN_SIZE

MODEL_PATH = Path(__file__).resolve().parents[1] / "models" / "detect.onnx"
OPSET = 17
"""TensorRT 8.6 and later parse opset 17; onnxruntime has run it since 1.14."""
IR_VERSION = 8
"""Fixed rather than the onnx package's default, so a newer onnx writes the same bytes."""
OUTPUT = "mask"


class _Graph:
    """Collects nodes and constants; each ``op`` returns the name of its output."""

    def __init__(self, helper: Any, tensor_proto: Any, numpy_helper: Any) -> None:
        self.helper = helper
        self.tensor_proto = tensor_proto
        self.numpy_helper = numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.constants: dict[tuple[str, tuple[float, ...]], str] = {}

    def const(self, values: list[int] | list[float], dtype: str) -> str:
        import numpy as np

        key = (dtype, tuple(values))
        if key not in self.constants:
            name = f"const_{len(self.constants)}"
            self.initializers.append(
                self.numpy_helper.from_array(np.array(values, dtype=dtype), name)
            )
            self.constants[key] = name
        return self.constants[key]

    def op(self, op_type: str, *inputs: str, **attributes: Any) -> str:
        output = f"{op_type.lower()}_{len(self.nodes)}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [output], **attributes))
        return output


def _max_filter(g: _Graph, mask: str, size: int, fill: float) -> str:
    """Maximum over a ``size`` square of a 1x1xHxW tensor padded with ``fill`` (a value that
    never wins), so the image's outside is ignored as in OpenCV; a row pass then a column
    pass, which is the same maximum for a rectangle and 2/size of the work.

    Each pass pads only along its own axis: onnxruntime folds a Pad into the MaxPool after
    it, and 1.30 then refused the whole model ("Pad should be smaller than kernel") when a
    pass with a kernel of 1 across got the padding of both axes."""
    r = size // 2
    value = g.const([fill], "float32")
    across = g.op("Pad", mask, g.const([0, 0, 0, r, 0, 0, 0, r], "int64"), value, mode="constant")
    rows = g.op("MaxPool", across, kernel_shape=[1, size])
    down = g.op("Pad", rows, g.const([0, 0, r, 0, 0, 0, r, 0], "int64"), value, mode="constant")
    return g.op("MaxPool", down, kernel_shape=[size, 1])


def _blur(g: _Graph, image: str) -> str:
    """OpenCV's 5x5 Gaussian on a 1x3xHxW float image: reflect padding, then four 2x2
    averages, since [1 4 6 4 1]/16 is [1 1]/2 applied four times. Every average is a sum of
    four values times 1/4, exact in float32 (at most 16 significant bits), and so is the
    result, S/256; adding 1/2 and flooring rounds half up as OpenCV's fixed point does."""
    r = BLUR_RADIUS
    padded = g.op("Pad", image, g.const([0, 0, r, r, 0, 0, r, r], "int64"), mode="reflect")
    averaged = padded
    for _ in range(len(BLUR_WEIGHTS) - 1):
        averaged = g.op("AveragePool", averaged, kernel_shape=[2, 2])
    return g.op("Floor", g.op("Add", averaged, g.const([0.5], "float32")))


def _planar(g: _Graph, name: str) -> str:
    """An HxWx3 uint8 input as a 1x3xHxW float tensor, the layout pooling works on."""
    as_float = g.op("Cast", name, to=g.tensor_proto.FLOAT)
    return g.op("Unsqueeze", g.op("Transpose", as_float, perm=[2, 0, 1]), g.const([0], "int64"))


def build_model() -> Any:
    """The ONNX model of the kernel (an ``onnx.ModelProto``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = _Graph(helper, TensorProto, numpy_helper)
    difference = g.op("Abs", g.op("Sub", _blur(g, _planar(g, "frame")), _planar(g, "background")))
    largest = g.op("ReduceMax", difference, axes=[1], keepdims=1)
    mask = g.op("Cast", g.op("Greater", largest, "threshold"), to=TensorProto.FLOAT)
    # Opening (erode, dilate) then closing (dilate, erode); erosion is a max of the negation.
    mask = g.op("Neg", _max_filter(g, g.op("Neg", mask), OPEN_SIZE, -1.0))
    mask = _max_filter(g, mask, OPEN_SIZE, 0.0)
    mask = _max_filter(g, mask, CLOSE_SIZE, 0.0)
    mask = g.op("Neg", _max_filter(g, g.op("Neg", mask), CLOSE_SIZE, -1.0))
    flat = g.op("Squeeze", mask, g.const([0, 1], "int64"))
    scaled = g.op("Mul", flat, g.const([255.0], "float32"))
    g.nodes.append(helper.make_node("Cast", [scaled], [OUTPUT], to=TensorProto.UINT8))

    image: list[str | int] = ["height", "width", 3]
    graph = helper.make_graph(
        g.nodes,
        "traffic_detect",
        [
            helper.make_tensor_value_info("frame", TensorProto.UINT8, image),
            helper.make_tensor_value_info("background", TensorProto.UINT8, image),
            helper.make_tensor_value_info("threshold", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.UINT8, ["height", "width"])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="winslow-traffic-example",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def model_bytes() -> bytes:
    """The serialized model, as written to ``MODEL_PATH``."""
    return bytes(build_model().SerializeToString(deterministic=True))


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else MODEL_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(model_bytes())
    print(f"wrote {target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
