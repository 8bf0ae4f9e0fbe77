#!/bin/sh
# Run every test given, then print the total as the last line:
#   "N passed, N failed"            (", N skipped" appended when some were)
# Arguments:
#   PATH              a test binary, or a shell test (NAME.sh, run with sh)
#   skip=NAME:REASON  a test this build left out (REASON: "_" for spaces);
#                     counted as one skipped test
# A test's own summary line "N passed, N failed[, N skipped]" is added in.
# A binary that ends with status 77 and no summary is one skipped test; one
# that dies without its summary, or exits non-zero with no failed case,
# counts as one failure.
passed=0; failed=0; skipped=0
summary='^[0-9]* passed, [0-9]* failed\(, [0-9]* skipped\)\{0,1\}$'
for t in "$@"; do
    case $t in
    skip=*)
        name=${t#skip=}; why=${name#*:}; name=${name%%:*}
        why=$(printf '%s' "$why" | tr '_' ' ')
        echo "== $name"
        echo "skip - $name ($why)"
        skipped=$((skipped + 1))
        continue ;;
    esac
    echo "== $(basename "$t")"
    case $t in
    *.sh) out=$(sh "$t" 2>&1); rc=$? ;;
    *)    out=$("$t" 2>&1); rc=$? ;;
    esac
    printf '%s\n' "$out" | grep -v "$summary"
    line=$(printf '%s\n' "$out" | grep "$summary" | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
        case $line in
        *skipped) s=${line##*failed, }; s=${s%% skipped}; skipped=$((skipped + s)) ;;
        esac
        passed=$((passed + p)); failed=$((failed + f))
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ "$f" -eq 0 ]; then
            failed=$((failed + 1)); echo "FAIL - $(basename "$t") exited $rc"
        fi
    elif [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1)); echo "skip - $(basename "$t") (exited 77)"
    else
        failed=$((failed + 1)); echo "FAIL - $(basename "$t") exited $rc without a summary"
    fi
done
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
