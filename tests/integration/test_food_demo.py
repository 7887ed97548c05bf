"""The seed's food demo (examples/food, issue 17 part 3), as its README
runs it: make_group.py makes the demo model, the camera pictures and the
group; sedgectl deploys it; predictions come on gg/inference/food from the
camera directory on a timer and on demand from gg/inference/food/trigger;
the food-alert function turns a confident one into food/alerts/LABEL. Driven
with mosquitto clients and paho through sedged's routes.
"""

import json
import os
import subprocess

import pytest

import functions_helpers as fh
from functions_fixtures import public_tmp  # noqa: F401
from groups_helpers import deploy_ok

pytest.importorskip("cv2")
pytest.importorskip("onnx")

HERE = os.path.dirname(os.path.abspath(__file__))
FOOD = os.path.join(HERE, "..", "..", "examples", "food")


@pytest.fixture(scope="module")
def demo():
    out = fh.public_dir("sedge-food-")
    r = subprocess.run(["/usr/bin/python3", os.path.join(FOOD, "make_group.py"), out,
                        "--interval-ms", "300"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(r.stdout.strip()) as f:
        yield {"dir": out, "group": json.load(f)}
    subprocess.run(["rm", "-rf", out])


def test_food_demo_end_to_end(make_sedge, demo):
    sedge = make_sedge(name=os.path.join(demo["dir"], "sedge"))
    deploy_ok(sedge, demo["group"])
    # The dashboard, as mosquitto_sub: timed predictions of the pictures.
    dashboard = sedge.mosquitto_sub("-h", "127.0.0.1", "-p", sedge.port, "-i", "dashboard",
                                    "-q", "1", "-t", "gg/inference/food", "-t", "food/alerts/#",
                                    "-v")
    dashboard.wait_subscribed()
    line = dashboard.wait_line(lambda l: l.startswith("gg/inference/food {"))
    doc = json.loads(line.split(" ", 1)[1])
    assert doc["inference-type"] == "image-classification" and doc["id"].endswith(".jpg"), doc
    assert doc["inference-results"][0]["Label"] in ("burger", "salad", "other")
    # On demand: the camera sends a burger picture with mosquitto_pub.
    burger = sorted(p for p in os.listdir(os.path.join(demo["dir"], "images"))
                    if "burger" in p)[0]
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(sedge.port), "-i", "camera",
                    "-q", "1", "-t", "gg/inference/food/trigger",
                    "-f", os.path.join(demo["dir"], "images", burger)], check=True, timeout=10)
    got = dashboard.wait_line(lambda l: l.startswith("gg/inference/food {")
                              and '"id"' not in l)
    assert json.loads(got.split(" ", 1)[1])["inference-results"][0]["Label"] == "burger", got
    # The function's alerts reach the dashboard too.
    alert = dashboard.wait_line(lambda l: l.startswith("food/alerts/"))
    body = json.loads(alert.split(" ", 1)[1])
    assert alert.split(" ", 1)[0] == "food/alerts/" + body["food"] and body["score"] >= 0.8, alert
    # And a paho client may ask with {} (the next camera picture, now).
    camera = sedge.client("camera")
    camera.publish("gg/inference/food/trigger", b"{}", qos=1)
    dashboard.wait_line(lambda l: l.startswith("gg/inference/food {") and '.jpg"' in l)


def test_make_group_takes_a_users_own_model(demo, tmp_path):
    out = str(tmp_path / "mine")
    r = subprocess.run(["/usr/bin/python3", os.path.join(FOOD, "make_group.py"), out,
                        "--model", os.path.join(demo["dir"], "food-model.tar.gz"),
                        "--labels", "a,b,c", "--input-size", "32x32", "--sandbox", "no"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(r.stdout.strip()) as f:
        group = json.load(f)
    model = group["resources"][0]
    assert model["url"].endswith("food-model.tar.gz") and len(model["sha256"]) == 64
    assert group["connectors"][0]["parameters"]["labels"] == ["a", "b", "c"]
    assert group["connectors"][0]["isolation"] == "none"
