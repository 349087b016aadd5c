"""`-i any` (and ThreatWatch's NETWORK_INTERFACE=any): every interface at once, each request recorded once."""

from __future__ import annotations

import pytest

from tests.support.load import hammer
from tests.support.service import stored, wait_until

pytestmark = pytest.mark.docker


def test_network_interface_any_records_each_request_to_a_container_once(service, web, docker_engine):
    run = service(env={**docker_engine.env, "NETWORK_INTERFACE": "any"})
    assert run.wait_for("capturing")["interfaces"] == "any"
    run.wait_for("Docker: connected")
    assert hammer(web.address, 80, [f"/any/{index}" for index in range(300)], threads=4) == 300
    count = "SELECT count(*), count(DISTINCT target) FROM exchanges WHERE target LIKE '/any/%'"
    wait_until(lambda: stored(run.db, count)[0] == (300, 300), 30, "300 stored")
    assert run.stop() == 0
    assert stored(run.db, count)[0] == (300, 300), "seen on the bridge and on the veth, recorded once"
    owners = stored(run.db, "SELECT DISTINCT container, interface FROM exchanges WHERE target LIKE '/any/%'")
    assert {container for container, _ in owners} == {web.name}
    assert {interface for _, interface in owners} <= {"docker0"} | {
        name for (name,) in stored(run.db, "SELECT DISTINCT interface FROM exchanges") if name.startswith("veth")}
    final = run.messages("stopped")[0]
    assert final["kernel_drops"] == 0 and final["store_drops"] == 0

