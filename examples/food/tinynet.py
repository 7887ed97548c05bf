"""A small classifier trained with numpy and written as ONNX with
onnx.helper — how Sedge makes real, loadable models on a machine with no
model hub (Debian ships no trained classification weights OpenCV can
load). The network is what OpenCV DNN reads: the blob of
cv2.dnn.blobFromImage (1x3xHxW, scaled, BGR unless swap_rb) -> optional
mean over the channels (grey images) -> Flatten -> Gemm -> Relu -> Gemm ->
Softmax. Training sees exactly that blob, made the same way.
"""

import numpy as np


def blob(image_bgr, size, scale):
    """The input OpenCV DNN makes of an image: resized (bilinear), scaled,
    channels first, flattened."""
    import cv2
    resized = cv2.resize(image_bgr, size, interpolation=cv2.INTER_LINEAR)
    return (resized.astype(np.float32) * scale).transpose(2, 0, 1).reshape(-1)


def train(x, y, classes, hidden=64, epochs=8, lr=0.1, batch=128, seed=7, grey=False):
    """Softmax regression (hidden=0) or one hidden layer, minibatch SGD
    with momentum. x: N x (3*H*W) blobs (or N x (H*W) when grey: the mean
    of the channels, which the graph computes). Returns the layers."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    sizes = [d] + ([hidden] if hidden else []) + [classes]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers.append([rng.normal(0, np.sqrt(2.0 / a), (b, a)).astype(np.float32),
                       np.zeros(b, np.float32)])
    velocity = [[np.zeros_like(w), np.zeros_like(b)] for w, b in layers]
    onehot = np.eye(classes, dtype=np.float32)[y]
    for epoch in range(epochs):
        order = rng.permutation(n)
        rate = lr * (0.5 ** (epoch // 3))
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            acts = [x[idx]]
            for i, (w, b) in enumerate(layers):
                z = acts[-1] @ w.T + b
                acts.append(np.maximum(z, 0) if i < len(layers) - 1 else z)
            p = softmax(acts[-1])
            grad = (p - onehot[idx]) / len(idx)
            for i in reversed(range(len(layers))):
                w, b = layers[i]
                gw, gb = grad.T @ acts[i], grad.sum(0)
                if i:
                    grad = (grad @ w) * (acts[i] > 0)
                velocity[i][0] = 0.9 * velocity[i][0] - rate * gw
                velocity[i][1] = 0.9 * velocity[i][1] - rate * gb
                layers[i][0] = w + velocity[i][0]
                layers[i][1] = b + velocity[i][1]
    return layers


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def predict(layers, x):
    a = x
    for i, (w, b) in enumerate(layers):
        a = a @ w.T + b
        if i < len(layers) - 1:
            a = np.maximum(a, 0)
    return softmax(a)


def export(layers, path, width, height, grey=False):
    """Write the network as an ONNX file OpenCV DNN 4.6 reads (opset 11)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits = [], []
    current = "input"
    if grey:
        nodes.append(helper.make_node("ReduceMean", [current], ["grey"], axes=[1], keepdims=1))
        current = "grey"
    nodes.append(helper.make_node("Flatten", [current], ["flat"], axis=1))
    current = "flat"
    for i, (w, b) in enumerate(layers):
        inits += [numpy_helper.from_array(w, "w%d" % i), numpy_helper.from_array(b, "b%d" % i)]
        out = "z%d" % i
        nodes.append(helper.make_node("Gemm", [current, "w%d" % i, "b%d" % i], [out], transB=1))
        current = out
        if i < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [current], ["r%d" % i]))
            current = "r%d" % i
    nodes.append(helper.make_node("Softmax", [current], ["scores"], axis=1))
    graph = helper.make_graph(
        nodes, "tinynet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, layers[-1][0].shape[0]])],
        inits)
    model = helper.make_model(graph, producer_name="sedge-tinynet",
                              opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)
