#!/usr/bin/env bash
# CLI end-to-end: ferrolens synth loops, ferrolens loops descriptors.
# usage: test_loops.sh FERROLENS_BINARY SCRATCH_DIR   (exit 0 pass, 1 fail, 77 skip)
set -u
BIN=${1:?usage: test_loops.sh ferrolens-binary scratch-dir}
DIR=${2:?usage: test_loops.sh ferrolens-binary scratch-dir}
[ -x "$BIN" ] || { echo "SKIP: $BIN is not executable"; exit 77; }
rm -rf "$DIR"
mkdir -p "$DIR" || exit 1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

PY=""
if command -v python3 >/dev/null 2>&1 && python3 -c 'import json' >/dev/null 2>&1; then PY=python3; fi

# --- generate (small) with --json --------------------------------------------------------------------
"$BIN" synth loops --out "$DIR/a" --width 24 --height 20 --points 32 --vmax 4 --seed 3 --json >"$DIR/a.out" 2>"$DIR/a.err"
rc=$?
[ $rc -eq 0 ] || fail "synth loops exited $rc: $(cat "$DIR/a.err")"
for f in loops_grid.tif loops_structure.tif loops_truth.tif summary.json; do
    [ -s "$DIR/a/$f" ] || fail "missing output $DIR/a/$f"
done
[ "$(wc -l <"$DIR/a.out")" -eq 1 ] || fail "--json stdout is not exactly one line"
grep -q '"command":"synth loops"' "$DIR/a.out" || fail "--json output is not the summary: $(cat "$DIR/a.out")"
grep -a -q 'images=32' "$DIR/a/loops_grid.tif" || fail "loops_grid.tif has no ImageJ description with 32 images"
if [ -n "$PY" ]; then
    python3 - "$DIR/a.out" <<'PYEOF' || fail "--json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["width"] == 24 and d["height"] == 20 and d["points"] == 32 and d["seed"] == 3 and d["vmax"] == 4, d
assert d["files"]["truth"] == "loops_truth.tif", d
assert 0.3 < d["fraction_c_domain"] < 0.9, d
m = d["truth_descriptor_means"]
assert 0 < m["V+"] < 4 and -4 < m["V-"] < 0 and m["width"] > 0 and m["area"] > 0, m
PYEOF
fi

# --- determinism ------------------------------------------------------------------------------------
"$BIN" synth loops --out "$DIR/b" --width 24 --height 20 --points 32 --vmax 4 --seed 3 --threads 1 >"$DIR/b.out" 2>"$DIR/b.err" ||
    fail "second run failed: $(cat "$DIR/b.err")"
[ ! -s "$DIR/b.out" ] || fail "without --json nothing should go to stdout"
for f in loops_grid.tif loops_structure.tif loops_truth.tif; do
    cmp -s "$DIR/a/$f" "$DIR/b/$f" || fail "same seed gave a different $f"
done
"$BIN" synth loops --out "$DIR/c" --width 24 --height 20 --points 32 --vmax 4 --seed 4 >/dev/null 2>&1 || fail "seed 4 run failed"
if cmp -s "$DIR/a/loops_grid.tif" "$DIR/c/loops_grid.tif"; then fail "another seed gave the same loops"; fi

# --- descriptors from the bias labels ---------------------------------------------------------------
"$BIN" loops descriptors --input "$DIR/a/loops_grid.tif" --out "$DIR/d" --json >"$DIR/d.out" 2>"$DIR/d.err"
rc=$?
[ $rc -eq 0 ] || fail "loops descriptors exited $rc: $(cat "$DIR/d.err")"
for f in descriptors.tif descriptors.csv summary.json; do
    [ -s "$DIR/d/$f" ] || fail "missing output $DIR/d/$f"
done
grep -a -q 'images=11' "$DIR/d/descriptors.tif" || fail "descriptors.tif does not have 11 slices"
head -1 "$DIR/d/descriptors.csv" | grep -q '^x,y,V+,V-,imprint,width,area,nucleation+,nucleation-,R+,R-,saturation,offset$' ||
    fail "descriptors.csv header: $(head -1 "$DIR/d/descriptors.csv")"
[ "$(wc -l <"$DIR/d/descriptors.csv")" -eq $((24 * 20 + 1)) ] || fail "descriptors.csv should have 481 lines"
grep -q '"bias_source":"slice labels"' "$DIR/d.out" || fail "bias should come from the slice labels: $(cat "$DIR/d.out")"
if [ -n "$PY" ]; then
    # the measured means agree with the generator's truth means (noise 0.03, 480 loops)
    python3 - "$DIR/d.out" "$DIR/a.out" <<'PYEOF' || fail "descriptor means vs truth"
import json, sys
d = json.load(open(sys.argv[1]))["mean"]
t = json.load(open(sys.argv[2]))["truth_descriptor_means"]
for k, tol in (("V+", 0.05), ("V-", 0.05), ("width", 0.08), ("area", 0.05 * t["area"]), ("R+", 0.03), ("R-", 0.03),
               ("saturation", 0.02)):
    assert abs(d[k] - t[k]) < tol, (k, d[k], t[k])
PYEOF
fi

