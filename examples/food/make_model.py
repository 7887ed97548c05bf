#!/usr/bin/python3
"""Make the food demo's model: burger / salad / other.

A DEMO MODEL: it is trained here, in seconds, on pictures this script
draws (a burger is stacked buns and a patty on a plate, a salad a bowl of
green leaves with tomatoes, anything else is other). Its accuracy on real
photographs is not the point; the pipeline is real: the archive it writes
is a model resource like any other (ONNX + labels.txt, fetched, checked
against its SHA-256, unpacked read-only), run by the image-classification
connector with OpenCV DNN. To use a real model, put your .onnx and its
labels.txt in a tar.gz instead and give its sha256 (README.md).

    make_model.py OUT_DIR [--images N]

writes OUT_DIR/food-model.tar.gz, OUT_DIR/images/ (N sample pictures for
the connector's directory source) and prints the archive's sha256.
"""

import argparse
import hashlib
import io
import os
import sys
import tarfile

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinynet  # noqa: E402

LABELS = ["burger", "salad", "other"]
SIZE = 64          # drawn pictures
INPUT = (32, 32)   # the model's input
SCALE = 1.0 / 255


def jitter(rng, color, amount=25):
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)


def background(rng):
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = jitter(rng, (rng.integers(60, 200),) * 3, 40)
    return img


def burger(rng):
    img = background(rng)
    cx, cy = SIZE // 2 + rng.integers(-6, 7), SIZE // 2 + rng.integers(-4, 5)
    w = rng.integers(18, 26)
    cv2.circle(img, (cx, cy + 4), w + 6, jitter(rng, (235, 235, 235), 10), -1)   # plate
    cv2.ellipse(img, (cx, cy + 10), (w, 5), 0, 0, 360, jitter(rng, (70, 150, 210)), -1)
    cv2.ellipse(img, (cx, cy + 4), (w + 2, 5), 0, 0, 360, jitter(rng, (30, 45, 80)), -1)
    cv2.ellipse(img, (cx, cy), (w + 3, 3), 0, 0, 360, jitter(rng, (40, 180, 60)), -1)
    cv2.ellipse(img, (cx, cy - 3), (w + 1, 3), 0, 0, 360, jitter(rng, (40, 200, 230)), -1)
    cv2.ellipse(img, (cx, cy - 6), (w, 9), 0, 180, 360, jitter(rng, (60, 140, 205)), -1)
    return img


def salad(rng):
    img = background(rng)
    cx, cy = SIZE // 2 + rng.integers(-6, 7), SIZE // 2 + rng.integers(-6, 7)
    r = rng.integers(20, 28)
    cv2.circle(img, (cx, cy), r, jitter(rng, (240, 240, 240), 10), -1)          # bowl
    for _ in range(rng.integers(25, 45)):
        a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0, r - 4)
        p = (int(cx + d * np.cos(a)), int(cy + d * np.sin(a)))
        green = jitter(rng, (40, rng.integers(120, 200), 40), 30)
        cv2.ellipse(img, p, (rng.integers(2, 6), rng.integers(1, 4)), rng.uniform(0, 180),
                    0, 360, green, -1)
    for _ in range(rng.integers(2, 6)):
        a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0, r - 6)
        p = (int(cx + d * np.cos(a)), int(cy + d * np.sin(a)))
        cv2.circle(img, p, rng.integers(2, 4), jitter(rng, (40, 40, 210)), -1)
    return img


def other(rng):
    img = background(rng)
    for _ in range(rng.integers(2, 8)):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        p1 = tuple(int(v) for v in rng.integers(0, SIZE, 2))
        p2 = tuple(int(v) for v in rng.integers(0, SIZE, 2))
        if kind == 0:
            cv2.rectangle(img, p1, p2, color, -1)
        elif kind == 1:
            cv2.line(img, p1, p2, color, int(rng.integers(1, 6)))
        else:
            cv2.circle(img, p1, int(rng.integers(3, 20)), color, -1)
    return img


DRAW = [burger, salad, other]


def noisy(rng, img):
    return np.clip(img.astype(np.int16) + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)


def picture(rng, label):
    return noisy(rng, DRAW[label](rng))


def dataset(rng, n):
    labels = rng.integers(0, len(LABELS), n)
    images = [picture(rng, int(k)) for k in labels]
    return images, labels


def make(out, n_images=12, n_train=3000):
    """Write out/food-model.tar.gz and out/images/; (sha256, accuracy)."""
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    rng = np.random.default_rng(2026)
    images, labels = dataset(rng, n_train)
    x = np.stack([tinynet.blob(im, INPUT, SCALE) for im in images])
    layers = tinynet.train(x, labels, len(LABELS), hidden=32, epochs=9, lr=0.01)
    test_images, test_labels = dataset(np.random.default_rng(99), 300)
    xt = np.stack([tinynet.blob(im, INPUT, SCALE) for im in test_images])
    accuracy = float((tinynet.predict(layers, xt).argmax(1) == test_labels).mean())
    onnx_path = os.path.join(out, "model.onnx")
    tinynet.export(layers, onnx_path, INPUT[0], INPUT[1])
    archive = os.path.join(out, "food-model.tar.gz")
    with tarfile.open(archive, "w:gz") as t:
        t.add(onnx_path, "model.onnx")
        data = ("\n".join(LABELS) + "\n").encode()
        info = tarfile.TarInfo("labels.txt")
        info.size = len(data)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
    os.unlink(onnx_path)
    demo = np.random.default_rng(5)
    for i in range(n_images):
        label = i % len(LABELS)
        cv2.imwrite(os.path.join(out, "images", "%02d-%s.jpg" % (i, LABELS[label])),
                    picture(demo, label))
    with open(archive, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    return sha, accuracy


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--train", type=int, default=3000)
    args = ap.parse_args()
    sha, accuracy = make(args.out, args.images, args.train)
    print("accuracy on drawn test pictures: %.3f" % accuracy, file=sys.stderr)
    print(sha)


if __name__ == "__main__":
    main()
