#!/bin/sh
# The Node binding's tests (bindings/node/test, `node --test`) against the
# addon `make node` built.  Prints one ok/FAIL line per test and the
# "N passed, N failed[, N skipped]" summary tests/run.sh adds up.  Exits 77
# (skipped) when node or the addon is missing.  The standardwebhooks npm
# package is installed into bindings/node/test/node_modules (git-ignored)
# when npm can reach the registry; without it that check is reported as
# skipped by the test (node:crypto still checks every signature).
src=${WH_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${WH_BUILD:-$src/build}
node=${NODE:-node}
if ! command -v "$node" >/dev/null 2>&1; then
    echo "skip - node tests: no node (Debian: apt-get install nodejs)"; exit 77
fi
if [ ! -f "$src/bindings/node/build/libwebhook.node" ]; then
    echo "skip - node tests: addon not built (make node)"; exit 77
fi
t=$src/bindings/node/test
if [ ! -d "$t/node_modules/standardwebhooks" ] && command -v npm >/dev/null 2>&1; then
    (cd "$t" && timeout 120 npm install --no-save --no-audit --no-fund --loglevel=error \
        --prefix "$t" standardwebhooks >/dev/null 2>&1) ||
        echo "note - npm install standardwebhooks failed: that verification is skipped"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
WH_BIN="${WH_BIN:-$build/bin}" timeout 300 "$node" --test --test-reporter=tap "$t"/*.test.js >"$out" 2>&1
rc=$?
# top-level TAP lines: "ok 1 - name", "not ok 2 - name", "... # SKIP reason"
sed -n 's/^ok [0-9]* - \(.*\) # SKIP\(.*\)/skip - node: \1 (\2)/p; t; s/^ok [0-9]* - \(.*\)/ok - node: \1/p; s/^not ok [0-9]* - \(.*\)/FAIL - node: \1/p' "$out"
if grep -q '^not ok' "$out"; then
    grep -E '^ +(error|expected|actual|location|at )|^    [-+]' "$out" | head -n 60
fi
num() { sed -n "s/^# $1 \([0-9]*\)/\1/p" "$out" | tail -n 1; }
p=$(num pass); f=$(num fail); s=$(num skipped)
p=${p:-0}; f=${f:-0}; s=${s:-0}
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    tail -n 30 "$out"; f=1; echo "FAIL - node: node --test exited $rc"
fi
if [ "$s" -gt 0 ]; then echo "$p passed, $f failed, $s skipped"; else echo "$p passed, $f failed"; fi
[ "$f" -eq 0 ]
