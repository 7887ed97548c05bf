"""Secrets whose value comes from the cloud (issue 17): a secret resource
with a cloud_topic instead of a value; the cloud link watches the topic and
each message there is the secret's new value, readable through the SDK only
by the functions that list it, never written to the store."""

import os
import uuid

import pytest

import functions_helpers as fh
from cloud import cloud_sedge, wait_spool
from conftest import wait_for
from functions_fixtures import behave, public_tmp  # noqa: F401
from groups_helpers import deploy_ok

pytest_plugins = ("cloud",)
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="functions run as another user")

TOPIC = "edge/secrets/api-key"


def test_a_secret_from_the_cloud_reaches_the_function_and_rotates(make_sedge, cloud, public_tmp):
    s = cloud_sedge(make_sedge, cloud, name=os.path.join(public_tmp, "sedge"))
    wait_spool(s, lambda st: st["state"] == "connected")
    doc = fh.group([behave("holder", run_as="1000:1000", lifecycle="long-lived",
                           resources=[{"id": "api-key"}])])
    doc["resources"] = [{"id": "api-key", "type": "secret", "cloud_topic": TOPIC}]
    deploy_ok(s, doc)
    before = fh.invoke_ok(s, "holder", "secret:api-key")
    assert before.startswith("error: not_found:") and "has not come from the cloud" in before
    app = cloud.client("cloud-app")
    value = "from-the-cloud-" + uuid.uuid4().hex

    def read_back(expected):
        def check():
            if fh.invoke_ok(s, "holder", "secret:api-key") == expected:
                return True
            app.publish(TOPIC, expected.encode(), qos=1)
            return False
        wait_for(check, what="the secret %s at the function" % expected)
    read_back(value)
    # Nowhere at rest, nor in what sedged says.
    fh.assert_not_in_files(str(s.data_dir), value)
    assert value not in s.log()
    # A new value on the topic replaces it.
    read_back(value + "-2")
