#!/usr/bin/env bash
# Build the eyes-devine container image; the build itself needs no registry.
#
#   scripts/build-image.sh [--base IMAGE] [--tag TAG]      (default tag: eyes-devine:local)
#
# Without --base, a base image is made here from Debian's packages with mmdebstrap (python3, python3-venv,
# libpcap0.8, libcap2-bin) and imported as eyes-devine-base:bookworm, once.  With --base (python:3.12-slim,
# say, which your engine pulls) that image is used.  The project's wheel and its dependencies' are prepared on
# this host with pip, for the base image's Python and machine, and copied into the build: registries are reached
# from the host only, through its own certificate and proxy setup.  Needs docker (DOCKER_HOST is honoured),
# python3 with pip, and mmdebstrap when no --base is given.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
base="" tag="eyes-devine:local" default_base="eyes-devine-base:bookworm"
fail() { echo "build-image.sh: $*" >&2; exit "${2:-1}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --base) [ $# -ge 2 ] || fail "--base needs an image" 2; base="$2"; shift 2 ;;
        --tag) [ $# -ge 2 ] || fail "--tag needs a name" 2; tag="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) fail "unknown argument '$1' (see --help)" 2 ;;
    esac
done
command -v docker >/dev/null || fail "the docker client is not installed (apt-get install docker.io)"
docker version >/dev/null 2>&1 || fail "no Docker Engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ -z "$base" ]; then
    base="$default_base"
    if ! docker image inspect "$base" >/dev/null 2>&1; then
        command -v mmdebstrap >/dev/null || fail "making the base image needs mmdebstrap (apt-get install mmdebstrap); or give --base IMAGE"
        echo "build-image.sh: making $base from Debian's packages" >&2
        mmdebstrap --quiet --variant=apt --include=python3,python3-venv,libpcap0.8,libcap2-bin,passwd \
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
            --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
            bookworm "$work/base.tar"
        docker import --change 'CMD ["/bin/bash"]' "$work/base.tar" "$base" >/dev/null
        rm -f "$work/base.tar"
    fi
fi

# Which wheels fit: the base image's Python, machine and C library.
read -r python machine glibc < <(docker run --rm --entrypoint python3 "$base" -c \
    'import platform, sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}", platform.machine(),
                                 platform.libc_ver()[1].split(".")[1])') \
    || fail "cannot run python3 in $base: the base needs a glibc-based image with python3 and python3-venv"
mkdir -p "$work/context/wheels"
python3 -m pip wheel --quiet --no-deps --wheel-dir "$work/context/wheels" "$root"
platforms=()
for minor in $(seq 17 "$glibc"); do platforms+=(--platform "manylinux_2_${minor}_${machine}"); done
python3 -m pip download --quiet --only-binary=:all: --implementation cp --python-version "$python" \
    "${platforms[@]}" --platform "manylinux2014_${machine}" --dest "$work/context/wheels" \
    "$work"/context/wheels/eyes_devine-*.whl
cp "$root/examples/compose/Dockerfile" "$root/examples/compose/entrypoint.sh" "$work/context/"
docker build --quiet --build-arg "BASE=$base" --tag "$tag" "$work/context" >/dev/null
size="$(docker image inspect --format '{{.Size}}' "$tag")"
echo "built $tag from $base (Python $python, $machine): $((size / 1000000)) MB"
