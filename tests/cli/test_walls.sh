#!/usr/bin/env bash
# CLI end-to-end: ferrolens synth pfm-walls and ferrolens walls skeleton|points|metrics.
# usage: test_walls.sh FERROLENS_BINARY SCRATCH_DIR   (exit 0 pass, 1 fail, 77 skip)
set -u
BIN=${1:?usage: test_walls.sh ferrolens-binary scratch-dir}
DIR=${2:?usage: test_walls.sh ferrolens-binary scratch-dir}
[ -x "$BIN" ] || { echo "SKIP: $BIN is not executable"; exit 77; }
rm -rf "$DIR"
mkdir -p "$DIR" || exit 1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# value of a top-level number field of a one-line JSON object
jnum() { grep -o "\"$2\":[-0-9.eE+][-0-9.eE+]*" "$1" | head -1 | cut -d: -f2; }

# --- synth: the three sets, JSON, determinism --------------------------------------------------------
"$BIN" synth pfm-walls --out "$DIR/s" --size 64 --count 2 --test-count 1 --ood-count 4 --seed 3 --json >"$DIR/s.out" 2>"$DIR/s.err"
rc=$?
[ $rc -eq 0 ] || fail "synth pfm-walls exited $rc: $(cat "$DIR/s.err")"
for f in pfm_walls_train.tif pfm_walls_train_mask.tif pfm_walls_test.tif pfm_walls_test_mask.tif pfm_walls_ood.tif \
    pfm_walls_ood_mask.tif pfm_walls_summary.json; do
    [ -s "$DIR/s/$f" ] || fail "missing output $DIR/s/$f"
done
[ "$(wc -l <"$DIR/s.out")" -eq 1 ] || fail "--json stdout is not exactly one line"
grep -q '"command":"synth pfm-walls"' "$DIR/s.out" || fail "--json: no command field"
grep -q '"ood: checkerboard"' "$DIR/s.out" || fail "--json: OOD labels missing: $(cat "$DIR/s.out")"
grep -a -q 'images=2' "$DIR/s/pfm_walls_train.tif" || fail "train stack is not 2 images"
grep -a -q 'images=4' "$DIR/s/pfm_walls_ood_mask.tif" || fail "OOD mask stack is not 4 images"
"$BIN" synth pfm-walls --out "$DIR/s2" --size 64 --count 2 --test-count 1 --ood-count 4 --seed 3 --threads 1 >"$DIR/s2.out" 2>/dev/null ||
    fail "second synth run failed"
[ ! -s "$DIR/s2.out" ] || fail "without --json nothing should go to stdout: $(cat "$DIR/s2.out")"
for f in pfm_walls_train.tif pfm_walls_train_mask.tif pfm_walls_ood.tif; do
    cmp -s "$DIR/s/$f" "$DIR/s2/$f" || fail "same seed gave a different $f"
done
"$BIN" synth pfm-walls --out "$DIR/s3" --size 64 --count 2 --condition in --seed 3 2>/dev/null || fail "--condition in failed"
cmp -s "$DIR/s/pfm_walls_train.tif" "$DIR/s3/pfm_walls.tif" || fail "--condition in differs from the train set of the same seed"
"$BIN" synth pfm-walls --out "$DIR/s4" --size 64 --count 2 --condition in --seed 4 2>/dev/null || fail "seed 4 failed"
if cmp -s "$DIR/s3/pfm_walls.tif" "$DIR/s4/pfm_walls.tif"; then fail "another seed gave the same images"; fi
"$BIN" synth pfm-walls --out "$DIR/c" --size 64 --count 2 --condition clean --kind 180 2>/dev/null || fail "--condition clean failed"
"$BIN" synth pfm-walls --out "$DIR/o" --size 64 --count 1 --condition ood 2>/dev/null || fail "--condition ood failed"

# --- skeleton: a mask stays itself, an amplitude image in [0, 1] is a probability map ----------------
"$BIN" walls skeleton --input "$DIR/s/pfm_walls_train_mask.tif" --out "$DIR/k" --json >"$DIR/k.out" 2>"$DIR/k.err" ||
    fail "walls skeleton failed: $(cat "$DIR/k.err")"
for f in mask.tif skeleton.tif summary.json; do [ -s "$DIR/k/$f" ] || fail "missing $DIR/k/$f"; done
grep -q '"input_kind":"mask"' "$DIR/k.out" || fail "a 0/1 mask was not taken as a mask: $(cat "$DIR/k.out")"
[ "$(jnum "$DIR/k.out" mask_pixels)" = "$(jnum "$DIR/k.out" skeleton_pixels)" ] ||
    fail "thinning a one-pixel-wide truth mask changed it: $(cat "$DIR/k.out")"
"$BIN" walls metrics --input "$DIR/k/skeleton.tif" --truth "$DIR/s/pfm_walls_train_mask.tif" --tolerance 0 >"$DIR/m0.out" 2>"$DIR/m0.err" ||
    fail "metrics failed: $(cat "$DIR/m0.err")"
[ "$(jnum "$DIR/m0.out" f1)" = "1.000000" ] || fail "skeleton of the truth vs truth: F1 $(jnum "$DIR/m0.out" f1)"
[ "$(jnum "$DIR/m0.out" iou)" = "1.000000" ] || fail "skeleton of the truth vs truth: IoU $(jnum "$DIR/m0.out" iou)"
"$BIN" walls skeleton --input "$DIR/c/pfm_walls.tif" --threshold 0.5 --out "$DIR/kp" --json >"$DIR/kp.out" 2>"$DIR/kp.err" ||
    fail "skeleton of a probability map failed: $(cat "$DIR/kp.err")"
