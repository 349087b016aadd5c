"""Live capture: one AsyncSniffer per interface, raw frames into the engine, sniffer health."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from eyes_devine.adapters.capture import CaptureError, LiveCapture
from eyes_devine.app.pipeline import LivePipeline, Stages
from eyes_devine.config import port_filter
from tests.support.netns import sh
from tests.support.records import Collected
from tests.support.requirements import require_binary
from tests.support.scenarios import wait_for_port

pytestmark = pytest.mark.netns

PORT = 8000


def serve(lab, ns):
    lab.processes.append(ns.spawn(sys.executable, "-m", "http.server", str(PORT), "--bind", "0.0.0.0"))
    wait_for_port(ns, PORT)


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_requests_on_a_bridge_become_exchanges_live(lab):
    curl = require_binary("curl", "curl")
    bridge = lab.bridge()
    server = lab.host("s", 2, bridge=bridge)
    client = lab.host("c", 3, bridge=bridge)
    serve(lab, server)
    collected = Collected()
    exchanges = collected.exchanges
    pipeline = LivePipeline((bridge,), port_filter((PORT,)), (PORT,), Stages([collected]))
    pipeline.start()
    try:
        for index in range(5):
            client.run(curl, "-s", "-o", "/dev/null", f"http://{server.address}:{PORT}/?n={index}")
        wait_for(lambda: len(exchanges) == 5)
    finally:
        pipeline.stop()
    assert sorted(x.target for x in exchanges) == [f"/?n={index}" for index in range(5)]
    assert {x.status for x in exchanges} == {200} and {x.interface for x in exchanges} == {bridge}
    assert all(x.client_ip == client.address and x.server_ip == server.address for x in exchanges)
    assert pipeline.engine.counters.packets > 0 and pipeline.queue_drops == 0
    assert pipeline.capture.kernel_drops() == 0


def test_bridge_and_veth_together_record_each_request_once(lab):
    curl = require_binary("curl", "curl")
    bridge = lab.bridge()
    server = lab.host("s", 2, bridge=bridge)
    client = lab.host("c", 3, bridge=bridge)
    serve(lab, server)
    collected = Collected()
    exchanges = collected.exchanges
    pipeline = LivePipeline((bridge, server.link), port_filter((PORT,)), (PORT,), Stages([collected]))
    pipeline.start()
    try:
        for index in range(3):
            client.run(curl, "-s", "-o", "/dev/null", f"http://{server.address}:{PORT}/twice?n={index}")
        wait_for(lambda: len(exchanges) >= 3)
        time.sleep(0.5)
    finally:
        pipeline.stop()
    assert sorted(x.target for x in exchanges) == [f"/twice?n={index}" for index in range(3)]
    assert pipeline.engine.counters.retransmitted_segments > 0, "the second copy was seen and set aside"


def test_only_the_configured_ports_reach_the_engine(lab):
    curl = require_binary("curl", "curl")
    bridge = lab.bridge()
    server = lab.host("s", 2, bridge=bridge)
    client = lab.host("c", 3, bridge=bridge)
    serve(lab, server)
    collected = Collected()
    exchanges = collected.exchanges
    pipeline = LivePipeline((bridge,), port_filter((9999,)), (9999,), Stages([collected]))
    pipeline.start()
    try:
        client.run(curl, "-s", "-o", "/dev/null", f"http://{server.address}:{PORT}/")
        time.sleep(0.5)
    finally:
        pipeline.stop()
    assert exchanges == [] and pipeline.engine.counters.packets == 0


def test_a_removed_interface_is_reported_then_picked_up_again(lab):
    name = lab.name("gone")
    sh("ip", "link", "add", name, "type", "veth", "peer", "name", lab.name("gonep"))
    sh("ip", "link", "set", name, "up")
    capture = LiveCapture((name,), "tcp", lambda *frame: None)
    capture.start()
    try:
        assert capture.status[name].running
        sh("ip", "link", "del", name)
        deadline = time.monotonic() + 10
        events: list[str] = []
        while capture.status[name].running and time.monotonic() < deadline:
            events += capture.check()
            time.sleep(0.1)
        assert not capture.status[name].running
        assert any("stopped" in event for event in events)
        sh("ip", "link", "add", name, "type", "veth", "peer", "name", lab.name("gonep"))
        lab.links.append(name)
        sh("ip", "link", "set", name, "up")
        events = capture.check()
        assert capture.status[name].running and capture.status[name].restarts == 1
        assert f"capture on {name} resumed" in events
    finally:
        capture.stop()


def test_unknown_interface_and_bad_filter_are_one_line_errors():
    with pytest.raises(CaptureError, match="interface nosuch0 does not exist"):
        LiveCapture(("nosuch0",), "tcp", lambda *frame: None).start()
    with pytest.raises(CaptureError, match="illegal port number"):
        LiveCapture(("lo",), "tcp port 99999", lambda *frame: None).start()


def test_without_net_raw_capture_fails_with_the_fix():
    setpriv = require_binary("setpriv", "util-linux")
    probe = ("from eyes_devine.adapters.capture import LiveCapture, CaptureError\n"
             "try:\n    LiveCapture(('lo',), 'tcp', print).start()\n"
             "except CaptureError as error:\n    print(error)\n")
    result = subprocess.run([setpriv, "--bounding-set=-net_raw", "--inh-caps=-net_raw", sys.executable, "-c", probe],
                            capture_output=True, text=True, timeout=60)
    assert "permission denied capturing on lo" in result.stdout and "setcap.sh" in result.stdout
