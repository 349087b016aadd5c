"""The container inventory: the map's changes as tenures, and tenures replayed into a map for files read later."""

from __future__ import annotations

import dataclasses

from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.enrich.inventory import InventoryRecorder, Tee, replay
from eyes_devine.records import ContainerInfo, ContainerTenure, PublishedPort
from tests.enrich.test_attribution import CLIENT, REUSER, WEB, exchange


def recorded() -> tuple[InventoryRecorder, list[ContainerTenure]]:
    emitted: list[ContainerTenure] = []
    return InventoryRecorder(emitted.append, "edge"), emitted


def test_a_container_seen_then_gone_is_one_tenure_emitted_open_then_closed() -> None:
    recorder, emitted = recorded()
    recorder.replace_all([WEB], 100.0)
    recorder.remove(WEB.id, 200.0)
    assert emitted == [ContainerTenure(WEB, 100.0, None, "edge"), ContainerTenure(WEB, 100.0, 200.0, "edge")]


def test_a_re_listing_that_changes_nothing_emits_nothing() -> None:
    recorder, emitted = recorded()
    recorder.replace_all([WEB, CLIENT], 100.0)
    recorder.replace_all([WEB, CLIENT], 150.0)  # a reconnect to the daemon
    recorder.upsert(WEB, 160.0)  # an event about a container whose addresses did not change
    assert [(t.info.name, t.started, t.ended) for t in emitted] == [("web", 100.0, None), ("client", 100.0, None)]


def test_a_change_ends_one_tenure_and_begins_the_next_at_the_same_time() -> None:
    recorder, emitted = recorded()
    recorder.upsert(WEB, 100.0)
    renamed = dataclasses.replace(WEB, name="web-renamed")
    recorder.upsert(renamed, 200.0)
    assert emitted[1:] == [ContainerTenure(WEB, 100.0, 200.0, "edge"), ContainerTenure(renamed, 200.0, None, "edge")]


def test_a_listing_ends_what_it_no_longer_holds() -> None:
    recorder, emitted = recorded()
    recorder.replace_all([WEB], 100.0)
    recorder.replace_all([REUSER], 400.0)  # the daemon was away when web died
    assert emitted[1:] == [ContainerTenure(WEB, 100.0, 400.0, "edge"), ContainerTenure(REUSER, 400.0, None, "edge")]


def test_adopted_tenures_continue_when_unchanged_and_end_at_the_first_listing_otherwise() -> None:
    emitted: list[ContainerTenure] = []
    left_open = [ContainerTenure(WEB, 10.0, None, "edge"), ContainerTenure(CLIENT, 20.0, None, "edge")]
    recorder = InventoryRecorder(emitted.append, "edge", left_open)
    recorder.replace_all([WEB], 500.0)  # a new run: web still runs as it did, client died meanwhile
    assert emitted == [ContainerTenure(CLIENT, 20.0, 500.0, "edge")]
    assert len(recorder) == 1


def test_an_end_timed_before_the_listing_that_began_the_tenure_ends_it_as_it_began() -> None:
    recorder, emitted = recorded()
    recorder.replace_all([WEB], 100.0)
    recorder.remove(WEB.id, 99.5)  # died while the listing ran: the event's time is earlier
    assert emitted[-1] == ContainerTenure(WEB, 100.0, 100.0, "edge")


def test_the_tee_changes_the_map_and_the_inventory_alike() -> None:
    recorder, emitted = recorded()
    containers = ContainerMap()
    tee = Tee(containers, recorder)
    tee.replace_all(iter([WEB]), 100.0)  # an iterator is read once, for both
    tee.remove(WEB.id, 200.0)
    tee.upsert(REUSER, 300.0)
    assert [x.name for x in containers.current()] == ["reuser"] and len(emitted) == 3


def live_and_replayed(changes) -> tuple[ContainerMap, ContainerMap]:
    """The map live capture kept, and the one replayed from what the recorder emitted meanwhile."""
    recorder, emitted = recorded()
    live = ContainerMap(history_seconds=1e12)
    tee = Tee(live, recorder)
    for change in changes:
        change(tee)
    latest = {(t.info.id, t.started): t for t in emitted}  # as the store keeps them: the closed one replaces the open
    return live, replay(latest.values())


def test_an_address_reused_by_a_later_container_gets_the_right_name_at_each_time() -> None:
    live, replayed = live_and_replayed([
        lambda tee: tee.replace_all([WEB], 100.0),
        lambda tee: tee.remove(WEB.id, 200.0),
        lambda tee: tee.upsert(REUSER, 300.0),
        lambda tee: tee.remove(REUSER.id, 400.0),
    ])
    names = {ts: replayed.attribute(exchange(ts)).attribution.container for ts in (50.0, 150.0, 250.0, 350.0, 450.0)}
    assert names == {50.0: "web", 150.0: "web", 250.0: "reuser", 350.0: "reuser", 450.0: None}
    assert names == {ts: live.attribute(exchange(ts)).attribution.container for ts in names}


def test_changes_at_one_moment_and_a_tenure_that_began_and_ended_then_replay_as_they_happened() -> None:
    live, replayed = live_and_replayed([
        lambda tee: tee.replace_all([WEB], 100.0),
        lambda tee: tee.upsert(dataclasses.replace(WEB, name="web-renamed"), 150.0),  # one tenure ends, one begins
        lambda tee: tee.replace_all([REUSER], 200.0),  # web's address to reuser at one listing
        lambda tee: tee.upsert(CLIENT, 300.0),
        lambda tee: tee.remove(CLIENT.id, 300.0),  # an instant's tenure
    ])
    for ts in (120.0, 150.0, 199.999, 200.0, 250.0):
        assert replayed.attribute(exchange(ts)).attribution == live.attribute(exchange(ts)).attribution
    assert replayed.attribute(exchange(149.0)).attribution.container == "web"
    assert replayed.attribute(exchange(199.0)).attribution.container == "web-renamed"
    assert replayed.attribute(exchange(200.0)).attribution.container == "reuser"
    assert replayed.lookup("172.18.0.5", 300.0) is None


def test_a_replayed_map_forgets_nothing() -> None:
    old = ContainerTenure(WEB, 100.0, 200.0, "edge")
    much_later = ContainerTenure(CLIENT, 1e9, None, "edge")
    assert replay([much_later, old]).attribute(exchange(150.0)).attribution.container == "web"


def test_a_published_port_replays_through_the_host_addresses_given() -> None:
    local = ContainerInfo(id="d" * 64, name="local", image="x", published=(PublishedPort("", 9000, 80),))
    replayed = replay([ContainerTenure(local, 100.0, None, "edge")], host_addresses=["192.168.1.20"])
    assert replayed.attribute(exchange(150.0, server="192.168.1.20", port=9000)).attribution.container == "local"
    assert replayed.attribute(exchange(150.0, server="192.168.1.21", port=9000)).attribution.container is None
