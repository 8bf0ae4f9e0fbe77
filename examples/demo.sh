#!/bin/sh
# make demo: a simulated chat server (chat_demo) delivers signed webhooks to
# a receiver that verifies every signature.
#
#   sh examples/demo.sh BUILD/bin
#
# The receiver answers 503 to the first attempt of about 3% of the events, so
# the demo also shows retries: each of those arrives again ~2 s later with the
# same webhook-id.  Exits 0 only when chat_demo delivered every event and the
# receiver verified exactly one accepted signature per event, for as many
# distinct delivery ids.
set -u

bin=${1:?usage: sh examples/demo.sh BUILD/bin}
for p in receiver chat_demo; do
    if [ ! -x "$bin/$p" ]; then
        echo "demo: $bin/$p not found (run make first)" >&2
        exit 1
    fi
done

secret="whsec_$(head -c 24 /dev/urandom | base64 | tr -d '\n')"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wh-demo.XXXXXX") || exit 1
rpid=

cleanup() {
    if [ -n "$rpid" ]; then
        kill "$rpid" 2>/dev/null
        wait "$rpid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A tenth of a second where sleep takes fractions (GNU, busybox), else 1 s;
# every wait below is bounded by a count of pauses.
pause() { sleep 0.1 2>/dev/null || sleep 1; }

"$bin/receiver" --port 0 --secret "$secret" --quiet --fail-percent 3 >"$tmp/receiver.out" 2>"$tmp/receiver.err" &
rpid=$!

port=
i=0
while [ "$i" -lt 50 ]; do
    line=$(head -n 1 "$tmp/receiver.out" 2>/dev/null)
    case $line in
        "listening "*:*) port=${line##*:}; break ;;
    esac
    kill -0 "$rpid" 2>/dev/null || break
    pause
    i=$((i + 1))
done
if [ -z "$port" ]; then
    echo "demo: the receiver did not start" >&2
    cat "$tmp/receiver.err" >&2
    exit 1
fi
echo "demo: receiver listening on 127.0.0.1:$port"

"$bin/chat_demo" --url "http://127.0.0.1:$port/webhook" --secret "$secret" \
    --seconds 4 --rate 500 >"$tmp/chat.out"
chat_rc=$?

# Stop the receiver; it prints its summary on SIGTERM.  Bounded wait.
kill -TERM "$rpid" 2>/dev/null
i=0
while kill -0 "$rpid" 2>/dev/null && [ "$i" -lt 50 ]; do
    pause
    i=$((i + 1))
done
if kill -0 "$rpid" 2>/dev/null; then
    echo "demo: the receiver did not stop; killing it" >&2
    kill -KILL "$rpid" 2>/dev/null
fi
wait "$rpid" 2>/dev/null
rpid=

# num KEY FILE: the integer value of "KEY":N in the last JSON line of FILE.
num() {
    grep '^{' "$2" | tail -n 1 | sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p"
}
emitted=$(num emitted "$tmp/chat.out")
delivered=$(num delivered "$tmp/chat.out")
retries=$(num retries "$tmp/chat.out")
dead=$(num dead "$tmp/chat.out")
received=$(num received "$tmp/receiver.out")
verified=$(num verified "$tmp/receiver.out")
bad=$(num bad_signature "$tmp/receiver.out")
distinct=$(num distinct_ids "$tmp/receiver.out")
failed=$(num failed_on_purpose "$tmp/receiver.out")

echo "demo: chat_demo   $(grep '^{' "$tmp/chat.out" | tail -n 1)"
echo "demo: receiver    $(grep '^{' "$tmp/receiver.out" | tail -n 1)"
echo "sent ${emitted:-?} events, delivered ${delivered:-?}," \
     "receiver verified ${verified:-?} signatures, ${distinct:-?} distinct ids" \
     "(${received:-?} requests: ${failed:-0} answered 503 on purpose and" \
     "retried ${retries:-?} times with the same id; ${dead:-?} dead," \
     "${bad:-?} bad signatures)"

if [ "$chat_rc" -eq 0 ] && [ -n "$emitted" ] && [ -n "$verified" ] &&
   [ -n "$distinct" ] && [ "$verified" -eq "$emitted" ] &&
   [ "$distinct" -eq "$emitted" ]; then
    echo "demo: OK"
    exit 0
fi
echo "demo: FAILED (chat_demo exit status $chat_rc)" >&2
exit 1
