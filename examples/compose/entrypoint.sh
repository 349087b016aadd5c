#!/bin/sh
# The image's entrypoint: the commands that capture start on the interpreter that holds NET_RAW and NET_ADMIN
# (file capabilities); the rest (requests, alerts, health, watch --attach, ...) on the plain one, so they run in
# a container granted nothing.  A capture asked of a container without the two capabilities is one line, exit 2,
# instead of the kernel refusing to start the interpreter.
set -e
plain=/opt/eyes-devine/bin/eyes-devine
[ $# -gt 0 ] || set -- run
case "$1" in
    run|watch|interfaces)
        for arg in "$@"; do
            case "$arg" in --attach|-h|--help) exec "$plain" "$@" ;; esac  # nothing captured
        done
        bounding=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
        if [ $((0x$bounding & 0x3000)) -ne $((0x3000)) ]; then
            echo "eyes-devine: capture needs NET_RAW and NET_ADMIN: start the container with" \
                 "--cap-add NET_RAW --cap-add NET_ADMIN (compose: cap_add)" >&2
            exit 2
        fi
        # -I: no PYTHON* variable and no path outside the venv reaches the interpreter that holds the capabilities
        exec /opt/eyes-devine/bin/python3-capture -I -m eyes_devine "$@" ;;
esac
exec "$plain" "$@"