grep -q '"input_kind":"probability"' "$DIR/kp.out" || fail "clean amplitudes in [0,1] not read as probabilities"
mp=$(jnum "$DIR/kp.out" mask_pixels)
sp=$(jnum "$DIR/kp.out" skeleton_pixels)
[ "$mp" -gt 2000 ] && [ "$sp" -gt 0 ] && [ "$sp" -lt $((mp / 4)) ] || fail "probability map: $mp mask, $sp skeleton pixels"

# --- points --------------------------------------------------------------------------------------------
"$BIN" walls points --input "$DIR/s/pfm_walls_train_mask.tif" --every 5 --out "$DIR/p" --json >"$DIR/p.out" 2>"$DIR/p.err" ||
    fail "walls points failed: $(cat "$DIR/p.err")"
[ "$(head -1 "$DIR/p/points.csv")" = "x,y,path,arc,slice" ] || fail "points.csv header: $(head -1 "$DIR/p/points.csv")"
rows=$(($(wc -l <"$DIR/p/points.csv") - 1))
[ "$rows" = "$(jnum "$DIR/p.out" points)" ] || fail "points.csv has $rows rows, JSON says $(jnum "$DIR/p.out" points)"
[ "$rows" -gt 20 ] || fail "too few points: $rows"
[ -s "$DIR/p/points.tif" ] || fail "no points.tif"
# arc lengths along each path grow by 5..5*sqrt(2) between consecutive points
awk -F, 'NR > 1 { if ($3 == p && s == $5) { d = $4 - a; if (d < 4.999 || d > 7.072) bad++ } p = $3; a = $4; s = $5 }
         END { exit bad > 0 }' "$DIR/p/points.csv" || fail "arc spacing along a path is not 5..7.07 px"
"$BIN" walls points --input "$DIR/s/pfm_walls_train_mask.tif" --fraction 0.1 --out "$DIR/pf" >/dev/null 2>&1 || fail "--fraction failed"

# --- bad input: exit 1 and a clear message; usage errors: exit 2 --------------------------------------
expect() {
    local code=$1 want=$2
    shift 2
    "$BIN" "$@" >"$DIR/u.out" 2>"$DIR/u.err"
    local rc=$?
    [ $rc -eq "$code" ] || fail "'$*' exited $rc, expected $code"
    grep -q -- "$want" "$DIR/u.err" || fail "'$*': stderr lacks '$want': $(cat "$DIR/u.err")"
}
expect 1 "is not a binary mask" walls points --input "$DIR/s/pfm_walls_train.tif" --every 3 --out "$DIR/x"
expect 1 "is not a binary mask" walls metrics --input "$DIR/s/pfm_walls_train_mask.tif" --truth "$DIR/s/pfm_walls_train.tif"
expect 1 "not a binary mask" walls skeleton --input "$DIR/s/pfm_walls_train.tif" --out "$DIR/x"
expect 1 "size mismatch" walls metrics --input "$DIR/s/pfm_walls_train_mask.tif" --truth "$DIR/s/pfm_walls_test_mask.tif"
expect 1 "the mask is empty" walls points --input "$DIR/o/pfm_walls_mask.tif" --every 3 --out "$DIR/x"
expect 2 "exactly one of --every K and --fraction F" walls points --input "$DIR/k/mask.tif" --every 3 --fraction 0.5 --out "$DIR/x"
expect 2 "exactly one of --every K and --fraction F" walls points --input "$DIR/k/mask.tif" --out "$DIR/x"
expect 2 "--truth TRUTH.tif is required" walls metrics --input "$DIR/k/mask.tif"
expect 2 "--masks is required" walls train --input a.tif
expect 2 "did you mean 'skeleton'" walls skeletn
expect 2 "did you mean 'clean'" synth pfm-walls --out "$DIR/x" --condition claen
expect 2 "option --size must be between 32" synth pfm-walls --out "$DIR/x" --size 8
[ ! -e "$DIR/x" ] || fail "a failed command created its output directory"
# a 2 x 2 RGB TIFF, written byte by byte (little-endian, uncompressed, one strip)
le16() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))"; }
le32() { le16 $(($1 & 65535)); le16 $(($1 >> 16 & 65535)); }
ent() { le16 "$1"; le16 "$2"; le32 "$3"; if [ "$2" -eq 3 ] && [ "$3" -eq 1 ]; then le16 "$4"; le16 0; else le32 "$4"; fi; }
{
    printf 'II*\000'; le32 8; le16 10
    ent 256 3 1 2; ent 257 3 1 2; ent 258 3 3 134; ent 259 3 1 1; ent 262 3 1 2
    ent 273 4 1 140; ent 277 3 1 3; ent 278 3 1 2; ent 279 4 1 12; ent 284 3 1 1
    le32 0; le16 8; le16 8; le16 8
    printf '\377\000\000\000\377\000\000\000\377\377\377\377'
} >"$DIR/rgb.tif"
[ "$(wc -c <"$DIR/rgb.tif")" -eq 152 ] || fail "test RGB TIFF has $(wc -c <"$DIR/rgb.tif") bytes"
expect 1 "holds an RGB/colour image" walls metrics --input "$DIR/rgb.tif" --truth "$DIR/k/mask.tif"
expect 1 "holds an RGB/colour image" walls skeleton --input "$DIR/rgb.tif" --out "$DIR/x"

# --- help ------------------------------------------------------------------------------------------------
"$BIN" walls --help >"$DIR/h.out" 2>/dev/null || fail "walls --help exited non-zero"
for a in skeleton points metrics train; do grep -q "$a" "$DIR/h.out" || fail "walls --help does not list $a"; done
"$BIN" synth pfm-walls --help | grep -q "pfm_walls_train_mask.tif" || fail "synth pfm-walls --help does not name its outputs"

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "PASS"
exit 0
