"""Real packets for tests: network namespaces, veth pairs and bridges built with iproute2.

Every name starts with ``edt`` and a random tag so parallel or leftover labs
never collide, and everything built is torn down by :meth:`Lab.close`.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


@dataclass
class Namespace:
    name: str
    address: str
    """The namespace's IPv4 address (without prefix length)."""
    link: str
    """The host-side end of its veth pair."""

    def run(self, *argv: str, check: bool = True, timeout: float = 30, cwd: str | None = None
            ) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], check=check, capture_output=True,
                              text=True, timeout=timeout, cwd=cwd)

    def spawn(self, *argv: str, **popen_kwargs) -> subprocess.Popen:
        """A background process in the namespace; its output never holds the test runner's pipes open."""
        popen_kwargs.setdefault("stdout", subprocess.DEVNULL)
        popen_kwargs.setdefault("stderr", subprocess.DEVNULL)
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **popen_kwargs)


@dataclass
class Lab:
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    subnet: int = field(default_factory=lambda: 100 + secrets.randbelow(150))
    namespaces: list[Namespace] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    forward_rules: list[list[str]] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)

    def name(self, suffix: str) -> str:
        name = f"edt{self.tag}{suffix}"
        assert len(name) <= 15, f"interface name too long: {name}"
        return name

    def bridge(self, suffix: str = "br", address_index: int = 1) -> str:
        """A Linux bridge with the lab's gateway address; FORWARD accepts it (Docker's policy is DROP)."""
        bridge = self.name(suffix)
        sh("ip", "link", "add", bridge, "type", "bridge")
        self.links.append(bridge)
        sh("ip", "addr", "add", f"10.{self.subnet}.0.{address_index}/24", "dev", bridge)
        sh("ip", "link", "set", bridge, "up")
        for direction in ("-i", "-o"):
            rule = ["FORWARD", direction, bridge, "-j", "ACCEPT"]
            if sh("iptables", "-I", *rule, check=False).returncode == 0:
                self.forward_rules.append(rule)
        return bridge

    def host(self, suffix: str, index: int, bridge: str | None = None, link_prefix: str = "") -> Namespace:
        """A namespace at 10.<subnet>.0.<index>, on ``bridge`` or on a point-to-point veth from the host."""
        namespace = self.name(suffix)
        sh("ip", "netns", "add", namespace)
        link = link_prefix + self.name(f"{suffix}h") if link_prefix else self.name(f"{suffix}h")
        peer = self.name(f"{suffix}p")
        sh("ip", "link", "add", link, "type", "veth", "peer", "name", peer)
        self.links.append(link)
        sh("ip", "link", "set", peer, "netns", namespace)
        address = f"10.{self.subnet}.0.{index}"
        ns = Namespace(namespace, address, link)
        self.namespaces.append(ns)
        ns.run("ip", "link", "set", "lo", "up")
        ns.run("ip", "link", "set", peer, "name", "eth0")
        ns.run("ip", "addr", "add", f"{address}/24", "dev", "eth0")
        ns.run("ip", "link", "set", "eth0", "up")
        if bridge:
            sh("ip", "link", "set", link, "master", bridge)
        else:
            sh("ip", "addr", "add", f"10.{self.subnet}.0.1/24", "dev", link)
        sh("ip", "link", "set", link, "up")
        ns.run("ip", "route", "add", "default", "via", f"10.{self.subnet}.0.1", check=False)
        return ns

    def close(self) -> None:
        for process in self.processes:  # SIGTERM first: nginx's master takes its workers with it
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns.name, check=False)
        for link in reversed(self.links):
            sh("ip", "link", "del", link, check=False)
        for rule in self.forward_rules:
            sh("iptables", "-D", *rule, check=False)
