#!/usr/bin/python3
"""The image-classification benchmark's models and pictures.

    ml_model.py OUT_DIR

OUT_DIR/conv.tar.gz: a small convolutional network of a camera model's
shape, 224x224x3 in, 1000 classes out (Conv 3x3/2 x16, Conv 3x3/2 x32,
Conv 3x3/2 x64, Conv 3x3/2 x128, each with Relu, global average pool,
Gemm 1000, Softmax), random weights: its speed is the point, not its
answers. OUT_DIR/food.tar.gz: the food demo's model (examples/food).
OUT_DIR/images/*.jpg: 8 camera-sized pictures (640x480). Prints, one a
line: NAME ARCHIVE SHA256 MODEL_FILE_BYTES INPUT.
"""

import hashlib
import os
import sys
import tarfile

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "food"))


def conv_net(path):
    rng = np.random.default_rng(1)
    nodes, inits = [], []
    current, channels = "input", 3
    for i, out in enumerate([16, 32, 64, 128]):
        w = rng.normal(0, np.sqrt(2 / (9 * channels)), (out, channels, 3, 3)).astype(np.float32)
        inits += [numpy_helper.from_array(w, "cw%d" % i),
                  numpy_helper.from_array(np.zeros(out, np.float32), "cb%d" % i)]
        nodes.append(helper.make_node("Conv", [current, "cw%d" % i, "cb%d" % i], ["c%d" % i],
                                      kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", ["c%d" % i], ["r%d" % i]))
        current, channels = "r%d" % i, out
    nodes.append(helper.make_node("GlobalAveragePool", [current], ["pool"]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], axis=1))
    inits += [numpy_helper.from_array(rng.normal(0, 0.05, (1000, channels)).astype(np.float32),
                                      "fw"),
              numpy_helper.from_array(np.zeros(1000, np.float32), "fb")]
    nodes.append(helper.make_node("Gemm", ["flat", "fw", "fb"], ["logits"], transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["scores"], axis=1))
    graph = helper.make_graph(
        nodes, "benchconv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1000])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)


def pack(onnx_path, archive):
    with tarfile.open(archive, "w:gz") as t:
        t.add(onnx_path, "model.onnx")
    with open(archive, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    out = os.path.abspath(sys.argv[1])
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    conv = os.path.join(out, "conv.onnx")
    conv_net(conv)
    sha = pack(conv, os.path.join(out, "conv.tar.gz"))
    print("conv %s %s %d 224x224" % (os.path.join(out, "conv.tar.gz"), sha, os.path.getsize(conv)))
    import make_model
    food_sha, _ = make_model.make(os.path.join(out, "food"), n_images=0, n_train=1500)
    with tarfile.open(os.path.join(out, "food", "food-model.tar.gz")) as t:
        size = t.getmember("model.onnx").size
    print("food %s %s %d 32x32" % (os.path.join(out, "food", "food-model.tar.gz"), food_sha, size))
    rng = np.random.default_rng(3)
    for i in range(8):
        img = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
        cv2.imwrite(os.path.join(out, "images", "%d.jpg" % i), img,
                    [cv2.IMWRITE_JPEG_QUALITY, 90])


if __name__ == "__main__":
    main()
