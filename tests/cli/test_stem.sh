#!/usr/bin/env bash
# CLI end-to-end: ferrolens synth stem4d, ferrolens stem com|vdf|compare (on the sample and on raw files).
# usage: test_stem.sh FERROLENS_BINARY SCRATCH_DIR   (exit 0 pass, 1 fail, 77 skip)
set -u
BIN=${1:?usage: test_stem.sh ferrolens-binary scratch-dir}
DIR=${2:?usage: test_stem.sh ferrolens-binary scratch-dir}
[ -x "$BIN" ] || { echo "SKIP: $BIN is not executable"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${FL_SOURCE_DIR:-$HERE/../..}
SAMPLE=$SRC/sample-stacks/stem4d.tif
TRUTH=$SRC/sample-stacks/stem4d_truth.tif
rm -rf "$DIR"
mkdir -p "$DIR" || exit 1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# python3 with numpy and tifffile (optional: value checks on the TIFF outputs)
PY=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import numpy, tifffile' >/dev/null 2>&1; then PY=$p; break; fi
done

# --- synth stem4d: files, JSON, determinism --------------------------------------------------------
"$BIN" synth stem4d --out "$DIR/s1" --scan-x 8 --scan-y 6 --detector 16 --seed 3 --json >"$DIR/s1.out" 2>"$DIR/s1.err" ||
    fail "synth stem4d failed: $(cat "$DIR/s1.err")"
for f in stem4d.tif stem4d_truth.tif summary.json; do [ -s "$DIR/s1/$f" ] || fail "missing $f"; done
[ "$(wc -l <"$DIR/s1.out")" -eq 1 ] || fail "--json stdout is not one line"
grep -q '"command":"synth stem4d".*"scan_x":8,"scan_y":6,"detector":16' "$DIR/s1.out" || fail "synth JSON: $(cat "$DIR/s1.out")"
grep -a -q 'slices=8' "$DIR/s1/stem4d.tif" && grep -a -q 'frames=6' "$DIR/s1/stem4d.tif" ||
    fail "stem4d.tif lacks the hyperstack description (slices=8, frames=6)"
"$BIN" synth stem4d --out "$DIR/s2" --scan-x 8 --scan-y 6 --detector 16 --seed 3 --threads 1 >"$DIR/s2.out" 2>&1 || fail "second synth failed"
cmp -s "$DIR/s1/stem4d.tif" "$DIR/s2/stem4d.tif" || fail "same seed gave a different stem4d.tif"
cmp -s "$DIR/s1/stem4d_truth.tif" "$DIR/s2/stem4d_truth.tif" || fail "same seed gave a different truth"
# the committed sample is what the documented command makes
"$BIN" synth stem4d --out "$DIR/s3" --detector 24 >/dev/null 2>&1 || fail "sample regeneration failed"
cmp -s "$DIR/s3/stem4d.tif" "$SAMPLE" || fail "sample-stacks/stem4d.tif differs from 'synth stem4d --detector 24'"
cmp -s "$DIR/s3/stem4d_truth.tif" "$TRUTH" || fail "sample-stacks/stem4d_truth.tif differs from the generator"

# --- stem com on the sample ----------------------------------------------------------------------
"$BIN" stem com --input "$SAMPLE" --out "$DIR/com" --json >"$DIR/com.out" 2>"$DIR/com.err" || fail "stem com: $(cat "$DIR/com.err")"
for f in com.tif com_histogram.tif mean_pattern.tif summary.json; do [ -s "$DIR/com/$f" ] || fail "missing com/$f"; done
grep -q '"scan_x":32,"scan_y":32' "$DIR/com.out" || fail "com JSON lacks the scan shape: $(cat "$DIR/com.out")"
grep -q '"reference_y":11\.[45]' "$DIR/com.out" || fail "mean-pattern COM is not at the detector centre 11.5: $(cat "$DIR/com.out")"
# binned and through a memory budget smaller than the file: same reference within the binning
"$BIN" stem com --input "$SAMPLE" --out "$DIR/com2" --bin 2 --memory 1 --json >"$DIR/com2.out" 2>"$DIR/com2.err" ||
    fail "stem com --bin 2 --memory 1: $(cat "$DIR/com2.err")"
grep -q '"bin":2' "$DIR/com2.out" || fail "bin not reported"
if [ -n "$PY" ]; then
    "$PY" - "$DIR/com/com.tif" "$TRUTH" "$DIR/com2/mean_pattern.tif" <<'EOF' || fail "COM values on the sample"
import sys, numpy as np, tifffile
c = tifffile.imread(sys.argv[1]); t = tifffile.imread(sys.argv[2]); m = tifffile.imread(sys.argv[3])
assert c.shape == (4, 32, 32), c.shape
P = t[0]; cy = c[1]
b = 0.5 * ((cy[P > 0] > 0).mean() + (cy[P < 0] < 0).mean())
assert b >= 0.95, b
assert m.shape == (12, 12), m.shape
EOF
fi

# --- stem vdf: raw u8 file with hand-known sums, both byte orders for u16 --------------------------
# 2 x 2 scan of 4 x 4 patterns: patterns 0..2 all 1, pattern 3 all 2 (u8), after a 3-byte header
{ printf 'HDR'; for p in 0 1 2; do printf '\001%.0s' $(seq 16); done; printf '\002%.0s' $(seq 16); } >"$DIR/a.raw"
"$BIN" stem vdf --raw "$DIR/a.raw" --detector 4x4 --scan 2x2 --dtype u8 --offset 3 --rect 0,0,4,4 --sum --out "$DIR/v1" --json \
    >"$DIR/v1.out" 2>"$DIR/v1.err" || fail "stem vdf raw: $(cat "$DIR/v1.err")"
grep -q '"min":16,"max":32' "$DIR/v1.out" || fail "raw u8 VDF sums: $(cat "$DIR/v1.out")"
"$BIN" stem vdf --raw "$DIR/a.raw" --detector 4x4 --scan 2x2 --dtype u8 --offset 3 --annulus 1.5,1.5,0,1 --out "$DIR/v2" --json \
    >"$DIR/v2.out" 2>"$DIR/v2.err" || fail "stem vdf annulus: $(cat "$DIR/v2.err")"
grep -q '"min":1,"max":2' "$DIR/v2.out" || fail "raw u8 VDF mean: $(cat "$DIR/v2.out")"
# u16 big-endian: value 258 = 0x0102 everywhere
{ printf '\001\002%.0s' $(seq 64); } >"$DIR/b.raw"
"$BIN" stem vdf --raw "$DIR/b.raw" --detector 4x4 --scan 2x2 --dtype u16 --big --rect 0,0,1,1 --out "$DIR/v3" --json \
    >"$DIR/v3.out" 2>"$DIR/v3.err" || fail "stem vdf u16 big: $(cat "$DIR/v3.err")"
grep -q '"min":258,"max":258' "$DIR/v3.out" || fail "u16 big-endian: $(cat "$DIR/v3.out")"
"$BIN" stem vdf --raw "$DIR/b.raw" --detector 4x4 --scan 2x2 --dtype u16 --little --rect 0,0,1,1 --out "$DIR/v4" --json \
    >"$DIR/v4.out" 2>&1 || fail "stem vdf u16 little"
grep -q '"min":513,"max":513' "$DIR/v4.out" || fail "u16 little-endian: $(cat "$DIR/v4.out")"
# size mismatch: exit 1 with both numbers
"$BIN" stem vdf --raw "$DIR/a.raw" --detector 4x4 --scan 2x3 --dtype u8 --offset 3 --rect 0,0,4,4 --out "$DIR/v5" >/dev/null 2>"$DIR/v5.err"
rc=$?
[ $rc -eq 1 ] || fail "size mismatch exited $rc"
grep -q "has 67 bytes but the raw 4D-STEM layout needs exactly 99 bytes" "$DIR/v5.err" || fail "size mismatch message: $(cat "$DIR/v5.err")"

# --- stem compare on the sample (masks from the truth need python) ---------------------------------
if [ -n "$PY" ]; then
    "$PY" - "$TRUTH" "$DIR" <<'EOF' || fail "writing masks"
import sys, numpy as np, tifffile
t = tifffile.imread(sys.argv[1])
tifffile.imwrite(sys.argv[2] + "/plus.tif", ((t[0] > 0) & (t[1] == 0)).astype(np.float32))
tifffile.imwrite(sys.argv[2] + "/minus.tif", ((t[0] < 0) & (t[1] == 0)).astype(np.float32))
EOF
    "$BIN" stem compare --input "$SAMPLE" --select-a "$DIR/plus.tif" --select-b "$DIR/minus.tif" --out "$DIR/cmp" --json \
        >"$DIR/cmp.out" 2>"$DIR/cmp.err" || fail "stem compare: $(cat "$DIR/cmp.err")"
    grep -q '"shift_x":0,"shift_y":0' "$DIR/cmp.out" || fail "compare shift: $(cat "$DIR/cmp.out")"
    "$PY" - "$DIR/cmp/compare.tif" <<'EOF' || fail "compare.tif values"
import sys, numpy as np, tifffile
c = tifffile.imread(sys.argv[1])
assert c.shape == (4, 24, 24), c.shape
d = c[1]
# +P minus -P: brighter 004 disc (ky = 11.5 + 4.56), dimmer 00-4 disc
assert d[16, 11] > 0 and d[7, 11] < 0, (d[16, 11], d[7, 11])
assert abs(c[0][12, 12] - c[0].max()) < 1e-6
EOF
    "$BIN" stem compare --input "$SAMPLE" --select-a "$DIR/plus.tif" --select-b "$TRUTH" --out "$DIR/cmp2" >/dev/null 2>"$DIR/cmp2.err"
    [ $? -eq 1 ] && grep -q "scan is 32 x 32" "$DIR/cmp2.err" || fail "a mask of the wrong shape: $(cat "$DIR/cmp2.err")"
fi

# --- usage errors: exit 2, nothing on stdout, no output directory -----------------------------------
expect_usage() {
    local want=$1
    shift
    "$BIN" "$@" >"$DIR/u.out" 2>"$DIR/u.err"
    local rc=$?
    [ $rc -eq 2 ] || fail "'$*' exited $rc, expected 2"
    grep -q -- "$want" "$DIR/u.err" || fail "'$*': stderr lacks '$want': $(cat "$DIR/u.err")"
    [ ! -s "$DIR/u.out" ] || fail "'$*' wrote to stdout"
}
expect_usage "--out DIR is required" stem com --input "$SAMPLE"
expect_usage "exactly one of --input" stem com --out "$DIR/x"
expect_usage "exactly one of --input" stem com --input "$SAMPLE" --raw "$DIR/a.raw" --out "$DIR/x"
expect_usage "--raw needs --detector" stem com --raw "$DIR/a.raw" --out "$DIR/x"
expect_usage "unknown sample type 'u12'" stem com --raw "$DIR/a.raw" --detector 4x4 --scan 2x2 --dtype u12 --out "$DIR/x"
expect_usage "--scan expects XxY" stem com --raw "$DIR/a.raw" --detector 4x4 --scan 2by2 --dtype u8 --out "$DIR/x"
expect_usage "--bin must be 1, 2 or 4" stem com --input "$SAMPLE" --bin 3 --out "$DIR/x"
expect_usage "--mask expects CX,CY,R" stem com --input "$SAMPLE" --mask 1,2 --out "$DIR/x"
expect_usage "exactly one aperture" stem vdf --input "$SAMPLE" --out "$DIR/x"
expect_usage "--rect expects X,Y,W,H" stem vdf --input "$SAMPLE" --rect 1,2,0,4 --out "$DIR/x"
expect_usage "--select-a MASK.tif and --select-b MASK.tif are required" stem compare --input "$SAMPLE" --out "$DIR/x"
expect_usage "did you mean 'compare'" stem comapre
expect_usage "--meander must be smaller" synth stem4d --out "$DIR/x" --meander 5
[ ! -e "$DIR/x" ] || fail "a usage error created the output directory"
"$BIN" stem --help | grep -q "compare" || fail "stem --help does not list compare"
"$BIN" stem com --help | grep -q "com_histogram.tif" || fail "stem com --help does not name its outputs"

# --- engine errors: exit 1, "ferrolens: error:" -----------------------------------------------------
"$BIN" stem com --input "$DIR/a.raw" --out "$DIR/e" >/dev/null 2>"$DIR/e.err"
[ $? -eq 1 ] && grep -q "^ferrolens: error: .*not a TIFF" "$DIR/e.err" || fail "non-TIFF input: $(cat "$DIR/e.err")"

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "PASS"
exit 0