# --- --vmax for a stack without bias labels (the truth stack's slices are not a bias) -----------------
"$BIN" loops descriptors --input "$DIR/a/loops_structure.tif" --out "$DIR/x" >/dev/null 2>"$DIR/e.err"
rc=$?
[ $rc -eq 1 ] || fail "a single-plane image exited $rc, expected 1"
grep -q "^ferrolens: error:" "$DIR/e.err" || fail "no error message for a single-plane image: $(cat "$DIR/e.err")"
[ ! -e "$DIR/x" ] || fail "a failed run created its output directory"

# --- usage errors ---------------------------------------------------------------------------------------
expect_usage() {
    local want=$1
    shift
    "$BIN" "$@" >"$DIR/u.out" 2>"$DIR/u.err"
    local rc=$?
    [ $rc -eq 2 ] || fail "'$*' exited $rc, expected 2"
    grep -q -- "$want" "$DIR/u.err" || fail "'$*': stderr lacks '$want': $(cat "$DIR/u.err")"
}
expect_usage "multiple of 4" synth loops --out "$DIR/x" --points 30
expect_usage "option --points must be between 8" synth loops --out "$DIR/x" --points 4
expect_usage "--out DIR is required" synth loops
expect_usage "--input FILE is required" loops descriptors --out "$DIR/x"
expect_usage "did you mean 'descriptors'" loops descriptor --input a --out b
[ ! -e "$DIR/x" ] || fail "a usage error created the output directory"

if [ -n "$PY" ] && python3 -c 'import numpy, tifffile' >/dev/null 2>&1; then
    # a stack without labels: needs --vmax; with NaN: names the pixel; RGB: refused; labels not a sweep: refused
    python3 - "$DIR" <<'PYEOF' || fail "could not write the test stacks"
import sys, numpy as np, tifffile
d = sys.argv[1]
g = tifffile.imread(d + "/a/loops_grid.tif").astype(np.float32)      # (32, 20, 24)
t = tifffile.TiffFile(d + "/a/loops_grid.tif")
lab = t.imagej_metadata.get("Labels")
assert lab[4] == "2.000 V" and lab[8] == "4.000 V", lab[:9]          # bias labels of the generator
t2 = tifffile.TiffFile(d + "/d/descriptors.tif")
assert t2.imagej_metadata["Labels"][5] == "nucleation+ (V)", t2.imagej_metadata["Labels"]
tifffile.imwrite(d + "/nolabels.tif", g, imagej=True, metadata={"axes": "ZYX"})
b = g.copy(); b[5, 7, 3] = np.nan
tifffile.imwrite(d + "/nan.tif", b, imagej=True, metadata={"axes": "ZYX"})
tifffile.imwrite(d + "/rgb.tif", np.zeros((20, 24, 3), np.uint8), photometric="rgb")
labels = ["%.3f V" % v for v in np.linspace(-4, 4, 32)]
labels[10] = "9.000 V"
tifffile.imwrite(d + "/badlabels.tif", g, imagej=True, metadata={"axes": "ZYX", "Labels": labels})
PYEOF
    "$BIN" loops descriptors --input "$DIR/nolabels.tif" --out "$DIR/n1" >/dev/null 2>"$DIR/n1.err"
    rc=$?
    [ $rc -eq 2 ] || fail "no labels and no --vmax exited $rc, expected 2"
    grep -q -- "--vmax" "$DIR/n1.err" || fail "no-label message does not mention --vmax: $(cat "$DIR/n1.err")"
    "$BIN" loops descriptors --input "$DIR/nolabels.tif" --out "$DIR/n2" --vmax 4 >/dev/null 2>"$DIR/n2.err" ||
        fail "--vmax run failed: $(cat "$DIR/n2.err")"
    cmp -s "$DIR/n2/descriptors.csv" "$DIR/d/descriptors.csv" || fail "--vmax 4 should give the same descriptors as the labels"
    "$BIN" loops descriptors --input "$DIR/nan.tif" --out "$DIR/n3" --vmax 4 >/dev/null 2>"$DIR/n3.err"
    [ $? -eq 1 ] || fail "NaN pixel should exit 1"
    grep -q "x=3, y=7" "$DIR/n3.err" || fail "NaN message does not name the pixel: $(cat "$DIR/n3.err")"
    "$BIN" loops descriptors --input "$DIR/rgb.tif" --out "$DIR/n4" --vmax 4 >/dev/null 2>"$DIR/n4.err"
    [ $? -eq 1 ] || fail "RGB should exit 1"
    grep -qi "RGB" "$DIR/n4.err" || fail "RGB message: $(cat "$DIR/n4.err")"
    "$BIN" loops descriptors --input "$DIR/badlabels.tif" --out "$DIR/n5" >/dev/null 2>"$DIR/n5.err"
    [ $? -eq 1 ] || fail "bias labels that are not a triangle sweep should exit 1"
    grep -q "not a triangle sweep" "$DIR/n5.err" || fail "bad-label message: $(cat "$DIR/n5.err")"
    for o in n1 n3 n4 n5; do [ ! -e "$DIR/$o" ] || fail "failed run $o created its output directory"; done
else
    echo "note: python3 with numpy/tifffile not found; skipping the hand-made bad-input stacks"
fi

"$BIN" loops --help >"$DIR/h.out" 2>/dev/null || fail "loops --help exited non-zero"
grep -q "descriptors" "$DIR/h.out" || fail "loops --help does not list descriptors"
"$BIN" synth loops --help | grep -q "loops_truth.tif" || fail "synth loops --help does not name its outputs"

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "PASS"
exit 0
