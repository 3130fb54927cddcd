"""Reading the two ONNX layouts faceaffect runs, without torch.

- ``faceaffect`` (written by ``faceaffect export``): outputs ``logits``, ``valence_arousal`` (models with VA)
  and ``embedding``.
- ``published`` (the HSEmotion ONNX files): one output holding the expression logits followed by valence and
  arousal. The embedding is the input of the final linear layer; ``expose_embedding`` makes it a second graph
  output named ``embedding`` so the published files give embeddings too.

>>> layout = graph_layout(model_proto, config)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faceaffect.registry import ModelConfig
from faceaffect.weights.errors import CheckpointError

if TYPE_CHECKING:
    import onnx

LOGITS, VALENCE_AROUSAL, EMBEDDING = "logits", "valence_arousal", "embedding"
FACEAFFECT_LAYOUT, PUBLISHED_LAYOUT = "faceaffect", "published"


def graph_layout(model: onnx.ModelProto, config: ModelConfig) -> str:
    """``faceaffect`` or ``published`` by the graph's outputs; CheckpointError for anything else."""
    names = [output.name for output in model.graph.output]
    expected = [LOGITS, VALENCE_AROUSAL, EMBEDDING] if config.has_va else [LOGITS, EMBEDDING]
    if sorted(names) == sorted(expected):
        return FACEAFFECT_LAYOUT
    if len(names) == 1:
        return PUBLISHED_LAYOUT
    raise CheckpointError(
        f"ONNX graph for {config.name} has outputs {names}; expected {expected} (faceaffect export) "
        "or a single output (published HSEmotion layout)"
    )


def expose_embedding(model: onnx.ModelProto, config: ModelConfig) -> onnx.ModelProto:
    """Add a graph output ``embedding``: the input of the linear layer that computes the single output.

    The layer is a ``Gemm``, or a ``MatMul`` optionally followed by an ``Add`` (bias); its weight must map
    ``config.embedding_dim`` features to ``config.num_outputs``. The model is changed in place and returned.
    """
    import onnx
    from onnx import helper

    graph = model.graph
    producers = {name: node for node in graph.node for name in node.output}
    weights = {init.name: tuple(init.dims) for init in graph.initializer}
    node = producers.get(graph.output[0].name)
    if node is not None and node.op_type == "Add":
        node = next((producers[i] for i in node.input if i in producers and i not in weights), None)
    if node is None or node.op_type not in ("Gemm", "MatMul"):
        raise CheckpointError(
            f"ONNX graph for {config.name}: its output is not computed by a linear layer "
            f"(found {node.op_type if node is not None else 'no node'}); cannot expose the embedding"
        )
    shape = weights.get(node.input[1])
    if shape is not None:
        transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
        in_dim, out_dim = (shape[1], shape[0]) if transposed else shape
        if (in_dim, out_dim) != (config.embedding_dim, config.num_outputs):
            raise CheckpointError(
                f"ONNX graph for {config.name}: its final linear layer maps {in_dim} -> {out_dim}, "
                f"the config says {config.embedding_dim} -> {config.num_outputs}"
            )
    graph.node.append(helper.make_node("Identity", [node.input[0]], [EMBEDDING], name="faceaffect_embedding"))
    graph.output.append(
        helper.make_tensor_value_info(EMBEDDING, onnx.TensorProto.FLOAT, ["batch", config.embedding_dim])
    )
    return model
