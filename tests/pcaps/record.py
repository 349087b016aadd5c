"""Record the committed captures again: ``sudo .venv/bin/python -m tests.pcaps.record``.

Only needed when a scenario changes; the tests read the files as committed.
Addresses differ from run to run (each lab picks a random subnet), so expected
outputs in the tests are regenerated with the captures.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support.scenarios import record_flows_lab, record_http_lab
from tests.support.tls_lab import record_tls_lab

HERE = Path(__file__).resolve().parent


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        print("lab-http.pcap", record_http_lab(HERE / "lab-http.pcap", Path(workdir)))
    with tempfile.TemporaryDirectory() as workdir:
        print("lab-flows.pcap", record_flows_lab(HERE / "lab-flows.pcap", Path(workdir)))
    with tempfile.TemporaryDirectory() as workdir:
        record_tls_lab(HERE / "tls-keylog.pcap", HERE / "tls-keylog.keys", Path(workdir))
        print("tls-keylog.pcap, tls-keylog.keys")


if __name__ == "__main__":
    main()
