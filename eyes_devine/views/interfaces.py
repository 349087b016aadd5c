"""The table and diagnostics of `eyes-devine interfaces`, drawn from the same document `--json` prints."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table


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
            escape(row["name"]),
            escape(row["label"]),
            "up" if row["up"] else "[red]down[/red]",
            escape("\n".join(row["addresses"])),
            escape(link),
            "[green]yes[/green]" if row["selected"] else "no",
            escape(row["reason"]),
        )
    console.print(table)
    diagnostics = report["diagnostics"]
    hint = diagnostics["selection"]["hint"]
    if hint:
        console.print(f"[yellow]![/yellow] {escape(hint)}")
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
        mark = "[green]ok[/green]  " if ok else "[red]!![/red]  "
        console.print(f"{mark}{label:<11} {escape(text)}")
    verdict = "ready to capture" if capture["ready"] and diagnostics["selection"]["selected"] else "not ready"
    console.print(f"\n[bold]{verdict}[/bold]")
