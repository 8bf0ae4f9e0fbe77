#!/bin/sh
# Compile (and link against libwebhook.so) every C example of the public
# headers, so that they cannot rot.  An example is a comment paragraph
# containing "Example" whose (last) line ends with ":", followed (after at most
# one empty comment line) by lines indented four spaces past " * "; the block ends at the first line that is
# not.  A block that starts with "{" or "\"" is a JSON example and is not
# compiled.  A block without main() is wrapped in one (after <stdio.h>,
# <stdlib.h>, <string.h> and its header).
#   WH_BUILD       the build directory (libwebhook.so, libwebhook-test.a)
#   WH_SOURCE_DIR  the source tree (default: this script's parent directory)
#   CC             the compiler (default cc); WH_TEST_CFLAGS extra flags
src=${WH_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${WH_BUILD:?WH_BUILD must name the build directory}
cc=${CC:-cc}
passed=0; failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for h in "$src"/include/webhook/*.h; do
    base=$(basename "$h")
    # one file per example: NAME.LINE.c holding the code lines
    awk -v out="$tmp/$base" '
        mode == 1 && /^ \*     / { sub(/^ \*     /, ""); print > file; got = 1; next }
        mode == 1 && !got && /^ \*$/ { next }
        mode == 1 { close(file); mode = 0 }
        /^ \*$/ || !/^ \* / { cand = 0 }
        /^ \* / && /Example/ { cand = 1 }
        cand && /^ \* .*:$/ { mode = 1; got = 0; cand = 0; file = out "." (NR + 1) ".c"; printf "" > file }
    ' "$h"
    for ex in "$tmp/$base".*.c; do
        [ -e "$ex" ] || continue
        line=${ex#"$tmp/$base".}; line=${line%.c}
        first=$(sed -n '/[^ ]/{s/^ *//;p;q;}' "$ex")
        case $first in '{'*|'"'*) continue ;; esac
        n=$((n + 1))
        prog=$tmp/prog$n.c
        {
            echo "#include <stdio.h>"; echo "#include <stdlib.h>"; echo "#include <string.h>"
            echo "#include <webhook/$base>"
            if grep -q 'main *(' "$ex"; then cat "$ex"
            else echo "int main(void)"; echo "{"; cat "$ex"; echo "    return 0;"; echo "}"; fi
        } >"$prog"
        libs="-L$build -lwebhook"
        [ "$base" = test.h ] && libs="-L$build -lwebhook-test -lwebhook"
        # shellcheck disable=SC2086
        if $cc -std=c11 -Wall -Wextra -Wpedantic -Werror ${WH_TEST_CFLAGS:-} -I"$src/include" \
               -o "$tmp/prog$n" "$prog" $libs >"$tmp/err" 2>&1; then
            echo "ok   - $base:$line example compiles and links"; passed=$((passed + 1))
        else
            echo "FAIL - $base:$line example compiles and links"
            sed 's/^/    /' "$tmp/err"; sed 's/^/    | /' "$prog"; failed=$((failed + 1))
        fi
    done
done
# webhook.h must keep its example (else this test would test nothing)
if ls "$tmp"/webhook.h.*.c >/dev/null 2>&1; then
    echo "ok   - webhook.h has an example"; passed=$((passed + 1))
else
    echo "FAIL - webhook.h has an example"; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
