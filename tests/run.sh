#!/bin/sh
# Run every test binary given, then print the total as the last line:
# "N passed, N failed".  A binary that dies without its own summary line
# counts as one failure.
passed=0; failed=0
for t in "$@"; do
    echo "== $(basename "$t")"
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v '^[0-9]* passed, [0-9]* failed$'
    line=$(printf '%s\n' "$out" | grep '^[0-9]* passed, [0-9]* failed$' | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
        passed=$((passed + p)); failed=$((failed + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); echo "FAIL - $(basename "$t") exited $rc"; fi
    else
        failed=$((failed + 1)); echo "FAIL - $(basename "$t") exited $rc without a summary"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
