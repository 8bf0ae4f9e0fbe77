#!/bin/sh
# The Python binding's pytest suite (bindings/python/tests) against the
# package `make python` left in $WH_BUILD/python.  Prints one ok/FAIL line per
# pytest test and the "N passed, N failed[, N skipped]" summary tests/run.sh
# adds up.  Exits 77 (skipped) when no interpreter with pytest is found or the
# package was not built for it.
#   PYTHON        the interpreter the package was built for (Makefile's)
#   WH_BUILD      the build directory;  WH_BIN  its bin/ (receiver)
src=${WH_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${WH_BUILD:-$src/build}
py=${PYTHON:-python3}
if ! "$py" -c 'import pytest' 2>/dev/null; then
    echo "skip - python tests: $py has no pytest (Debian: apt-get install python3-pytest)"
    exit 77
fi
if ! PYTHONPATH="$build/python" "$py" -c 'import libwebhook' 2>/dev/null; then
    echo "skip - python tests: libwebhook not built for $py (make python)"
    exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cd "$src/bindings/python/tests" &&
PYTHONPATH="$build/python" WH_BIN="${WH_BIN:-$build/bin}" PYTHONDONTWRITEBYTECODE=1 \
    timeout 300 "$py" -m pytest -v -p no:cacheprovider -rfEs . >"$out" 2>&1
rc=$?
# "test_x.py::test_name PASSED [ 10%]" -> "ok - python: test_name"
sed -n 's/^[^ ]*::\([^ ]*\) PASSED.*/ok - python: \1/p; s/^[^ ]*::\([^ ]*\) \(FAILED\|ERROR\).*/FAIL - python: \1/p; s/^[^ ]*::\([^ ]*\) SKIPPED.*/skip - python: \1/p' "$out"
grep -E '^(E  |FAILED|ERROR|SKIPPED)' "$out" | head -n 60
p=$(grep -c ' PASSED' "$out"); f=$(grep -cE ' (FAILED|ERROR)( |$)' "$out"); s=$(grep -c ' SKIPPED' "$out")
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    tail -n 20 "$out"; f=1; echo "FAIL - python: pytest exited $rc"
fi
if [ "$s" -gt 0 ]; then echo "$p passed, $f failed, $s skipped"; else echo "$p passed, $f failed"; fi
[ "$f" -eq 0 ]
