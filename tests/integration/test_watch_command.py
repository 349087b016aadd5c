"""`eyes-devine watch` driven in tmux as a person would: send-keys, capture-pane."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dockerd import DockerEngine
from tests.support.load import get
from tests.support.requirements import require_binary, require_root

pytestmark = pytest.mark.docker

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]


@pytest.fixture
def web(docker_engine: DockerEngine, busybox_image: str) -> Iterator:
    require_root()
    container = docker_engine.client.containers.run(busybox_image, name=f"edt-w{os.getpid() % 1000}", detach=True)
    container.reload()
    container.address = container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    deadline = time.monotonic() + 15
    while True:
        try:
            get(container.address, 80, "/probe", timeout=1)
            break
        except OSError:
            assert time.monotonic() < deadline, "httpd did not start"
            time.sleep(0.1)
    yield container
    container.remove(force=True)


def environment(docker_engine: DockerEngine) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH")
    return {**{key: os.environ[key] for key in keep if key in os.environ}, "TERM": "xterm-256color",
            "DOCKER_HOST": docker_engine.host}


def row_of(lines: list[str], name: str) -> list[str] | None:
    """The container table's row for ``name``: [name, req, 2xx, 3xx, 4xx, 5xx, ...]."""
    for line in lines:
        cells = line.split()
        if cells and cells[0] == name and len(cells) >= 6 and cells[1].replace(",", "").isdigit():
            return cells
    return None


def shows_requests(name: str, count: int):
    def check(lines: list[str]) -> bool:
        row = row_of(lines, name)
        return row is not None and row[1] == str(count)
    return check


def send(web, count: int, marker: str) -> None:
    for index in range(count):
        assert get(web.address, 80, f"/?{marker}={index}") == 200


def test_after_n_requests_the_containers_row_shows_n(docker_engine, web, terminal, tmp_path):
    term = terminal([*EYES_DEVINE, "watch", "-i", "docker0", "--db", str(tmp_path / "w.db")],
                    environment(docker_engine))
    term.wait_for(lambda lines: any("Docker:" in line and "containers" in line for line in lines),
                  what="Docker connected in the header")
    send(web, 25, "standalone")
    lines = term.wait_for(shows_requests(web.name, 25), what=f"{web.name} with 25 requests")
    row = row_of(lines, web.name)
    assert row[:6] == [web.name, "25", "25", "0", "0", "0"]
    assert any("capturing on docker0" in line for line in lines)
    assert sum("/?standalone=" in line for line in lines) >= 5, "the latest exchanges are listed"
    term.keys("C-c")
    term.wait_for(lambda lines: "EXIT=0" in lines, what="exit 0")
    stored = subprocess.run([*EYES_DEVINE, "requests", "--db", str(tmp_path / "w.db"), "--json", "-c", web.name],
                            capture_output=True, text=True, timeout=60)
    assert len(stored.stdout.splitlines()) == 25, "standalone watch persists what it saw"


