#!/usr/bin/env bash
# CLI end-to-end: ferrolens walls train | retrain | apply | live (ResHedNet wall ensemble, family 4).
# usage: test_walls_model.sh FERROLENS_BINARY SCRATCH_DIR   (exit 0 pass, 1 fail, 77 skip)
set -u
BIN=${1:?usage: test_walls_model.sh ferrolens-binary scratch-dir}
DIR=${2:?usage: test_walls_model.sh ferrolens-binary scratch-dir}
[ -x "$BIN" ] || { echo "SKIP: $BIN is not executable"; exit 77; }
"$BIN" walls train --help >/dev/null 2>&1 || { echo "SKIP: walls train not in this build"; exit 77; }
"$BIN" synth pfm-walls --help >/dev/null 2>&1 || { echo "SKIP: synth pfm-walls not in this build"; exit 77; }
rm -rf "$DIR"
mkdir -p "$DIR" || exit 1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
json_get() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }

"$BIN" synth pfm-walls --out "$DIR/syn" --size 48 --count 3 --test-count 1 --ood-count 1 --seed 3 >/dev/null 2>&1 ||
    fail "synth pfm-walls"
IMG="$DIR/syn/pfm_walls_train.tif"
MSK="$DIR/syn/pfm_walls_train_mask.tif"

# --- train (tiny) -----------------------------------------------------------------------------------
"$BIN" walls train --input "$IMG" --masks "$MSK" --out "$DIR/m" --members 2 --filters 2 --iterations 6 --patch 32 \
    --batch 2 --swa-last 3 --threads 1 --json >"$DIR/train.out" 2>"$DIR/train.err"
rc=$?
[ $rc -eq 0 ] || fail "walls train exited $rc: $(cat "$DIR/train.err")"
for f in model.safetensors loss.csv summary.json; do [ -s "$DIR/m/$f" ] || fail "missing $DIR/m/$f"; done
[ "$(wc -l <"$DIR/train.out")" -eq 1 ] || fail "--json stdout is not one line"
[ "$(json_get "$DIR/train.out" members)" = "2" ] || fail "summary members: $(cat "$DIR/train.out")"
# loss.csv: header + members x iterations rows
[ "$(wc -l <"$DIR/m/loss.csv")" -eq 13 ] || fail "loss.csv has $(wc -l <"$DIR/m/loss.csv") lines, want 13"
head -1 "$DIR/m/loss.csv" | grep -q '^member,iteration,focal_loss$' || fail "loss.csv header"

# same seed, same threads: identical model file
"$BIN" walls train --input "$IMG" --masks "$MSK" --out "$DIR/m2" --members 2 --filters 2 --iterations 6 --patch 32 \
    --batch 2 --swa-last 3 --threads 1 >/dev/null 2>&1 || fail "second train"
cmp -s "$DIR/m/model.safetensors" "$DIR/m2/model.safetensors" || fail "same seed gave another model file"

# --- apply ------------------------------------------------------------------------------------------
"$BIN" walls apply --model "$DIR/m/model.safetensors" --input "$DIR/syn/pfm_walls_test.tif" --out "$DIR/a" --threads 1 \
    --json >"$DIR/apply.out" 2>"$DIR/apply.err" || fail "walls apply: $(cat "$DIR/apply.err")"
for f in probability.tif uncertainty.tif mask.tif skeleton.tif summary.json; do [ -s "$DIR/a/$f" ] || fail "missing $DIR/a/$f"; done
u=$(json_get "$DIR/apply.out" mean_uncertainty)
awk -v u="$u" 'BEGIN { exit !(u > 0 && u < 0.25) }' || fail "mean uncertainty $u outside (0, 0.25)"

# --- live: final maps equal a full recompute -----------------------------------------------------------
"$BIN" walls live --model "$DIR/m/model.safetensors" --input "$DIR/syn/pfm_walls_test.tif" --out "$DIR/l" --threads 1 \
    --json >"$DIR/live.out" 2>"$DIR/live.err" || fail "walls live: $(cat "$DIR/live.err")"
for f in probability.tif uncertainty.tif mask.tif live.csv summary.json; do [ -s "$DIR/l/$f" ] || fail "missing $DIR/l/$f"; done
[ "$(wc -l <"$DIR/l/live.csv")" -eq 49 ] || fail "live.csv should have 48 lines + header"
d=$(json_get "$DIR/live.out" max_difference_to_full)
awk -v d="$d" 'BEGIN { exit !(d <= 1e-5) }' || fail "live differs from the full recompute by $d"

# --- retrain ----------------------------------------------------------------------------------------
"$BIN" walls retrain --model "$DIR/m/model.safetensors" --input "$IMG" --masks "$MSK" --iterations 3 --out "$DIR/r" \
    --threads 1 >/dev/null 2>"$DIR/retrain.err" || fail "walls retrain: $(cat "$DIR/retrain.err")"
[ -s "$DIR/r/model.safetensors" ] || fail "retrain wrote no model"
cmp -s "$DIR/m/model.safetensors" "$DIR/r/model.safetensors" && fail "retrain did not change the model"

# --- bad input: clear error, nothing written ----------------------------------------------------------
"$BIN" walls train --input "$IMG" --masks "$DIR/syn/pfm_walls_test_mask.tif" --out "$DIR/bad1" --members 1 \
    --filters 2 --iterations 2 --patch 32 >/dev/null 2>"$DIR/bad1.err"
[ $? -ne 0 ] || fail "masks with another plane count accepted"
grep -q "planes" "$DIR/bad1.err" || fail "plane-count message: $(cat "$DIR/bad1.err")"
[ -e "$DIR/bad1/model.safetensors" ] && fail "a model was written after bad input"
"$BIN" synth pfm-walls --out "$DIR/syn64" --size 64 --count 3 --condition in --seed 3 >/dev/null 2>&1
M64=$(ls "$DIR"/syn64/*mask*.tif | head -1)
"$BIN" walls train --input "$IMG" --masks "$M64" --out "$DIR/bad2" --members 1 --filters 2 --iterations 2 \
    --patch 32 >/dev/null 2>"$DIR/bad2.err"
[ $? -ne 0 ] || fail "masks of another size accepted"
grep -q "same image size" "$DIR/bad2.err" || fail "size message: $(cat "$DIR/bad2.err")"
# a model of another family
if "$BIN" synth iv-grid --out "$DIR/iv" --width 16 --height 16 --points 16 >/dev/null 2>&1 &&
    "$BIN" spectral-ae train --input "$DIR/iv/iv_grid.tif" --out "$DIR/sae" --epochs 1 --hidden 4 --latent 2 \
        >/dev/null 2>&1; then
    "$BIN" walls apply --model "$DIR/sae/model.safetensors" --input "$DIR/syn/pfm_walls_test.tif" --out "$DIR/bad3" \
        >/dev/null 2>"$DIR/bad3.err"
    [ $? -eq 1 ] || fail "model of another family: wrong exit code"
    grep -q "not a ResHedNet" "$DIR/bad3.err" || fail "family message: $(cat "$DIR/bad3.err")"
fi
"$BIN" walls train --input "$IMG" --masks "$MSK" --out "$DIR/bad4" --patch 30 >/dev/null 2>&1
[ $? -eq 2 ] || fail "--patch 30 should be a usage error"

[ $fails -eq 0 ] && echo "PASS" && exit 0
exit 1
