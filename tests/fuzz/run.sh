#!/bin/sh
# run.sh — `make fuzz`: builds the libFuzzer harnesses of tests/fuzz with clang (VIGIL_FUZZ=ON) in their own build
# directory and runs each for FUZZ_SECONDS (60) on its corpus, tests/fuzz/corpus/NAME/, which it only reads: new
# inputs go to BUILD/fuzz-found/NAME/, a crash to BUILD/fuzz-crashes/NAME-*, the log to BUILD/fuzz-logs/NAME.log.
# A crash is saved and fuzzing goes on; the run ends with one line per harness (runs, exec/s, cov, crashes) and
# exits 1 when any harness crashed.
#   FUZZ=config,node      only these harnesses
#   FUZZ_MERGE=1          then merge what they found into the corpora (-merge=1 -use_counters=0: only inputs that
#                         reach code no input of the corpus reached, so a corpus stays a few dozen files)
# usage: sh tests/fuzz/run.sh [BUILD_DIR]   (default build-fuzz)
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
MAX_LEN=8192 # the deepest seeds (JSON nested past cJSON's 1000 levels) are ~2.5 KB

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang is not installed (sh tools/install-deps.sh --fuzz installs it)" >&2
    exit 1
fi
mkdir -p "$BUILD/fuzz-found" "$BUILD/fuzz-crashes" "$BUILD/fuzz-logs" "$BUILD/fuzz-tmp"
BUILD=$(cd "$BUILD" && pwd)
echo "fuzz: building the harnesses in $BUILD (log: $BUILD/fuzz-logs/build.log)"
if ! { cmake -S "$SRC" -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_FUZZ=ON \
           -DVIGIL_SANITIZE_TWIN=OFF && cmake --build "$BUILD" --target fuzzers -j "${JOBS:-2}"; } \
        >"$BUILD/fuzz-logs/build.log" 2>&1; then
    tail -30 "$BUILD/fuzz-logs/build.log" >&2
    echo "fuzz: the build failed; see $BUILD/fuzz-logs/build.log" >&2
    exit 1
fi
# Harnesses' scratch directories: libFuzzer ends its jobs without the harnesses' cleanup at exit, so here.
export TMPDIR="$BUILD/fuzz-tmp"
rm -rf "$TMPDIR"/vigil-fuzz-*
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

names=$(ls "$SRC"/tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
[ -n "${FUZZ:-}" ] && names=$(echo "$FUZZ" | tr ',' ' ')
failed="" summary=""
for name in $names; do
    fuzzer="$BUILD/tests/fuzz/fuzz_$name" corpus="$SRC/tests/fuzz/corpus/$name" found="$BUILD/fuzz-found/$name"
    log="$BUILD/fuzz-logs/$name.log"
    [ -x "$fuzzer" ] || { echo "fuzz: no harness '$name' (tests/fuzz/fuzz_$name.c)" >&2; exit 2; }
    mkdir -p "$found"
    dict=""
    [ -f "$SRC/tests/fuzz/$name.dict" ] && dict="-dict=$SRC/tests/fuzz/$name.dict"
    touch "$log.start"
    echo "fuzz: $name for $SECONDS_EACH s (log: $log)"
    # -fork=1 -ignore_crashes=1: a crash is saved and the run goes on, so one known bug does not end the campaign.
    rc=0
    # shellcheck disable=SC2086
    "$fuzzer" -fork=1 -ignore_crashes=1 -max_total_time="$SECONDS_EACH" -max_len=$MAX_LEN -timeout=60 \
        -rss_limit_mb=4096 -artifact_prefix="$BUILD/fuzz-crashes/$name-" $dict "$found" "$corpus" >"$log" 2>&1 ||
        rc=$?
    crashes=0
    for input in $(find "$BUILD/fuzz-crashes" -name "$name-*" -newer "$log.start" | sort); do
        crashes=$((crashes + 1))
        # Run once more alone: the report's first line and the first frame in core/ say what broke where.
        report=$("$fuzzer" "$input" 2>&1) || true
        what=$(echo "$report" | grep -m1 -E "runtime error|ERROR: [A-Za-z]*Sanitizer|broken promise" |
            sed 's/^==[0-9]*==//') || true
        where=$(echo "$report" | grep -m1 -oE "core/vg_[a-z_]+\.c:[0-9]+") || true
        echo "fuzz: $name crashed on $input: $what ${where:+(first in core: $where)}" >&2
    done
    if [ "$crashes" -gt 0 ]; then failed="$failed $name"; fi
    if [ "$rc" != 0 ] && [ "$crashes" = 0 ]; then
        failed="$failed $name"
        echo "fuzz: $name: the fuzzer failed (exit $rc) without a crash input; see $log" >&2
    fi
    last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
    runs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
    rate=$(echo "$last" | sed -n 's/.*exec\/s \([0-9]*\).*/\1/p')
    cov=$(echo "$last" | grep -o 'cov: [0-9]* ft: [0-9]*')
    summary="$summary$(printf '%-9s %9s runs %6s exec/s  %-20s %s crashes' "$name" "${runs:-?}" "${rate:-?}" \
        "${cov:-cov: ?}" "$crashes")
"
    if [ "${FUZZ_MERGE:-0}" = 1 ]; then
        "$fuzzer" -merge=1 -use_counters=0 -max_len=$MAX_LEN "$corpus" "$found" >>"$log" 2>&1
        echo "fuzz: $name corpus now $(ls "$corpus" | wc -l) files"
    fi
done
rm -rf "$TMPDIR"/vigil-fuzz-*
printf '%s' "$summary"
if [ -n "$failed" ]; then
    echo "fuzz: crashed:$failed (inputs in $BUILD/fuzz-crashes/; each becomes a regression in corpus/NAME/)" >&2
    exit 1
fi
