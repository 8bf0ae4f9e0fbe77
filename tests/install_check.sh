#!/bin/sh
# Run a program built against the installed library (its lib dir on
# LD_LIBRARY_PATH) against the example receiver: it must deliver its event.
#   sh tests/install_check.sh PROGRAM LIBDIR RECEIVER
prog=$1; libdir=$2; receiver=$3
out=$(mktemp)
"$receiver" --port 0 --quiet >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$out"' EXIT
i=0
while ! grep -q '^listening' "$out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "receiver did not start"; exit 1; }
    sleep 0.05
done
port=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' "$out")
LD_LIBRARY_PATH="$libdir" "$prog" "http://127.0.0.1:$port/hook"
