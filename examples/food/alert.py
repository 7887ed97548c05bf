#!/usr/bin/python3
"""food-alert: the food demo's function. It receives the classifier's
predictions (routed from connector:food on gg/inference/food) and turns a
confident one into an alert on food/alerts/LABEL, which the group's routes
send to the dashboard thing and the cloud. The threshold is its config
("min_score", default 0.8)."""
import json
import os
import sys

try:
    import sedge
except ImportError:  # run from the repository: use its sdk/python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "sdk", "python"))
    import sedge

MIN_SCORE = float(sedge.config().get("min_score", 0.8))


def handle(topic, payload):
    prediction = json.loads(payload)
    results = prediction.get("inference-results") or []
    if not results or results[0]["Score"] < MIN_SCORE:
        return b""
    best = results[0]
    alert = {"food": best["Label"], "score": round(best["Score"], 3),
             "image": prediction.get("id"), "at": prediction.get("timestamp"),
             "model": prediction.get("model_sha256", "")[:12]}
    sedge.publish("food/alerts/" + best["Label"], json.dumps(alert).encode(), qos=1)
    return b""


if __name__ == "__main__":
    try:
        sedge.run(handle)
    except sedge.SedgeError as e:
        sys.exit("food-alert: %s" % e.message)
