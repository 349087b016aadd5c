#!/usr/bin/env bash
# Every benchmark, figures appended to benchmarks/RESULTS.md:  sudo benchmarks/run.sh
# Installs what the benchmarks need (Debian packages; the Python package via scripts/test.sh's venv).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "benchmarks/run.sh: run as root (sudo benchmarks/run.sh): it builds namespaces and captures" >&2
    exit 2
fi
packages=(hey wrk tshark tcpdump nginx-light docker.io busybox-static iproute2 python3-venv libpcap0.8 postgresql openssl)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'   # also brings an older .venv up to the current dependencies
.venv/bin/python benchmarks/read_vs_tshark.py
.venv/bin/python benchmarks/header_cost.py
.venv/bin/python benchmarks/export_cost.py --live 5000
.venv/bin/python benchmarks/store_throughput.py
.venv/bin/python benchmarks/live_completeness.py "$@"
