#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (-fsanitize=fuzzer,address,undefined) against the
# engine sources, replays the regression inputs of tests/fuzz/regressions/<name>/, then fuzzes each
# target for a bounded time, one after the other on one core.
#
#   tests/fuzz/run_fuzz.sh BUILD_DIR [SECONDS_PER_TARGET (default 30)] [TARGET...]
#
# TARGET: tiff, safetensors, json, keras, stem4d (default: all). Environment: FUZZ_CC (the clang to use; default
# clang, else clang-14), FUZZ_BUILD_ONLY=1 (build, do not run), FUZZ_EXTRA_ARGS (more libFuzzer options), FUZZ_SEED (libFuzzer -seed).
# Seeds come from tests/fuzz/corpus/<name>/ (read only); new corpus entries go to BUILD_DIR/corpus/<name>,
# crash files to BUILD_DIR/artifacts/<name>/. Prints executions/s and total executions per target and
# exits non-zero when any regression input or any fuzzing run crashes; 77 (ctest: skipped) when no clang
# with the libFuzzer runtime is available.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:?usage: run_fuzz.sh BUILD_DIR [SECONDS] [TARGET...]}
SECS=${2:-30}
shift $(( $# >= 2 ? 2 : 1 ))
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(tiff safetensors json keras stem4d)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

CC=${FUZZ_CC:-}
if [ -z "$CC" ]; then
  for c in clang clang-14; do command -v "$c" >/dev/null 2>&1 && { CC=$c; break; }; done
fi
if [ -z "$CC" ]; then
  echo "run_fuzz: no clang found (Debian: apt-get install clang-14 libclang-rt-14-dev libomp-14-dev); skipped" >&2
  exit 77
fi

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
H5INC=$(pkg-config --cflags hdf5-serial 2>/dev/null || echo "-I/usr/include/hdf5/serial")
H5LIB=-lhdf5_serial
[ -e /usr/lib/x86_64-linux-gnu/libhdf5_serial.so ] || H5LIB=$(pkg-config --libs hdf5-serial 2>/dev/null || echo -lhdf5)
CFLAGS="-std=gnu11 -O1 -g -fopenmp $SAN -I$ROOT/native/include -I$ROOT/native/src -I$ROOT/native/src/core $H5INC"
LIBS="-ltiff -lfftw3f -llapacke $H5LIB -lm -fopenmp -lpthread"

# Can this clang build and link a fuzzer with OpenMP?
probe=$OUT/probe
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' >"$probe.c"
if ! "$CC" $CFLAGS -fsanitize=fuzzer "$probe.c" -o "$probe" $LIBS >"$probe.log" 2>&1; then
  echo "run_fuzz: $CC cannot build a libFuzzer target with OpenMP (libclang-rt-14-dev / libomp-14-dev missing?):" >&2
  sed -n 1,5p "$probe.log" >&2
  exit 77
fi

# ---- build: engine objects (-fsanitize=fuzzer-no-link: coverage only), then one binary per target ----
OBJ=$OUT/obj
mkdir -p "$OBJ" "$OUT/bin"
newest_header=$(find "$ROOT/native" -name '*.h' -printf '%T@\n' | sort -n | tail -1)
objs=()
while IFS= read -r src; do
  rel=${src#"$ROOT/native/src/"}
  o=$OBJ/${rel//\//_}.o
  objs+=("$o")
  if [ ! -e "$o" ] || [ "$src" -nt "$o" ] ||
     awk -v h="$newest_header" -v o="$(stat -c %Y "$o")" 'BEGIN { exit !(h > o) }'; then
    echo "run_fuzz: cc $rel" >&2
    "$CC" $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$o" || { echo "run_fuzz: compile failed: $rel" >&2; exit 1; }
  fi
done < <(find "$ROOT/native/src" -name '*.c' | sort)

for t in "${TARGETS[@]}"; do
  src=$HERE/fuzz_$t.c
  [ -e "$src" ] || { echo "run_fuzz: no target $src" >&2; exit 2; }
  echo "run_fuzz: link fuzz_$t" >&2
  "$CC" $CFLAGS -fsanitize=fuzzer -I"$HERE" "$src" "${objs[@]}" -o "$OUT/bin/fuzz_$t" $LIBS ||
    { echo "run_fuzz: link failed: fuzz_$t" >&2; exit 1; }
done

[ -n "${FUZZ_BUILD_ONLY:-}" ] && { echo "run_fuzz: built in $OUT/bin" >&2; exit 0; }
case $SECS in ''|*[!0-9]*|0) echo "run_fuzz: SECONDS must be a positive integer" >&2; exit 2 ;; esac

# ---- run ------------------------------------------------------------------------------------------
export OMP_NUM_THREADS=1
# the targets' input files (left behind when a target crashes) stay in the build directory
export TMPDIR=$OUT/tmp
mkdir -p "$TMPDIR"
export HDF5_USE_FILE_LOCKING=FALSE
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$HERE/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Sanitizer reports of the Keras import's child process (keras_hdf5.c runs libhdf5 in a forked child, so
# libFuzzer never sees them as crashes): prints "TOTAL OURS", OURS counting the reports whose first stack
# frame outside the sanitizer runtime is Ferrolens code (native/src, tests/fuzz); those fail the run.
# Reports from inside libhdf5 are contained (the import fails cleanly) and only counted.
child_reports() {
  awk '
    function close_block() { if (inb) { total++; if (ours) mine++ } inb = 0; decided = 0; ours = 0 }
    /runtime error:/ { close_block(); total++; if ($0 ~ /\/native\/src\/|\/tests\/fuzz\//) mine++; next }
    /ERROR: AddressSanitizer|ERROR: LeakSanitizer|out-of-memory \(malloc/ { close_block(); inb = 1; next }
    inb && !decided && /^ *#[0-9]+ 0x/ {
      if ($0 ~ /\/native\/src\/|\/tests\/fuzz\//) { ours = 1; decided = 1 }
      else if ($0 ~ /\.so[.0-9]*\+0x/ && $0 !~ /libclang_rt|libasan|libubsan/) decided = 1
      next
    }
    /^SUMMARY: / { close_block() }
    END { close_block(); printf "%d %d\n", total + 0, mine + 0 }' "$1"
}

status=0
summary=()
for t in "${TARGETS[@]}"; do
  bin=$OUT/bin/fuzz_$t
  # libhdf5 has no frame pointers: unwind malloc stacks the slow way, or the narrow suppressions of
  # lsan.supp would not see the HDF5 function that leaks
  asan=$ASAN_OPTIONS
  [ "$t" = keras ] && asan=$asan:fast_unwind_on_malloc=0
  art=$OUT/artifacts/$t
  mkdir -p "$art" "$OUT/corpus/$t"
  # fuzz_keras keeps the inputs on which the import child died here (see child_reports)
  [ "$t" = keras ] && mkdir -p "$art/child" && export FUZZ_CHILD_CRASH_DIR=$art/child
  # 1. regression inputs: every file once
  reg=()
  if [ -d "$HERE/regressions/$t" ]; then
    while IFS= read -r f; do reg+=("$f"); done < <(find "$HERE/regressions/$t" -type f ! -name '*.md' | sort)
  fi
  if [ ${#reg[@]} -gt 0 ]; then
    if ASAN_OPTIONS=$asan "$bin" -rss_limit_mb=2048 -timeout=30 "${reg[@]}" >"$OUT/$t.regressions.log" 2>&1; then
      read -r ctot cours < <(child_reports "$OUT/$t.regressions.log")
      if [ "$cours" -gt 0 ]; then
        echo "run_fuzz: $t: $cours sanitizer report(s) from Ferrolens code in the import child (log: $OUT/$t.regressions.log)" >&2
        status=1
      else
        extra=""
        [ "$ctot" -gt 0 ] && extra=" ($ctot contained libhdf5 report(s) in the import child)"
        echo "run_fuzz: $t: ${#reg[@]} regression inputs pass$extra" >&2
      fi
    else
      echo "run_fuzz: $t: a regression input FAILS (log: $OUT/$t.regressions.log)" >&2
      grep -E 'ERROR|SUMMARY|Running:' "$OUT/$t.regressions.log" | tail -5 >&2
      status=1
    fi
  fi
  # 2. bounded fuzzing (one process, one core); FUZZ_REPLAY_ONLY="tiff ..." replays the regressions of
  # those targets only
  if [[ " ${FUZZ_REPLAY_ONLY:-} " == *" $t "* ]]; then
    summary+=("$(printf '%-12s %s' "$t" "regressions replayed only (FUZZ_REPLAY_ONLY)")")
    continue
  fi
  log=$OUT/$t.fuzz.log
  seed_opt=()
  [ -n "${FUZZ_SEED:-}" ] && seed_opt=(-seed="$FUZZ_SEED")
  ASAN_OPTIONS=$asan "$bin" "$OUT/corpus/$t" "$HERE/corpus/$t" -max_total_time="$SECS" -print_final_stats=1 \
    -rss_limit_mb=2048 -timeout=30 -artifact_prefix="$art/" "${seed_opt[@]}" ${FUZZ_EXTRA_ARGS:-} >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  verdict=ok
  read -r ctot cours < <(child_reports "$log")
  if [ $rc -ne 0 ]; then
    verdict="CRASH (rc $rc, artifacts in $art, log $log)"
    grep -E 'ERROR: |SUMMARY: |runtime error|Test unit written' "$log" | head -6 >&2
    status=1
  elif [ "$cours" -gt 0 ]; then
    verdict="CRASH in the import child: $cours sanitizer report(s) from Ferrolens code (log $log; inputs in $art/child/)"
    status=1
  fi
  [ "$ctot" -gt 0 ] && verdict="$verdict; $ctot contained report(s) in the import child"
  summary+=("$(printf '%-12s %8ss  %10s execs  %8s exec/s  cov %6s  %s' "$t" "$SECS" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$verdict")")
done

echo "run_fuzz: summary (clang: $CC)"
for s in "${summary[@]}"; do echo "  $s"; done
exit $status
