#!/usr/bin/env bash
# CLI end-to-end: ferrolens im2spec / spec2im train + apply on a small synthetic loops grid.
# usage: test_im2spec.sh FERROLENS_BINARY SCRATCH_DIR   (exit 0 pass, 1 fail, 77 skip)
set -u
BIN=${1:?usage: test_im2spec.sh ferrolens-binary scratch-dir}
DIR=${2:?usage: test_im2spec.sh ferrolens-binary scratch-dir}
[ -x "$BIN" ] || { echo "SKIP: $BIN is not executable"; exit 77; }
"$BIN" im2spec --help >/dev/null 2>&1 || { echo "SKIP: im2spec not in this build"; exit 77; }
"$BIN" synth loops --help >/dev/null 2>&1 || { echo "SKIP: synth loops not in this build"; exit 77; }
rm -rf "$DIR"
mkdir -p "$DIR" || exit 1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
PY=""
if command -v python3 >/dev/null 2>&1 && python3 -c 'import json' >/dev/null 2>&1; then PY=python3; fi

"$BIN" synth loops --out "$DIR/d" --width 32 --height 32 --points 32 --threads 1 >/dev/null 2>&1 || {
    echo "FAIL: synth loops"
    exit 1
}
S="$DIR/d/loops_structure.tif"
G="$DIR/d/loops_grid.tif"
# ImageJ slice labels are UTF-16 (either byte order) in the metadata tags: match the characters with
# NUL bytes between them
has_label() { grep -a -q -P "$(printf '%s' "$2" | sed 's/./&\\x00/g; s/\\x00$//')" "$1"; }
COMMON="--patch 8 --latent 4 --filters 8 --epochs 3 --batch 32 --threads 1"

# --- im2spec train: every output, one JSON line, region in the summary --------------------------------
"$BIN" im2spec train --structure "$S" --input "$G" $COMMON --train-fraction 0.5 --seed 3 --out "$DIR/t" --json \
    >"$DIR/t.out" 2>"$DIR/t.err" || fail "im2spec train exited $?: $(cat "$DIR/t.err")"
for f in model.safetensors predicted.tif latent.tif errors.tif train_region.tif loss.csv summary.json; do
    [ -s "$DIR/t/$f" ] || fail "missing output $DIR/t/$f"
done
[ "$(wc -l <"$DIR/t.out")" -eq 1 ] || fail "--json stdout is not one line"
[ "$(wc -l <"$DIR/t/loss.csv")" -eq 4 ] || fail "loss.csv should have a header and 3 epochs: $(cat "$DIR/t/loss.csv")"
head -1 "$DIR/t/loss.csv" | grep -q '^epoch,train,test$' || fail "loss.csv header"
grep -a -q 'images=32' "$DIR/t/predicted.tif" || fail "predicted.tif is not a 32-slice grid"
has_label "$DIR/t/latent.tif" 'z4' || fail "latent.tif has no slice z4"
has_label "$DIR/t/errors.tif" 'loop area error' || fail "errors.tif has no 'loop area error' slice"
has_label "$DIR/t/predicted.tif" '0 V' || fail "predicted.tif lost the bias labels"
if [ -n "$PY" ]; then
    python3 - "$DIR/t.out" <<'EOF' || fail "im2spec train summary content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["command"] == "im2spec train", d
assert d["epochs_run"] == 3 and d["latent"] == 4 and d["patch"] == 8, d
# 25 usable columns (x = 4..28) x 25 rows; round(0.5 * 25) = 12 (half-even) or 13 columns train
assert d["train_pixels"] + d["test_pixels"] == 25 * 25, d
assert d["train_pixels"] in (12 * 25, 13 * 25), d
assert d["train_fraction"] == 0.5, d
for k in ("test_mse", "baseline_test_mse", "test_mse_over_baseline", "test_loop_area_error"):
    assert d[k] is not None and d[k] >= 0, (k, d)
assert abs(d["test_mse_over_baseline"] - d["test_mse"] / d["baseline_test_mse"]) < 1e-9, d
EOF
fi

# --- same seed, 1 vs 2 threads: identical model; apply reproduces the training summary --------------
"$BIN" im2spec train --structure "$S" --input "$G" --patch 8 --latent 4 --filters 8 --epochs 3 --batch 32 \
    --train-fraction 0.5 --seed 3 --threads 2 --out "$DIR/t2" >/dev/null 2>"$DIR/t2.err" || fail "second train: $(cat "$DIR/t2.err")"
cmp -s "$DIR/t/model.safetensors" "$DIR/t2/model.safetensors" || fail "same seed, 1 vs 2 threads: different model files"
"$BIN" im2spec apply --model "$DIR/t/model.safetensors" --structure "$S" --input "$G" --out "$DIR/a" --json \
    --threads 1 >"$DIR/a.out" 2>"$DIR/a.err" || fail "im2spec apply: $(cat "$DIR/a.err")"
