"""Small convolutional networks written with ``onnx.helper`` (known weights), and the same forward
pass in NumPy: conv 3x3 (zero padding 1) + ReLU layers, global average pool, a dense head.

Used by the ONNX finder tests and by ``benchmarks/bench_score.py`` (four conv layers)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Net:
    """An ONNX model (serialized bytes) and its weights: conv kernels (out, in, 3, 3) and biases,
    the head matrix (C, k) and bias (k,)."""

    model: bytes
    convs: list[tuple[np.ndarray, np.ndarray]]
    head_w: np.ndarray
    head_b: np.ndarray


def build_cnn(bands: int, widths: tuple[int, ...] = (4, 4), *, classes: int = 1, seed: int = 0,
              batch: int | str = "n", size: int | str = "s") -> Net:
    """A network (n, bands, S, S) -> (n, classes): len(widths) conv+ReLU layers, pooling, Gemm."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, convs = [], [], []
    prev, cin = "x", bands
    for i, cout in enumerate(widths):
        w = rng.normal(0, 1.0 / np.sqrt(9 * cin), (cout, cin, 3, 3)).astype(np.float32)
        b = rng.normal(0, 0.1, cout).astype(np.float32)
        convs.append((w, b))
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], kernel_shape=[3, 3],
                                   pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        prev, cin = f"r{i}", cout
    hw = rng.normal(0, 1.0, (cin, classes)).astype(np.float32)
    hb = rng.normal(0, 0.1, classes).astype(np.float32)
    inits += [numpy_helper.from_array(hw, "hw"), numpy_helper.from_array(hb, "hb")]
    nodes += [helper.make_node("GlobalAveragePool", [prev], ["pool"]),
              helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
              helper.make_node("Gemm", ["flat", "hw", "hb"], ["y"])]
    graph = helper.make_graph(
        nodes, "dhs_test_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, bands, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return Net(model.SerializeToString(), convs, hw, hb)


def forward_numpy(net: Net, x: np.ndarray) -> np.ndarray:
    """The network's output (n, classes) computed in NumPy (float64)."""
    h = np.asarray(x, np.float64)
    for w, b in net.convs:
        pad = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
        win = np.lib.stride_tricks.sliding_window_view(pad, (3, 3), axis=(2, 3))  # (n, c, S, S, 3, 3)
        h = np.maximum(np.einsum("ncyxij,ocij->noyx", win, w.astype(np.float64)) + b[None, :, None, None], 0.0)
    return h.mean(axis=(2, 3)) @ net.head_w.astype(np.float64) + net.head_b
