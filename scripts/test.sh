#!/usr/bin/env bash
# Run the whole test suite on a Debian/Ubuntu machine, installing what it needs first.
#
#   sudo scripts/test.sh [pytest arguments]
#
# Installs the Debian packages the tests use (libpcap, Docker Engine, busybox,
# iproute2, tcpdump, tshark, Prometheus, ...), makes a venv at .venv from Debian's python3
# (readable by every user, so tests can also run the CLI unprivileged), installs
# eyes-devine with its test extras into it, checks style (ruff) and the layers
# (import-linter), and runs pytest.  Needs root: the
# tests build network namespaces, capture packets and may start a private dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: run as root (sudo scripts/test.sh): the tests build network namespaces and start dockerd" >&2
    exit 2
fi

packages=(python3 python3-venv python3-dev gcc libpcap0.8 docker.io busybox-static iproute2 iptables
          tcpdump tshark util-linux libcap2-bin curl nginx-light tmux docker-compose systemd openssl prometheus
          mmdebstrap postgresql nghttp2-client)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "scripts/test.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

# The layers and the style are part of the build: a wrong import fails here before any test runs.
.venv/bin/ruff check eyes_devine tests benchmarks
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
