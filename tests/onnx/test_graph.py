"""Graph rewrites of ``faceaffect.onnx.graph``: pads computed from the input's shape become constants,
PReLU becomes Mul + Max (or Relu arithmetic), with the same outputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from faceaffect.models.onnx_export import onnx_bytes
from faceaffect.onnx.graph import expand_prelu, fold_computed_pads

SIZE = 8


def padded_conv(shape_axes: tuple[int, int], offset: int = 7) -> onnx.ModelProto:
    """Input (N, 3, 8, 8) -> Pad -> 3x3 convolution, the pads computed at run time from two axes of the
    input's shape as TensorFlow "same" padding is: 0 before, ``size - offset`` after."""
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Gather", ["shape", "axes"], ["sizes"], axis=0),
        helper.make_node("Sub", ["sizes", "offset"], ["after"]),
        helper.make_node("Concat", ["before", "after"], ["pads"], axis=0),
        helper.make_node("Pad", ["input", "pads", "zero"], ["padded"], mode="constant"),
        helper.make_node("Conv", ["padded", "weight"], ["output"], kernel_shape=[3, 3], strides=[2, 2]),
    ]
    rng = np.random.default_rng(0)
    initializers = [
        numpy_helper.from_array(np.array(shape_axes, np.int64), "axes"),
        numpy_helper.from_array(np.array([offset, offset], np.int64), "offset"),
        numpy_helper.from_array(np.zeros(6, np.int64), "before"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "weight"),
    ]
    graph = helper.make_graph(
        nodes,
        "padded_conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4, None, None])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def prelu(slopes: np.ndarray, *, through_identity: bool = False) -> onnx.ModelProto:
    """Input (N, 3, 4, 4) -> PRelu with one slope per channel (3, 1, 1)."""
    name = "slope_copy" if through_identity else "slope"
    nodes = [helper.make_node("Identity", ["slope"], ["slope_copy"])] if through_identity else []
    nodes.append(helper.make_node("PRelu", ["input", name], ["output"]))
    graph = helper.make_graph(
        nodes,
        "prelu",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, 4, 4])],
        [numpy_helper.from_array(slopes.astype(np.float32).reshape(3, 1, 1), "slope")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": batch})[0]


def test_pads_from_the_spatial_shape_become_constants_and_outputs_stay() -> None:
    batch = np.random.default_rng(1).standard_normal((3, 3, SIZE, SIZE)).astype(np.float32)
    original = padded_conv((2, 3))
    expected = run(original, batch)

    folded = fold_computed_pads(padded_conv((2, 3)), SIZE)

    assert [node.op_type for node in folded.graph.node] == ["Pad", "Conv"]
    pads = next(init for init in folded.graph.initializer if init.name == folded.graph.node[0].input[1])
    assert numpy_helper.to_array(pads).tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    assert expected.shape == (3, 4, 4, 4)
    np.testing.assert_array_equal(run(folded, batch), expected)


def test_pads_that_follow_the_batch_size_are_left_alone() -> None:
    model = padded_conv((0, 0), offset=1)  # pads grow with the batch: folding them would be wrong
    before = model.SerializeToString()
    assert run(model, np.zeros((2, 3, SIZE, SIZE), np.float32)).shape == (2, 4, 4, 4)  # the probe can run it

    assert fold_computed_pads(model, SIZE).SerializeToString() == before


def test_graph_without_computed_pads_is_untouched(calibrated_model) -> None:
    model = onnx.load_from_string(onnx_bytes(calibrated_model("mbf_va_mtl")))
    before = model.SerializeToString()

    assert fold_computed_pads(model, 112).SerializeToString() == before


@pytest.mark.parametrize(
    ("slopes", "through_identity", "ops"),
    [
        ([0.25, 0.0, -0.5], False, ["Mul", "Max"]),
        ([0.25, 0.9, 1.0], True, ["Identity", "Mul", "Max"]),
        ([0.25, 1.5, 0.1], False, ["Relu", "Sub", "Mul", "Add"]),  # a slope above 1: max() would be wrong
    ],
)
def test_prelu_becomes_cheaper_ops_with_identical_outputs(slopes, through_identity, ops) -> None:
    batch = np.random.default_rng(2).standard_normal((2, 3, 4, 4)).astype(np.float32) * 10
    expected = run(prelu(np.array(slopes), through_identity=through_identity), batch)

    expanded = expand_prelu(prelu(np.array(slopes), through_identity=through_identity))

    assert [node.op_type for node in expanded.graph.node] == ops
    assert (expected < 0).any() and (expected > 0).any()
    np.testing.assert_array_equal(run(expanded, batch), expected)


@pytest.mark.slow
def test_efficientnet_export_has_constant_same_padding(calibrated_model) -> None:
    """timm's tf_ EfficientNets pad stride-2 convolutions TensorFlow's way; the exported graph must carry
    those pads as constants (no shape arithmetic left), which lets ONNX Runtime fuse them into the convs."""
    graph = onnx.load_from_string(onnx_bytes(calibrated_model("enet_b0_8_best_afew"))).graph
    constants = {init.name for init in graph.initializer}
    pads = [node for node in graph.node if node.op_type == "Pad"]

    assert pads, "the architecture changed: this test no longer checks anything"
    assert all(node.input[1] in constants for node in pads)
    assert not {"Shape", "Ceil", "ConstantOfShape"} & {node.op_type for node in graph.node}
