#!/bin/sh
# What libwebhook.so exports: every WH_EXTERN function of the public headers
# except <webhook/test.h>, only wh_-prefixed names, and no test double (those
# live in libwebhook-test.a, which must define them).
#   WH_BUILD       the build directory (libwebhook.so, libwebhook-test.a)
#   WH_SOURCE_DIR  the source tree (default: this script's parent directory)
src=${WH_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${WH_BUILD:?WH_BUILD must name the build directory}
passed=0; failed=0
ok() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; shift; for l in "$@"; do echo "    $l"; done; failed=$((failed + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

so=$build/libwebhook.so
if nm -D --defined-only "$so" 2>"$tmp/err" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u >"$tmp/exports" &&
   grep -qx wh_engine_new "$tmp/exports"; then
    ok "libwebhook.so exports the host API ($(wc -l <"$tmp/exports") symbols)"
else
    fail "libwebhook.so exports the host API" "$(cat "$tmp/err")"
fi

bad=$(grep -E '^(wh_manual_|wh_scripted_|wh_transport_scripted_new$)' "$tmp/exports")
if [ -s "$tmp/exports" ] && [ -z "$bad" ]; then ok "libwebhook.so exports no test double"
else fail "libwebhook.so exports no test double" $bad; fi

bad=$(grep -Ev '^wh_[a-z0-9]' "$tmp/exports")
if [ -s "$tmp/exports" ] && [ -z "$bad" ]; then ok "every export is wh_-prefixed (no wh__ internal)"
else fail "every export is wh_-prefixed (no wh__ internal)" $bad; fi

# every WH_EXTERN function of the non-test headers, stand-ins of backends
# left out included
for h in webhook plugin curl lean sqlite redis verify; do
    tr '\n' ' ' <"$src/include/webhook/$h.h" | grep -o 'WH_EXTERN[^;(]*(' |
        sed 's/($//; s/.*[ *]//' | grep '^wh_'
done | sort -u >"$tmp/declared"
missing=$(comm -23 "$tmp/declared" "$tmp/exports")
if [ "$(wc -l <"$tmp/declared")" -gt 20 ] && [ -z "$missing" ]; then
    ok "every declared function is exported ($(wc -l <"$tmp/declared"))"
else
    fail "every declared function is exported" "missing: $missing"
fi

tr '\n' ' ' <"$src/include/webhook/test.h" | grep -o 'WH_EXTERN[^;(]*(' |
    sed 's/($//; s/.*[ *]//' | grep '^wh_' | sort -u >"$tmp/test_declared"
nm --defined-only "$build/libwebhook-test.a" 2>/dev/null | awk '$2 == "T" {print $3}' | sort -u >"$tmp/test_defined"
missing=$(comm -23 "$tmp/test_declared" "$tmp/test_defined")
if [ -s "$tmp/test_declared" ] && [ -z "$missing" ]; then
    ok "libwebhook-test.a defines every function of test.h ($(wc -l <"$tmp/test_declared"))"
else
    fail "libwebhook-test.a defines every function of test.h" "missing: $missing"
fi

# the test doubles use only what libwebhook.so exports (a host links
# -lwebhook-test -lwebhook)
nm -u "$build/libwebhook-test.a" 2>/dev/null | awk '{print $2}' | grep '^wh' | sort -u >"$tmp/test_needs"
sort -u "$tmp/exports" "$tmp/test_defined" >"$tmp/have"
missing=$(comm -23 "$tmp/test_needs" "$tmp/have")
if [ -s "$tmp/test_needs" ] && [ -z "$missing" ]; then
    ok "libwebhook-test.a needs only exports of libwebhook.so"
else
    fail "libwebhook-test.a needs only exports of libwebhook.so" "not exported: $missing"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
