#!/usr/bin/env bash
# CLI end-to-end: ferrolens diffraction-ae train|apply on a small synthetic 4D-STEM set; apply over a file
# 4x larger than --memory (peak RSS checked when /usr/bin/time is available); bad input.
# usage: test_diffraction_ae.sh FERROLENS_BINARY SCRATCH_DIR   (exit 0 pass, 1 fail, 77 skip)
set -u
BIN=${1:?usage: test_diffraction_ae.sh ferrolens-binary scratch-dir}
DIR=${2:?usage: test_diffraction_ae.sh ferrolens-binary scratch-dir}
[ -x "$BIN" ] || { echo "SKIP: $BIN is not executable"; exit 77; }
"$BIN" diffraction-ae --help >/dev/null 2>&1 || { echo "SKIP: diffraction-ae not built in"; exit 77; }
"$BIN" synth stem4d --help >/dev/null 2>&1 || { echo "SKIP: synth stem4d not built in"; exit 77; }
rm -rf "$DIR"
mkdir -p "$DIR" || exit 1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# --- small data set, train ------------------------------------------------------------------------
"$BIN" synth stem4d --out "$DIR/s" --scan-x 12 --scan-y 10 --detector 16 --seed 3 >/dev/null 2>"$DIR/s.err" ||
    { fail "synth stem4d: $(cat "$DIR/s.err")"; echo "$fails failure(s)"; exit 1; }
"$BIN" diffraction-ae train --input "$DIR/s/stem4d.tif" --width 4 --embedding 4 --epochs 2 --batch 16 --lr 1e-3 \
    --contrastive 1e-3 --divergence 1e-3 --cyclic --step-size 1 --threads 1 --seed 5 --out "$DIR/t" --json \
    >"$DIR/t.out" 2>"$DIR/t.err"
rc=$?
[ $rc -eq 0 ] || fail "train exited $rc: $(cat "$DIR/t.err")"
for f in model.safetensors embedding.tif apertures.tif loss.csv summary.json; do
    [ -s "$DIR/t/$f" ] || fail "missing output $DIR/t/$f"
done
[ "$(wc -l <"$DIR/t.out")" -eq 1 ] || fail "--json stdout is not exactly one line"
grep -q '"command":"diffraction-ae train"' "$DIR/t.out" || fail "summary lacks the command: $(cat "$DIR/t.out")"
grep -q '"pools":\[2\]' "$DIR/t.out" || fail "16x16 patterns should pool by [2]: $(cat "$DIR/t.out")"
grep -q '"epochs_run":2' "$DIR/t.out" || fail "epochs_run: $(cat "$DIR/t.out")"
[ "$(wc -l <"$DIR/t/loss.csv")" -eq 3 ] || fail "loss.csv should have a header and 2 epochs"
head -1 "$DIR/t/loss.csv" | grep -q '^epoch,lr,loss,mse,l1,contrastive,divergence$' || fail "loss.csv header"
# cyclic lr: epoch 1 at base, epoch 2 at max
sed -n 2p "$DIR/t/loss.csv" | grep -q '^1,0.001,' || fail "epoch 1 lr: $(sed -n 2p "$DIR/t/loss.csv")"
sed -n 3p "$DIR/t/loss.csv" | grep -q '^2,0.0001,' || fail "epoch 2 lr: $(sed -n 3p "$DIR/t/loss.csv")"
# embedding: 12 x 10 x 4 float planes
sz=$(wc -c <"$DIR/t/embedding.tif")
[ "$sz" -ge $((12 * 10 * 4 * 4)) ] || fail "embedding.tif too small ($sz bytes)"

# --- apply gives the same embedding ----------------------------------------------------------------
"$BIN" diffraction-ae apply --model "$DIR/t/model.safetensors" --input "$DIR/s/stem4d.tif" --threads 2 \
    --out "$DIR/a" 2>"$DIR/a.err" || fail "apply: $(cat "$DIR/a.err")"
cmp -s "$DIR/t/embedding.tif" "$DIR/a/embedding.tif" || fail "apply embedding differs from the train run's"
cmp -s "$DIR/t/apertures.tif" "$DIR/a/apertures.tif" || fail "apply apertures differ from the train run's"

# --- same seed, other thread count: identical model --------------------------------------------------
"$BIN" diffraction-ae train --input "$DIR/s/stem4d.tif" --width 4 --embedding 4 --epochs 2 --batch 16 --lr 1e-3 \
    --contrastive 1e-3 --divergence 1e-3 --cyclic --step-size 1 --threads 2 --seed 5 --out "$DIR/t2" 2>/dev/null ||
    fail "second train"
cmp -s "$DIR/t/model.safetensors" "$DIR/t2/model.safetensors" || fail "model differs between 1 and 2 threads"

