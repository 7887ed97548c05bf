"""The image-classification connector's capture source (issue 17): a V4L2
camera (/dev/videoN) or an image sequence (/dir/frame_%03d.png), both read
by OpenCV videoio's cv::VideoCapture, kept open between frames.

No camera and no v4l2loopback on a test machine: the image sequence goes
through the same capture code (OpenCV's CAP_IMAGES backend) and proves
that frames flow to results on result_topic with OpenCV's own scores; a
V4L2 device node with no driver behind it (major 81, as a camera that was
unplugged) proves the error results and that the connector keeps
answering; the deployment is refused when the device is not one of the
connector's resources. The model and its helpers are
test_connector_image_classification.py's.
"""

import json
import os
import stat
import subprocess
import uuid

import pytest

from connectors_helpers import status_of
from groups_helpers import deploy, deploy_ok
from test_connector_image_classification import (LABELS, RESULT, TRIGGER, cv2, group, png,
                                                 timed_source)
from test_connector_image_classification import fashion  # noqa: F401 (the trained model)

FOOD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "food")
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="connectors run sandboxed as root")

VIDEO_MAJOR = 81
CAMERA_GID = 47018  # a group no user of this machine is in


def opencv_scores(onnx, image):
    net = cv2.dnn.readNet(onnx)
    colour = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    net.setInput(cv2.dnn.blobFromImage(colour, 1 / 255, (28, 28), (0, 0, 0), False, False))
    return net.forward().reshape(-1)


@pytest.fixture
def camera_node():
    """A V4L2 device node (c 81 N) with no driver behind it: opening it
    fails with ENXIO, as a camera that is not there."""
    path = "/dev/sedge-test-video-%s" % uuid.uuid4().hex[:8]
    os.mknod(path, stat.S_IFCHR | 0o660, os.makedev(VIDEO_MAJOR, 63))
    os.chown(path, 0, CAMERA_GID)
    yield path
    os.unlink(path)


def test_an_image_sequence_flows_through_the_capture_to_results(make_sedge, fashion, tmp_path):
    os.chmod(str(tmp_path), 0o755)
    sedge, reader, docs = timed_source(make_sedge, fashion, tmp_path / "frames",
                                       "frame_%03d.png", "/frames", "/frames/frame_%03d.png", 5)
    expected = [opencv_scores(fashion["onnx"], fashion["images"][i]) for i in range(3)]
    for d in docs:
        assert "error" not in d and d["inference-results"], d
        name, count = d["id"].split("#")
        assert name == "frame_%03d.png", d
        # Frame n of the sequence, which starts over after its third.
        frame = (int(count) - 1) % 3
        for r in d["inference-results"]:
            assert abs(r["Score"] - float(expected[frame][LABELS.index(r["Label"])])) < 1e-4, \
                (d, frame)
    counts = [int(d["id"].split("#")[1]) for d in docs]
    assert counts == sorted(counts) and counts[-1] >= 4, counts  # kept open, round and round
    # {} on the trigger takes a frame now, with the request's id.
    sender = sedge.client("t2")
    sender.publish(TRIGGER, json.dumps({"id": "now"}).encode(), qos=1)
    while True:
        d = json.loads(reader.get().payload)
        if d["id"] == "now":
            assert d["inference-results"], d
            break


def test_a_missing_camera_gets_error_results_and_payloads_still_work(make_sedge, fashion,
                                                                      camera_node):
    sedge = make_sedge()
    doc = group(fashion, {"source": camera_node},
                resources=[{"id": "camera", "access": "rw"}])
    doc["resources"].append({"id": "camera", "type": "device", "path": camera_node,
                             "owner": {"group": "auto"}})
    deploy_ok(sedge, doc)
    reader = sedge.client("t1")
    reader.subscribe(RESULT, qos=1)
    sender = sedge.client("t2")

    def ask(payload):
        sender.publish(TRIGGER, payload, qos=1)
        return json.loads(reader.get_until(RESULT)[-1].payload)

    first = ask(b'{"id": "cam-1"}')
    assert first["inference-results"] == [] and first["id"] == "cam-1", first
    assert "the camera %s cannot be opened" % camera_node in first["error"], first
    right = ask(png(fashion["images"][0]))
    assert right["inference-results"][0]["Label"] == LABELS[fashion["labels"][0]], right
    # Within the backoff the camera is not tried again: the same reason, and when.
    again = ask(b"{}")
    assert camera_node in again["error"] and "next try in" in again["error"], again
    assert ask(png(fashion["images"][1]))["inference-results"]
    assert len(status_of(sedge, "fashion")["instances"]) == 1


def test_a_camera_that_is_not_a_resource_of_the_connector_is_refused(make_sedge, fashion):
    sedge = make_sedge()
    doc = group(fashion, {"source": "/dev/video0", "interval_ms": 1000})
    doc["resources"].append({"id": "camera", "type": "device", "path": "/dev/video0",
                             "owner": {"group": "auto"}})
    r = deploy(sedge, doc)
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert ('connectors[0].parameters.source: "/dev/video0" is not a device resource of the '
            'connector' in r.stdout + r.stderr), (r.stdout, r.stderr)
    doc["connectors"][0]["parameters"]["source"] = "/frames/frame_%s.png"
    r = deploy(sedge, doc)
    assert 'is not an image sequence pattern' in r.stdout + r.stderr, (r.stdout, r.stderr)


def test_the_food_demo_with_a_camera(make_sedge, fashion, camera_node, tmp_path):
    """make_group.py --camera: the device is a resource the connector lists;
    the group deploys, pictures sent still get results, {} asks the camera."""
    out = str(tmp_path / "food")
    os.chmod(str(tmp_path), 0o755)
    r = subprocess.run(["/usr/bin/python3", os.path.join(FOOD, "make_group.py"), out,
                        "--model", fashion["archive"], "--labels", ",".join(LABELS),
                        "--input-size", "28x28", "--interval-ms", "0", "--camera", camera_node],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(r.stdout.strip()) as f:
        doc = json.load(f)
    assert doc["connectors"][0]["parameters"]["source"] == camera_node
    sedge = make_sedge()
    deploy_ok(sedge, doc)
    dashboard = sedge.client("dashboard")
    dashboard.subscribe("gg/inference/food", qos=1)
    camera = sedge.client("camera")
    camera.publish("gg/inference/food/trigger", png(fashion["images"][0]), qos=1)
    got = json.loads(dashboard.get_until("gg/inference/food")[-1].payload)
    assert got["inference-results"][0]["Label"] == LABELS[fashion["labels"][0]], got
    camera.publish("gg/inference/food/trigger", b"{}", qos=1)
    got = json.loads(dashboard.get_until("gg/inference/food")[-1].payload)
    assert camera_node in got["error"] and got["inference-results"] == [], got
