#!/bin/sh
# The host-loop examples, each bounded, against the example receiver:
# poll_loop (wh_fd in poll(2)), game_loop (wh_tick at 60 Hz, single and
# batch mode) and libuv_server (chat server on the libuv adapter; skipped
# in a build without libuv).  The receiver's own count must match.
#   WH_BIN  the directory of the programs
bin=${WH_BIN:?WH_BIN must name the programs directory}
passed=0; failed=0; skipped=0
ok() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; shift; for l in "$@"; do echo "    $l"; done; failed=$((failed + 1)); }
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT

# start the receiver; sets pid and url
start() {
    rm -f "$tmp/recv" # a fresh file: never the previous receiver's line
    "$bin/receiver" --port 0 --quiet >"$tmp/recv" 2>&1 &
    pid=$!
    i=0
    while ! grep -q '^listening 127.0.0.1:[0-9]' "$tmp/recv" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "receiver did not start"; exit 1; }
        sleep 0.05
    done
    url="http://127.0.0.1:$(sed -n 's/^listening 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/recv")/hook"
}
# stop it (in this shell, so that wait works); sets got to its "received"
stop() {
    kill -TERM $pid; wait $pid 2>/dev/null; pid=
    got=$(sed -n 's/.*"received":\([0-9]*\).*/\1/p' "$tmp/recv")
}
# run NAME EXPECTED PROGRAM ARGS...: PROGRAM URL ARGS... exits 0, and the
# receiver got EXPECTED requests
run() {
    name=$1; want=$2; prog=$3; shift 3
    start
    if timeout 60 "$prog" "$url" "$@" >"$tmp/out" 2>&1; then rc=0; else rc=$?; fi
    stop
    if [ $rc = 0 ] && [ "$got" = "$want" ]; then ok "$name: $(tail -n 1 "$tmp/out")"
    else fail "$name" "exit $rc, receiver got ${got:-?} of $want" "$(cat "$tmp/out")"; fi
}

run "poll_loop: 10,000 events through wh_fd alone" 10000 "$bin/poll_loop" 10000
run "game_loop: 30 frames of 100 events, single mode" 3000 "$bin/game_loop" 30 100
# batch mode: 30 frames of 500 events, batches of up to 500: 30 requests or more
start
if timeout 60 "$bin/game_loop" "$url" 30 500 batch >"$tmp/out" 2>&1; then rc=0; else rc=$?; fi
stop
if [ $rc = 0 ] && [ -n "$got" ] && [ "$got" -ge 30 ] && grep -q 'delivered 15000 of 15000' "$tmp/out"
then ok "game_loop: 30 frames of 500 events, batch mode: $(tail -n 1 "$tmp/out")"
else fail "game_loop batch" "exit $rc, receiver got ${got:-?} requests" "$(cat "$tmp/out")"; fi
if [ -x "$bin/libuv_server" ]; then
    run "libuv_server: 40 chat clients, 200 webhooks on the libuv adapter" 200 \
        "$bin/libuv_server" --selftest 40
else
    echo "skip - libuv_server (built without libuv)"; skipped=$((skipped + 1))
fi

if [ $skipped -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"
else echo "$passed passed, $failed failed"; fi
[ $failed -eq 0 ]