# --- bad input -------------------------------------------------------------------------------------
"$BIN" diffraction-ae train --input "$DIR/s/stem4d.tif" --bin 3 --out "$DIR/x" >/dev/null 2>"$DIR/x.err"
[ $? -eq 2 ] || fail "--bin 3 should be a usage error"
"$BIN" diffraction-ae train --input "$DIR/s/stem4d.tif" --pools 3 --out "$DIR/x" >/dev/null 2>"$DIR/x.err"
[ $? -eq 1 ] && grep -q "divisible" "$DIR/x.err" || fail "--pools 3 on 16x16: $(cat "$DIR/x.err")"
head -c 20000 "$DIR/s/stem4d.tif" >"$DIR/trunc.tif"
"$BIN" diffraction-ae apply --model "$DIR/t/model.safetensors" --input "$DIR/trunc.tif" --out "$DIR/x" >/dev/null 2>"$DIR/x.err"
rc=$?
[ $rc -eq 1 ] && grep -q "error" "$DIR/x.err" || fail "truncated TIFF: exit $rc, $(cat "$DIR/x.err")"
head -c 1000 "$DIR/s/stem4d.tif" >"$DIR/x.raw"
"$BIN" diffraction-ae apply --model "$DIR/t/model.safetensors" --raw "$DIR/x.raw" --detector 16x16 --scan 12x10 \
    --dtype f32 --out "$DIR/x" >/dev/null 2>"$DIR/x.err"
[ $? -eq 1 ] && grep -qi "size\|bytes" "$DIR/x.err" || fail "raw of the wrong size: $(cat "$DIR/x.err")"
"$BIN" diffraction-ae apply --model "$DIR/t/model.safetensors" --input "$DIR/s/stem4d.tif" --scan 7x7 --out "$DIR/x" \
    >/dev/null 2>"$DIR/x.err"
[ $? -eq 1 ] && grep -q "error" "$DIR/x.err" || fail "scan 7x7 does not multiply up to 120 patterns: $(cat "$DIR/x.err")"
"$BIN" diffraction-ae apply --model "$DIR/t/loss.csv" --input "$DIR/s/stem4d.tif" --out "$DIR/x" >/dev/null 2>"$DIR/x.err"
[ $? -eq 1 ] || fail "a CSV as model should fail"

# --- streaming: a 64 MiB file with --memory 16 -----------------------------------------------------------
"$BIN" synth stem4d --out "$DIR/big" --scan-x 64 --scan-y 64 --detector 64 --seed 4 >/dev/null 2>&1 || fail "big synth"
"$BIN" diffraction-ae train --input "$DIR/big/stem4d.tif" --bin 2 --stride 8 --width 4 --embedding 4 --epochs 1 \
    --threads 1 --out "$DIR/bt" >/dev/null 2>"$DIR/bt.err" || fail "train on the big set: $(cat "$DIR/bt.err")"
TIME=""
[ -x /usr/bin/time ] && TIME="/usr/bin/time -f %M -o $DIR/rss.txt"
$TIME "$BIN" diffraction-ae apply --model "$DIR/bt/model.safetensors" --input "$DIR/big/stem4d.tif" --memory 16 \
    --threads 1 --out "$DIR/ba" --json >"$DIR/ba.out" 2>"$DIR/ba.err" || fail "apply --memory 16: $(cat "$DIR/ba.err")"
grep -q '"scan_x":64' "$DIR/ba.out" || fail "big apply summary: $(cat "$DIR/ba.out")"
# (not under the sanitizers, FL_QUICK: AddressSanitizer's shadow memory and quarantine inflate the RSS)
if [ -n "$TIME" ] && [ -s "$DIR/rss.txt" ] && [ -z "${FL_QUICK:-}" ]; then
    # the budget covers the engine's allocations; the process baseline (code, shared libraries) comes on top
    /usr/bin/time -f %M -o "$DIR/rss0.txt" "$BIN" diffraction-ae apply --help >/dev/null 2>&1
    rss=$(tail -1 "$DIR/rss.txt")
    base=$(tail -1 "$DIR/rss0.txt")
    echo "apply over $(($(wc -c <"$DIR/big/stem4d.tif") / 1048576)) MiB with --memory 16: peak RSS $((rss / 1024)) MiB" \
        "(baseline $((base / 1024)) MiB)"
    [ "$rss" -le $((base + 16 * 1024)) ] || fail "peak RSS ${rss} KiB exceeds baseline ${base} KiB + the 16 MiB budget"
fi

if [ $fails -ne 0 ]; then
    echo "$fails failure(s)"
    exit 1
fi
echo "PASS"
exit 0
