"""The GPIO connector on a real gpiochip: the kernel's gpio-sim or
gpio-mockup where the machine has one. Without one (a kernel built
without GPIOLIB, no loadable modules) the test skips and says so; the
topic logic is tested either way by tests/unit/test_connector_gpio.c
against libgpiod's calls behind a seam."""
import glob
import json
import subprocess

import pytest

from connectors_helpers import connector_group
from groups_helpers import deploy_ok


def chip():
    chips = sorted(glob.glob("/dev/gpiochip*"))
    if not chips:
        pytest.skip("no /dev/gpiochip* here: this kernel has no GPIO support loaded "
                    "(gpio-sim and gpio-mockup need CONFIG_GPIOLIB and a loadable module)")
    return chips[0]


def test_outputs_and_inputs_through_a_gpiochip(make_sedge):
    dev = chip()
    sedge = make_sedge()
    deploy_ok(sedge, connector_group(
        [{"name": "pins", "type": "gpio",
          "parameters": {"chip": dev, "input_gpios": "0", "output_gpios": "1H"},
          "resources": [{"type": "device", "path": dev, "access": "rw"}]}],
        [("thing:t2", "gpio/+/+/read", "connector:pins"),
         ("thing:t2", "gpio/+/+/write", "connector:pins"),
         ("connector:pins", "gpio/#", "thing:t1")]))
    reader = sedge.client("t1")
    reader.subscribe("gpio/#", qos=1)
    sender = sedge.client("t2")
    sender.publish("gpio/edge-core/1/write", b"0", qos=1)
    m = reader.get()
    assert (m.topic, m.payload) == ("gpio/edge-core/1/state", b"0")
    sender.publish("gpio/edge-core/0/write", b"1", qos=1)
    m = reader.get()
    assert m.topic == "gpio/edge-core/error"
    assert json.loads(m.payload)["error"] == "Invalid GPIO operation"
    out = subprocess.run(["gpioget", dev, "1"], capture_output=True, text=True)
    assert out.stdout.strip() in ("", "0"), out
