"""The table and diagnostics of `eyes-devine interfaces`, drawn from the same document `--json` prints.

Interface, network and container names, paths and Docker's errors come from
outside, so every value is drawn as a :class:`~rich.text.Text` of its escaped
form (:mod:`eyes_devine.views.safe`): never read as markup or emoji codes, and
nothing in it acts on the terminal.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from eyes_devine.views.cells import plain as _shown


def render_report(console: Console, report: dict) -> None:
    """``report`` is the `interfaces --json` document: {"interfaces": [...], "diagnostics": {...}}."""
    table = Table(title="Interfaces", title_justify="left", expand=False)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("kind")
    table.add_column("up")
    table.add_column("addresses")
    table.add_column("docker network / bridge / container")
    table.add_column("capture", no_wrap=True)
    table.add_column("why")
    for row in report["interfaces"]:
        link = row["docker_network"] or ", ".join(
            part for part in (f"on {row['master']}" if row["master"] else "",
                              f"to {row['container']}" if row["container"] else "") if part)
        table.add_row(
            _shown(row["name"]),
            _shown(row["label"]),
            Text("up") if row["up"] else Text("down", style="red"),
            Text("\n").join(_shown(address) for address in row["addresses"]),
            _shown(link),
            Text("yes", style="green") if row["selected"] else Text("no"),
            _shown(row["reason"]),
        )
    console.print(table)
    diagnostics = report["diagnostics"]
    hint = diagnostics["selection"]["hint"]
    if hint:
        console.print(Text.assemble(("!", "yellow"), " ", _shown(hint)))
    console.print()
    capture = diagnostics["capture"]
    privileges = diagnostics["privileges"]
    docker = diagnostics["docker"]
    selected = ", ".join(diagnostics["selection"]["selected"]) or "nothing"
    lines = [
        ("OS", f"{diagnostics['os']} ({diagnostics['platform']}), Python {diagnostics['python']}, "
               f"eyes-devine {diagnostics['eyes_devine']}", True),
        ("profile", str(diagnostics["profile"]), True),
        ("capture on", selected, bool(diagnostics["selection"]["selected"])),
        ("BPF filter", f"{capture['filter']}  ({capture['detail']})", capture["filter_ok"]),
        ("scapy", capture["scapy_version"] or "missing", capture["scapy_version"] is not None),
        ("privileges", privileges["detail"] + (f" - fix: {privileges['fix']}" if privileges["fix"] else ""),
         privileges["can_capture"]),
        ("Docker", f"Engine {docker['version']} (API {docker['api_version']}) at {docker['host']}"
         if docker["reachable"] else str(docker["error"]), docker["reachable"]),
    ]
    for label, text, ok in lines:
        mark = ("ok", "green") if ok else ("!!", "red")
        console.print(Text.assemble(mark, f"  {label:<11} ", _shown(text)))
    verdict = "ready to capture" if capture["ready"] and diagnostics["selection"]["selected"] else "not ready"
    console.print(Text(f"\n{verdict}", style="bold"))
