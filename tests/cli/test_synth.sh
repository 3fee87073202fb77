#!/usr/bin/env bash
# CLI end-to-end: ferrolens synth iv-grid.
# usage: test_synth.sh FERROLENS_BINARY SCRATCH_DIR   (exit 0 pass, 1 fail, 77 skip)
set -u
BIN=${1:?usage: test_synth.sh ferrolens-binary scratch-dir}
DIR=${2:?usage: test_synth.sh ferrolens-binary scratch-dir}
[ -x "$BIN" ] || { echo "SKIP: $BIN is not executable"; exit 77; }
rm -rf "$DIR"
mkdir -p "$DIR" || exit 1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

PY=""
if command -v python3 >/dev/null 2>&1 && python3 -c 'import json' >/dev/null 2>&1; then PY=python3; fi

# --- generate with --json: files exist, stdout is one JSON object --------------------------------
"$BIN" synth iv-grid --out "$DIR/a" --width 32 --height 24 --points 16 --seed 7 --json >"$DIR/a.out" 2>"$DIR/a.err"
rc=$?
[ $rc -eq 0 ] || fail "synth iv-grid exited $rc: $(cat "$DIR/a.err")"
for f in iv_grid.tif iv_grid_truth.tif summary.json; do
    [ -s "$DIR/a/$f" ] || fail "missing output $DIR/a/$f"
done
[ "$(wc -l <"$DIR/a.out")" -eq 1 ] || fail "--json stdout is not exactly one line: $(cat "$DIR/a.out")"
if [ -n "$PY" ]; then
    python3 -c 'import json,sys; json.load(sys.stdin)' <"$DIR/a.out" || fail "--json output does not parse"
    python3 -c 'import json,sys; json.load(sys.stdin)' <"$DIR/a/summary.json" || fail "summary.json does not parse"
    python3 - "$DIR/a.out" <<'EOF' || fail "--json content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["command"] == "synth iv-grid", d
assert d["width"] == 32 and d["height"] == 24 and d["points"] == 16 and d["seed"] == 7, d
assert d["files"]["curves"] == "iv_grid.tif" and d["files"]["truth"] == "iv_grid_truth.tif", d
assert 0.1 < d["fraction_plus_p"] < 0.9, d
EOF
else
    grep -q '^{.*"command":"synth iv-grid".*}$' "$DIR/a.out" || fail "--json output does not look like the summary object"
fi
# sizes: 32-bit float planes, at least W*H*4*planes bytes
sz=$(wc -c <"$DIR/a/iv_grid.tif")
[ "$sz" -ge $((32 * 24 * 4 * 16)) ] || fail "iv_grid.tif too small ($sz bytes)"
sz=$(wc -c <"$DIR/a/iv_grid_truth.tif")
[ "$sz" -ge $((32 * 24 * 4 * 3)) ] || fail "iv_grid_truth.tif too small ($sz bytes)"
grep -a -q 'images=16' "$DIR/a/iv_grid.tif" || fail "iv_grid.tif has no ImageJ description with 16 images"

# --- same seed -> identical files; another seed -> different ------------------------------------
"$BIN" synth iv-grid --out "$DIR/b" --width 32 --height 24 --points 16 --seed 7 --threads 1 >"$DIR/b.out" 2>"$DIR/b.err" ||
    fail "second run failed: $(cat "$DIR/b.err")"
[ ! -s "$DIR/b.out" ] || fail "without --json nothing should go to stdout: $(cat "$DIR/b.out")"
cmp -s "$DIR/a/iv_grid.tif" "$DIR/b/iv_grid.tif" || fail "same seed gave different iv_grid.tif"
cmp -s "$DIR/a/iv_grid_truth.tif" "$DIR/b/iv_grid_truth.tif" || fail "same seed gave different iv_grid_truth.tif"
"$BIN" synth iv-grid --out="$DIR/c" --width=32 --height=24 --points=16 --seed=8 >/dev/null 2>"$DIR/c.err" ||
    fail "--name=value form failed: $(cat "$DIR/c.err")"
if cmp -s "$DIR/a/iv_grid.tif" "$DIR/c/iv_grid.tif"; then fail "another seed gave the same iv_grid.tif"; fi

# --- usage errors: exit 2 and a message on stderr --------------------------------------------------
expect_usage() {
    local want=$1
    shift
    "$BIN" "$@" >"$DIR/u.out" 2>"$DIR/u.err"
    local rc=$?
    [ $rc -eq 2 ] || fail "'$*' exited $rc, expected 2"
    grep -q -- "$want" "$DIR/u.err" || fail "'$*': stderr lacks '$want': $(cat "$DIR/u.err")"
    [ ! -s "$DIR/u.out" ] || fail "'$*' wrote to stdout"
}
expect_usage "did you mean '--width'" synth iv-grid --out "$DIR/x" --widht 10
expect_usage "option --width expects a whole number, got 'abc'" synth iv-grid --out "$DIR/x" --width abc
expect_usage "option --noise expects a number, got '0.0.2'" synth iv-grid --out "$DIR/x" --noise 0.0.2
expect_usage "option --points must be between 8" synth iv-grid --out "$DIR/x" --points 4
expect_usage "option --seed needs a value" synth iv-grid --out "$DIR/x" --seed
expect_usage "--out DIR is required" synth iv-grid
expect_usage "unexpected argument" synth iv-grid --out "$DIR/x" stray
expect_usage "unknown action 'iv-gird'; did you mean 'iv-grid'" synth iv-gird
expect_usage "did you mean 'synth'" synht iv-grid
expect_usage "'bench' is not available in this version" bench run
[ ! -e "$DIR/x" ] || fail "a usage error still created the output directory"

# --- help and version go to stdout with exit 0 ----------------------------------------------------
"$BIN" --help >"$DIR/h.out" 2>/dev/null || fail "--help exited non-zero"
grep -q "synth" "$DIR/h.out" || fail "--help does not list synth"
"$BIN" synth --help >"$DIR/h.out" 2>/dev/null || fail "synth --help exited non-zero"
grep -q "iv-grid" "$DIR/h.out" || fail "synth --help does not list iv-grid"
"$BIN" synth iv-grid --help >"$DIR/h.out" 2>/dev/null || fail "synth iv-grid --help exited non-zero"
grep -q "iv_grid_truth.tif" "$DIR/h.out" || fail "synth iv-grid --help does not name its outputs"
"$BIN" --version | grep -q "^ferrolens [0-9]" || fail "--version"

# --- engine error: an unwritable output is exit 1 with "ferrolens: error:" -------------------------
touch "$DIR/file"
"$BIN" synth iv-grid --out "$DIR/file/sub" --width 8 --height 8 >/dev/null 2>"$DIR/e.err"
rc=$?
[ $rc -eq 1 ] || fail "output under a regular file exited $rc, expected 1"
grep -q "^ferrolens: error:" "$DIR/e.err" || fail "no 'ferrolens: error:' message: $(cat "$DIR/e.err")"

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "PASS"
exit 0