cmp -s "$DIR/t/predicted.tif" "$DIR/a/predicted.tif" || fail "apply predicted something else than train"
if [ -n "$PY" ]; then
    python3 - "$DIR/t.out" "$DIR/a.out" <<'EOF' || fail "apply summary differs from train summary"
import json, sys
t, a = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("test_mse", "baseline_test_mse", "train_pixels", "test_pixels"):
    assert t[k] == a[k], (k, t[k], a[k])
EOF
fi
# apply without the truth: predictions but no errors
"$BIN" im2spec apply --model "$DIR/t/model.safetensors" --structure "$S" --out "$DIR/a2" --threads 1 \
    >/dev/null 2>"$DIR/a2.err" || fail "apply without --input: $(cat "$DIR/a2.err")"
[ -s "$DIR/a2/predicted.tif" ] || fail "apply without --input wrote no predictions"
[ ! -e "$DIR/a2/errors.tif" ] || fail "apply without the truth should write no errors.tif"

# --- spec2im with a ROI ----------------------------------------------------------------------------------
"$BIN" spec2im train --structure "$S" --input "$G" $COMMON --roi 0,0,16,32 --out "$DIR/s" --json \
    >"$DIR/s.out" 2>"$DIR/s.err" || fail "spec2im train exited $?: $(cat "$DIR/s.err")"
has_label "$DIR/s/errors.tif" '1-SSIM' || fail "spec2im errors.tif has no 1-SSIM slice"
sz=$(wc -c <"$DIR/s/predicted.tif")
[ "$sz" -ge $((256 * 256 * 4)) ] || fail "spec2im montage too small ($sz bytes for 256 x 256)"
if [ -n "$PY" ]; then
    python3 - "$DIR/s.out" <<'EOF' || fail "spec2im summary content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["command"] == "spec2im train", d
assert d["roi"] == [0, 0, 16, 32], d
assert d["train_pixels"] == 12 * 25 and d["test_pixels"] == 13 * 25, d   # x = 4..15 of 4..28
assert d["baseline"] == "mean training patch" and 0 <= d["test_one_minus_ssim"] <= 2, d
EOF
fi

# --- latent-space analysis of an im2spec model: the GMM skips the NaN frame edge and decodes centroids ----
"$BIN" latent gmm --input "$DIR/t/latent.tif" --components 3 --model "$DIR/t/model.safetensors" --threads 1 \
    --out "$DIR/g" >/dev/null 2>"$DIR/g.err" || fail "latent gmm on an im2spec latent stack: $(cat "$DIR/g.err")"
[ "$(wc -l <"$DIR/g/decoded_centroids.csv")" -eq 33 ] || fail "decoded_centroids.csv should hold 32 points + header"
head -1 "$DIR/g/decoded_centroids.csv" | grep -q 'cluster 3$' || fail "decoded_centroids.csv has no 3 clusters"

# --- errors: usage (exit 2) and engine (exit 1) with a sentence, nothing written on failure --------------
expect_rc() {
    local want=$1 pattern=$2
    shift 2
    "$BIN" "$@" >"$DIR/e.out" 2>"$DIR/e.err"
    local rc=$?
    [ $rc -eq "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$DIR/e.err")"
    grep -q -- "$pattern" "$DIR/e.err" || fail "'$*': message lacks '$pattern': $(cat "$DIR/e.err")"
}
expect_rc 2 "patch must be 8 or 16" im2spec train --structure "$S" --input "$G" --patch 12 --out "$DIR/x"
expect_rc 2 "required" im2spec train --input "$G" --out "$DIR/x"
expect_rc 2 "not both" im2spec train --structure "$S" --input "$G" --roi 0,0,8,8 --train-fraction 0.5 --out "$DIR/x"
expect_rc 2 "x,y,w,h" im2spec train --structure "$S" --input "$G" --roi 1,2,3 --out "$DIR/x"
expect_rc 2 "unknown action" im2spec trian
expect_rc 1 "no test pixels" im2spec train --structure "$S" --input "$G" --roi 0,0,32,32 --epochs 1 --out "$DIR/x"
expect_rc 1 "use 'ferrolens im2spec apply'" spec2im apply --model "$DIR/t/model.safetensors" --input "$G" --out "$DIR/x"
[ ! -e "$DIR/x/model.safetensors" ] || fail "a failed training wrote a model"
# structure of another size
"$BIN" synth loops --out "$DIR/d2" --width 24 --height 32 --points 32 --threads 1 >/dev/null 2>&1
expect_rc 1 "same field of view" im2spec train --structure "$DIR/d2/loops_structure.tif" --input "$G" --epochs 1 --out "$DIR/x"

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "PASS"
