#!/usr/bin/python3
"""Write the seed corpora of the JSON fuzz targets:

  corpus/shadow_doc   two JSON texts split by a 0 byte, a shadow section and
                      a patch (nested merges, null deletions, arrays, keys
                      named "timestamp", depth 6 and 7);
  corpus/group_parse  group documents, valid ones of every section and
                      endpoint kind and a few with problems.

Standard library only.

    tests/fuzz/make_json_corpus.py [CORPUS_DIR]   (default: corpus beside this file)
"""
import json
import os
import sys


def nested(levels, leaf=1):
    value = leaf
    for i in range(levels, 0, -1):
        value = {f"k{i}": value}
    return value


SHADOW_PAIRS = {
    "empty": ({}, {}),
    "add_keys": ({"color": "red"}, {"on": True, "level": 3}),
    "replace_scalar": ({"color": "red", "level": 1}, {"color": "blue"}),
    "null_deletes": ({"a": 1, "b": {"c": 2}}, {"a": None, "missing": None}),
    "nested_null": ({"light": {"color": "red", "level": {"min": 1, "max": 9}}},
                    {"light": {"color": None, "level": {"max": None, "step": 2}}}),
    "nested_merge": ({"a": {"b": {"c": 1, "d": 2}, "e": 3}}, {"a": {"b": {"c": 10, "x": 4}}}),
    "arrays_whole": ({"list": [1, 2, 3], "objs": [{"a": 1}]}, {"list": [None, 9], "objs": []}),
    "object_over_scalar": ({"a": 5, "b": [1, 2]}, {"a": {"x": 7}, "b": {"y": None, "z": 1}}),
    "scalar_over_object": ({"a": {"b": 1, "c": {"d": 2}}}, {"a": "flat"}),
    "empty_object_patch": ({"a": 1, "b": {"c": 1}}, {"a": {}, "b": {}}),
    "timestamp_key": ({"a": {"timestamp": 5, "b": 1}}, {"a": {"timestamp": None, "t": {"timestamp": 1}}}),
    "delta_nested": ({"light": {"color": "red", "level": 3}, "fan": 1},
                     {"light": {"color": "blue", "level": 3}, "fan": 1, "extra": True}),
    "numbers": ({"i": 1, "r": 1.0, "big": 9223372036854775807, "neg": -0.0},
                {"i": 1.0, "r": 1, "big": -9223372036854775808, "e": 1e308}),
    "strings": ({"s": "caf\u00e9", "u": "\u2603", "": "empty key"}, {"s": "cafe", "": None}),
    "depth6": (nested(6), nested(5, [])),
    "depth7": (nested(7), nested(7, None)),
    "scalars": (1, "text"),
    "array_top": ([1, {"a": 2}], {"a": [3]}),
}

THINGS = [{"name": "lamp"}, {"name": "switch"}, {"name": "old.sensor:7"}]
FUNCTIONS = [{"name": "alarm", "exec": ["/usr/bin/alarm", "--loud"], "lifecycle": "long-lived",
              "timeout_s": 3, "memory_mb": 64, "max_instances": 2, "max_queue": 100,
              "run_as": "1000:1000", "isolation": "sandbox", "env": {"LEVEL": "high"},
              "encoding": "json", "sysfs": False, "network": True,
              "resources": [{"type": "device", "path": "/dev/ttyUSB0", "access": "rw"},
                            {"type": "volume", "source": "/var/data", "dest": "/data",
                             "access": "ro"}]}]

GROUPS = {
    "minimal": {"group": "kitchen"},
    "routes_every_kind": {
        "group": "plant-1", "things": THINGS, "functions": FUNCTIONS,
        "connectors": [{"name": "modbus", "type": "metrics"}], "resources": [{"name": "usb0"}],
        "revoked": ["old.sensor:7"],
        "shadows": {"sync": [{"thing": "lamp", "names": ["cfg"], "classic": True,
                              "direction": "between_device_and_cloud"}]},
        "routes": [
            {"source": "thing:lamp", "filter": "lamp/status", "target": "cloud", "qos": 1},
            {"source": "thing:*", "filter": "alarm/#", "target": "function:alarm", "qos": 0},
            {"source": "function:alarm", "filter": "siren/+", "target": "thing:switch"},
            {"source": "connector:modbus", "filter": "mb/+/value/#", "target": "thing:*"},
            {"source": "cloud", "filter": "cmd/lamp", "target": "connector:modbus"},
            {"source": "thing:lamp", "filter": "$aws/things/lamp/shadow/#", "target": "shadow"},
            {"source": "thing:*", "filter": "$aws/things/+/shadow/name/+/#", "target": "shadow"},
            {"source": "shadow", "filter": "$aws/things/+/shadow/update/delta",
             "target": "thing:*"},
            {"source": "cloud", "filter": "#", "target": "thing:lamp"},
            {"source": "thing:switch", "filter": "+/+/+", "target": "cloud"},
            {"source": "thing:switch", "filter": "/", "target": "cloud"},
        ]},
    "shadow_only": {
        "group": "g", "things": [{"name": "t1"}, {"name": "t2"}],
        "routes": [{"source": "thing:t1", "filter": "$aws/things/t1/shadow/#", "target": "shadow"},
                   {"source": "thing:t2", "filter": "shadows/t2/+", "target": "shadow"}]},
    "problems": {
        "group": "", "extra": 1, "things": [{"name": "lamp"}, {"name": "lamp"}, {"name": "a b"}],
        "functions": [{"name": "f", "run_as": "-1:-1", "resources": [
            {"type": "volume", "source": "/a", "dest": "/x/../proc"}]}],
        "routes": [{"source": "thing:lamp", "filter": "a", "target": "function:alarm"},
                   {"source": "cloud", "filter": "#/a", "target": "thing:lamp", "qos": 3},
                   {"source": "cloud", "filter": "$share/g/a", "target": "thing:*"},
                   {"source": "shadow", "filter": "a", "target": "shadow"}],
        "revoked": [1], "shadows": {"sync": [{"thing": "lamp", "direction": "up"}]}},
    "unknown_key_newline": {"group": "g", "a\nb": 1},
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    shadow_dir = os.path.join(root, "shadow_doc")
    group_dir = os.path.join(root, "group_parse")
    os.makedirs(shadow_dir, exist_ok=True)
    os.makedirs(group_dir, exist_ok=True)
    for name, (section, patch) in SHADOW_PAIRS.items():
        data = json.dumps(section).encode() + b"\0" + json.dumps(patch).encode()
        with open(os.path.join(shadow_dir, name + ".bin"), "wb") as f:
            f.write(data)
    for name, doc in GROUPS.items():
        with open(os.path.join(group_dir, name + ".json"), "wb") as f:
            f.write(json.dumps(doc, indent=1).encode())
    with open(os.path.join(group_dir, "invalid_json.json"), "wb") as f:
        f.write(b'{\n  "group": "g",\n  oops\n}')
    print(f"wrote {len(SHADOW_PAIRS)} seeds to {shadow_dir}, "
          f"{len(GROUPS) + 1} to {group_dir}")


if __name__ == "__main__":
    main()
