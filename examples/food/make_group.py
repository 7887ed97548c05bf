#!/usr/bin/python3
"""Make the food demo's deployable group in OUT_DIR: the demo model
(make_model.py: a toy trained on drawn pictures, see its header), sample
pictures for the camera directory, and OUT_DIR/group.json, whose model
resource names the archive by path and SHA-256.

    make_group.py OUT_DIR [--model ARCHIVE.tar.gz] [--labels a,b,c] [--camera /dev/video0]

--model uses your own archive (an .onnx and labels.txt) instead of the
demo's; give its input size and scale with --input-size and --scale.
--camera takes the pictures from a V4L2 camera (a device resource of the
group, owner group auto, listed by the connector) instead of the directory.
The group (README.md draws it):
  connector:food   image-classification: every interval_ms the next picture
                   of the camera directory -> gg/inference/food; a message on
                   gg/inference/food/trigger ({} or an image) -> the same topic
  function:food-alert   a confident prediction -> food/alerts/LABEL
  things: camera (sends triggers), dashboard (reads predictions and alerts)
  routes: predictions and alerts to the dashboard, alerts to the cloud.
With sedged running as root the connector and the function are sandboxed
(the pictures are a read-only volume at /camera); otherwise they run with
isolation none and read the pictures where they are.
"""

import argparse
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--model", help="your own model archive (tar.gz or zip)")
    ap.add_argument("--labels", default="burger,salad,other")
    ap.add_argument("--input-size", default="32x32")
    ap.add_argument("--scale", type=float, default=1.0 / 255)
    ap.add_argument("--interval-ms", type=int, default=2000)
    ap.add_argument("--sandbox", choices=["auto", "yes", "no"], default="auto")
    ap.add_argument("--camera", help="a V4L2 camera's device, e.g. /dev/video0")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    os.chmod(out, 0o755)
    if args.model:
        archive = os.path.abspath(args.model)
        with open(archive, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        os.makedirs(os.path.join(out, "images"), exist_ok=True)
    else:
        import make_model
        sha, accuracy = make_model.make(out)
        archive = os.path.join(out, "food-model.tar.gz")
        print("demo model: accuracy %.2f on drawn pictures (a toy: see make_model.py)"
              % accuracy, file=sys.stderr)
    images = os.path.join(out, "images")
    for path in (out, images):
        os.chmod(path, 0o755)
    sandbox = os.geteuid() == 0 if args.sandbox == "auto" else args.sandbox == "yes"
    width, height = (int(v) for v in args.input_size.split("x"))
    connector = {
        "name": "food", "type": "image-classification",
        "parameters": {
            "model": "food-model", "labels": args.labels.split(","),
            "input_size": [width, height], "scale": args.scale, "mean": [0, 0, 0],
            "swap_rb": False, "top_k": 3, "score_threshold": 0,
            "trigger_topic": "gg/inference/food/trigger", "result_topic": "gg/inference/food",
            "source": "/camera" if sandbox else images, "interval_ms": args.interval_ms}}
    alert = {"name": "food-alert", "exec": ["/usr/bin/python3", os.path.join(HERE, "alert.py")],
             "code": HERE, "lifecycle": "long-lived", "encoding": "binary",
             "config": {"min_score": 0.8}}
    resources = [{"id": "food-model", "type": "model", "url": "file://" + archive,
                  "sha256": sha, "dest": "/models/food"}]
    if args.camera:
        connector["parameters"]["source"] = args.camera
        resources.append({"id": "camera", "type": "device", "path": args.camera,
                          "owner": {"group": "auto"}})
        connector["resources"] = [{"id": "camera", "access": "rw"}]
    elif sandbox:
        resources.append({"id": "camera", "type": "volume", "source": images, "dest": "/camera"})
        connector["resources"] = [{"id": "camera", "access": "ro"}]
    if not sandbox:
        connector["isolation"] = "none"
        alert["isolation"] = "none"
    group = {
        "group": "food",
        "things": [{"name": "camera"}, {"name": "dashboard"}],
        "resources": resources,
        "connectors": [connector],
        "functions": [alert],
        "routes": [
            {"source": "thing:camera", "filter": "gg/inference/food/trigger",
             "target": "connector:food"},
            {"source": "connector:food", "filter": "gg/inference/food", "target": "thing:dashboard"},
            {"source": "connector:food", "filter": "gg/inference/food",
             "target": "function:food-alert"},
            {"source": "function:food-alert", "filter": "food/alerts/#",
             "target": "thing:dashboard"},
            {"source": "function:food-alert", "filter": "food/alerts/#", "target": "cloud"},
        ],
    }
    path = os.path.join(out, "group.json")
    with open(path, "w") as f:
        json.dump(group, f, indent=2)
    print(path)


if __name__ == "__main__":
    main()