def test_attach_shows_what_a_running_run_stores_without_privileges(docker_engine, web, terminal, tmp_path):
    db = tmp_path / "data" / "x.db"
    run = subprocess.Popen([*EYES_DEVINE, "run", "-i", "docker0", "--db", str(db)], env=docker_engine.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not db.exists():
            assert run.poll() is None and time.monotonic() < deadline, "run did not start"
            time.sleep(0.1)
        time.sleep(1.0)  # the watcher lists the containers
        setpriv = require_binary("setpriv", "util-linux")
        term = terminal([setpriv, "--bounding-set=-all", "--inh-caps=-all", *EYES_DEVINE, "watch", "--attach",
                         "--db", str(db)], environment(docker_engine), width=60, height=24)
        term.wait_for(lambda lines: any("attached to" in line for line in lines), what="the attached header")
        send(web, 30, "attached")
        lines = term.wait_for(shows_requests(web.name, 30), what=f"{web.name} with 30 requests at 60 columns")
        header = next(line.split() for line in lines if line.split()[:2] == ["container", "req"])
        assert header[:6] == ["container", "req", "2xx", "3xx", "4xx", "5xx"]
        assert row_of(lines, web.name)[:6] == [web.name, "30", "30", "0", "0", "0"]
        assert all(len(line) <= 60 for line in lines)
        term.keys("C-c")
        term.wait_for(lambda lines: "EXIT=0" in lines, what="exit 0")
        assert term.flag("alternate_on") == "0" and term.flag("cursor_flag") == "1", "the terminal is restored"
    finally:
        run.terminate()
        assert run.wait(30) == 0, run.stderr.read()


def test_without_capture_privileges_watch_says_so_in_one_line(docker_engine, tmp_path):
    setpriv = require_binary("setpriv", "util-linux")
    result = subprocess.run([setpriv, "--bounding-set=-net_raw", "--inh-caps=-net_raw", *EYES_DEVINE, "watch",
                             "-i", "lo", "--db", str(tmp_path / "x.db")], capture_output=True, text=True,
                            env=docker_engine.env, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("eyes-devine: permission denied capturing on lo")


def test_attach_to_a_missing_database_is_one_line(tmp_path: Path):
    result = subprocess.run([*EYES_DEVINE, "watch", "--attach", "--db", str(tmp_path / "none.db")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.startswith("eyes-devine: no database at")


def test_a_compose_label_with_escape_sequences_cannot_repaint_or_retitle_the_terminal(docker_engine, busybox_image,
                                                                                     terminal, tmp_path):
    """The label an attacker controls is shown escaped: tmux's pane title stays, the screen is not cleared."""
    require_root()
    evil = "web\x1b]0;pwned\x07\x1b[2J\u202e"
    container = docker_engine.client.containers.run(busybox_image, name=f"edt-evil{os.getpid() % 1000}", detach=True,
                                                    labels={"com.docker.compose.service": evil})
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        term = terminal([*EYES_DEVINE, "watch", "-i", "docker0", "--db", str(tmp_path / "w.db")],
                        environment(docker_engine), width=200)
        title = term.flag("pane_title")
        term.wait_for(lambda lines: any("Docker:" in line and "containers" in line for line in lines),
                      what="Docker connected in the header")
        deadline = time.monotonic() + 15
        while True:
            try:
                assert get(address, 80, "/?evil=1", timeout=1) in (200, 404)
                break
            except OSError:
                assert time.monotonic() < deadline, "httpd did not start"
                time.sleep(0.2)

        def rows(lines: list[str]) -> list[str]:
            return [line for line in lines if line.startswith(container.name + " (")]

        lines = term.wait_for(rows, what="the container's row")
        row = rows(lines)[0]
        assert "(web\\x1b]0;pwned\\x07\\x1b[2J" in row  # the column cuts the rest
        assert term.flag("pane_title") == title != "pwned"
        assert any("Docker:" in line for line in lines), "the header was not wiped by ESC [2J"
    finally:
        container.remove(force=True)


def test_a_capturing_watch_serves_metrics_too(docker_engine, web, terminal, tmp_path):
    from tests.support.prometheus import free_port

    port = free_port()
    term = terminal([*EYES_DEVINE, "watch", "-i", "docker0", "--db", str(tmp_path / "w.db"), "--metrics", str(port)],
                    environment(docker_engine))
    term.wait_for(lambda lines: any("Docker:" in line and "containers" in line for line in lines),
                  what="Docker connected in the header")
    send(web, 7, "scraped")
    term.wait_for(shows_requests(web.name, 7), what=f"{web.name} with 7 requests")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    counts = [line for line in text.splitlines()
              if line.startswith("http_server_request_duration_seconds_count") and f'container="{web.name}"' in line]
    assert len(counts) == 1 and counts[0].endswith(" 7.0"), counts
    term.keys("C-c")
    term.wait_for(lambda lines: "EXIT=0" in lines, what="exit 0")


def test_an_attack_the_container_answered_is_marked_in_the_alerts_column(docker_engine, leaky, terminal, tmp_path):
    term = terminal([*EYES_DEVINE, "watch", "-i", "docker0", "--db", str(tmp_path / "w.db")],
                    environment(docker_engine))
    term.wait_for(lambda lines: any("Docker:" in line and "containers" in line for line in lines),
                  what="Docker connected in the header")
    assert get(leaky.address, 80, "/.env") == 200
    assert get(leaky.address, 80, "/.git/config") == 404
    lines = term.wait_for(lambda lines: (row := row_of(lines, leaky.name)) is not None and "(1!)" in row,
                          what="two alerts, one answered")
    assert row_of(lines, leaky.name)[6:8] == ["2", "(1!)"]
    term.keys("C-c")
    term.wait_for(lambda lines: "EXIT=0" in lines, what="exit 0")
