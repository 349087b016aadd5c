#!/usr/bin/env bash
# Give the Python interpreter behind eyes-devine the right to capture packets, so it runs without root.
#
#   sudo scripts/setcap.sh [PATH]            grant cap_net_raw,cap_net_admin=eip
#   scripts/setcap.sh --check [PATH]         show what the interpreter has
#   sudo scripts/setcap.sh --remove [PATH]   take it back
#
# PATH is the installed eyes-devine command (default: the one on PATH).  A
# capability on a script does nothing: it is set on the real interpreter binary
# that the command's shebang leads to, through any venv symlinks.
set -euo pipefail

action=grant
case "${1:-}" in
    --check) action=check; shift ;;
    --remove) action=remove; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "setcap.sh: unknown option $1 (use --check, --remove or --help)" >&2; exit 2 ;;
esac

command_path="${1:-$(command -v eyes-devine || true)}"
if [ -z "$command_path" ] || [ ! -f "$command_path" ]; then
    echo "setcap.sh: eyes-devine not found; pass its path, e.g. sudo scripts/setcap.sh ~/.eyes-devine/bin/eyes-devine" >&2
    exit 2
fi
for tool in setcap getcap; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/sbin/$tool" ]; then
        echo "setcap.sh: $tool is missing: apt-get install libcap2-bin (Fedora: libcap)" >&2
        exit 2
    fi
done
PATH="$PATH:/usr/sbin:/sbin"

shebang=$(head -n 1 "$command_path")
case "$shebang" in
    '#!'*) interpreter="${shebang#\#!}"; interpreter="${interpreter%% *}" ;;
    *) echo "setcap.sh: $command_path has no #! line; pass the installed eyes-devine command" >&2; exit 2 ;;
esac
if [ "$(basename "$interpreter")" = env ]; then
    program=$(echo "${shebang#\#!}" | awk '{print $2}')
    interpreter=$(command -v "$program" || echo "$program")
fi
case "$(basename "$interpreter")" in
    python*|pypy*) ;;
    *) echo "setcap.sh: $command_path runs $interpreter, not Python (a shim or wrapper?); pass the real entry point, e.g. ~/.eyes-devine/bin/eyes-devine" >&2
       exit 2 ;;
esac
real=$(readlink -f "$interpreter")
if [ ! -x "$real" ]; then
    echo "setcap.sh: interpreter $interpreter (from $command_path) does not exist" >&2
    exit 2
fi

case "$action" in
    check)
        current=$(getcap "$real" || true)
        echo "eyes-devine: $command_path"
        echo "interpreter: $real"
        echo "capabilities: ${current#"$real"}"
        [ -n "$current" ] || echo "none: capture needs root (grant with: sudo scripts/setcap.sh $command_path)"
        exit 0 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    echo "setcap.sh: changing capabilities needs root: sudo $0 ${action/grant/} $command_path" >&2
    exit 1
fi
if [ "$action" = remove ]; then
    setcap -r "$real" 2>/dev/null || true
    echo "removed capture capabilities from $real"
    exit 0
fi
setcap cap_net_raw,cap_net_admin=eip "$real"
echo "granted cap_net_raw,cap_net_admin to $real"
echo "note: EVERY script this interpreter runs can now capture packets and change network settings,"
echo "      not only eyes-devine. Prefer a dedicated venv with its own interpreter copy if that matters."
echo "revert with: sudo $0 --remove $command_path"
