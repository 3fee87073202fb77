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

# --- issue 3: latent size 2 on the loops toy model ------------------------------------------------------
# GMM centroid curves decoded by im2spec are distinct: the RMS difference of every pair of decoded centroid
# loops is above the noise of the toy model (synth loops --noise default 0.03, native/src/synth/loops_grid.c).
NOISE=0.03
L2="--patch 8 --latent 2 --filters 8 --epochs 30 --batch 32 --seed 1 --threads 1"
"$BIN" im2spec train --structure "$S" --input "$G" $L2 --out "$DIR/i2" >/dev/null 2>"$DIR/i2.err" ||
    fail "im2spec train --latent 2: $(cat "$DIR/i2.err")"
"$BIN" latent gmm --input "$DIR/i2/latent.tif" --components 3 --model "$DIR/i2/model.safetensors" --threads 1 \
    --out "$DIR/gi2" >/dev/null 2>"$DIR/gi2.err" || fail "latent gmm --model (im2spec, z 2): $(cat "$DIR/gi2.err")"
[ ! -e "$DIR/gi2/latent_grid.tif" ] || fail "an im2spec model should give no latent_grid.tif"
# pairwise RMS of the decoded centroid curves (columns 2.. of decoded_centroids.csv); prints "a-b rms" lines
pair_rms() {
    awk -F, 'NR == 1 { k = NF - 1; next }
        { n++; for (a = 2; a <= NF; a++) for (b = a + 1; b <= NF; b++) s[a, b] += ($a - $b) ^ 2 }
        END { for (a = 2; a <= k + 1; a++) for (b = a + 1; b <= k + 1; b++) printf "%d-%d %.5f\n", a - 1, b - 1, sqrt(s[a, b] / n) }' "$1"
}
pair_rms "$DIR/gi2/decoded_centroids.csv" >"$DIR/gi2/pairs.txt"
echo "decoded centroid loops, pairwise RMS (noise $NOISE): $(tr '\n' ' ' <"$DIR/gi2/pairs.txt")"
[ "$(wc -l <"$DIR/gi2/pairs.txt")" -eq 3 ] || fail "expected 3 centroid pairs: $(cat "$DIR/gi2/pairs.txt")"
awk -v noise=$NOISE '!($2 > noise) { bad = 1 } END { exit bad }' "$DIR/gi2/pairs.txt" ||
    fail "decoded centroid loops not distinct (pairwise RMS <= $NOISE): $(cat "$DIR/gi2/pairs.txt")"

# Latent-grid montage of a spec2im model (latent 2): shape, finite values, smooth decoder (neighbouring
# tiles differ less than opposite corners), same bytes for 1 and 2 threads.
"$BIN" spec2im train --structure "$S" --input "$G" $L2 --out "$DIR/s2" >/dev/null 2>"$DIR/s2.err" ||
    fail "spec2im train --latent 2: $(cat "$DIR/s2.err")"
"$BIN" latent grid --model "$DIR/s2/model.safetensors" --input "$DIR/s2/latent.tif" --n 6 --threads 1 \
    --out "$DIR/lg" --json >"$DIR/lg.out" 2>"$DIR/lg.err" || fail "latent grid: $(cat "$DIR/lg.err")"
grep -q '"width":48,"height":48' "$DIR/lg.out" || fail "latent grid: 6 x 6 tiles of 8 px should be 48 x 48: $(cat "$DIR/lg.out")"
grep -q '"range":"auto"' "$DIR/lg.out" && grep -q '"grid_tile":8' "$DIR/lg.out" || fail "latent grid summary: $(cat "$DIR/lg.out")"
has_label "$DIR/lg/latent_grid.tif" 'bottom to top' || fail "latent_grid.tif has no slice label with the ranges"
be_u() { local v=0 b; for b in $(od -An -v -tu1 -j "$2" -N "$3" "$1"); do v=$((v * 256 + b)); done; echo "$v"; }
le_u() { local v=0 b; for b in $(od -An -v -tu1 -j "$2" -N "$3" "$1" | awk '{ for (i = NF; i >= 1; i--) printf "%s ", $i }'); do v=$((v * 256 + b)); done; echo "$v"; }
# tiff_tag FILE TAG: value of a SHORT/LONG tag of the first IFD of a classic TIFF
tiff_tag() {
    local f=$1 u=be_u ifd cnt i e
    [ "$(od -An -c -N2 "$f" | tr -d ' ')" = "II" ] && u=le_u
    ifd=$($u "$f" 4 4); cnt=$($u "$f" "$ifd" 2)
    for ((i = 0; i < cnt; i++)); do
        e=$((ifd + 2 + 12 * i))
        if [ "$($u "$f" $e 2)" -eq "$2" ]; then
            if [ "$($u "$f" $((e + 2)) 2)" -eq 3 ]; then $u "$f" $((e + 8)) 2; else $u "$f" $((e + 8)) 4; fi
            return 0
        fi
    done
    return 1
}
# tiff_floats FILE: the float32 pixels of a one-strip, one-plane TIFF, one per line
tiff_floats() {
    local f=$1 w h off end=big
    [ "$(od -An -c -N2 "$f" | tr -d ' ')" = "II" ] && end=little
    w=$(tiff_tag "$f" 256) && h=$(tiff_tag "$f" 257) && off=$(tiff_tag "$f" 273) || return 1
    od -An -v -tf4 --endian=$end -j "$off" -N $((4 * w * h)) "$f" | tr -s ' ' '\n' | sed '/^$/d'
}
GW=$(tiff_tag "$DIR/lg/latent_grid.tif" 256) GH=$(tiff_tag "$DIR/lg/latent_grid.tif" 257)
[ "$GW" = 48 ] && [ "$GH" = 48 ] || fail "latent_grid.tif is ${GW} x ${GH}, expected 48 x 48"
if tiff_floats "$DIR/lg/latent_grid.tif" >"$DIR/lg/values.txt" && [ "$(wc -l <"$DIR/lg/values.txt")" -eq 2304 ]; then
    # tiles t = (row, col) of 8 x 8; RMS between horizontally / vertically adjacent tiles and between the two
    # pairs of opposite corners
    awk -v n=6 -v P=8 '
        { if ($1 !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) bad++; v[NR - 1] = $1 + 0 }
        function d(r1, c1, r2, c2,   y, x, s, a, b) {
            s = 0
            for (y = 0; y < P; y++) for (x = 0; x < P; x++) {
                a = v[(r1 * P + y) * n * P + c1 * P + x]; b = v[(r2 * P + y) * n * P + c2 * P + x]; s += (a - b) ^ 2 }
            return sqrt(s / (P * P))
        }
        END {
            if (bad) { print "non-finite or unreadable values: " bad; exit 1 }
            mx = 0; sum = 0; cnt = 0
            for (r = 0; r < n; r++) for (c = 0; c < n; c++) {
                if (c + 1 < n) { e = d(r, c, r, c + 1); sum += e; cnt++; if (e > mx) mx = e }
                if (r + 1 < n) { e = d(r, c, r + 1, c); sum += e; cnt++; if (e > mx) mx = e }
            }
            c1 = d(0, 0, n - 1, n - 1); c2 = d(0, n - 1, n - 1, 0)
            printf "latent grid 6 x 6: neighbour tile RMS mean %.4f max %.4f, opposite corners %.4f %.4f\n", sum / cnt, mx, c1, c2
            exit !(mx < c1 && mx < c2)
        }' "$DIR/lg/values.txt" || fail "latent grid: neighbouring tiles should differ less than opposite corners"
else
    fail "cannot read the 48 x 48 float pixels of latent_grid.tif"
fi
"$BIN" latent grid --model "$DIR/s2/model.safetensors" --input "$DIR/s2/latent.tif" --n 6 --threads 2 \
    --out "$DIR/lg2" >/dev/null 2>&1 || fail "latent grid --threads 2"
cmp -s "$DIR/lg/latent_grid.tif" "$DIR/lg2/latent_grid.tif" || fail "latent grid depends on the thread count"
# a given range without a stack: the tile values are exactly the documented grid
"$BIN" latent grid --model "$DIR/s2/model.safetensors" --range -1,1,0,2 --n 3 --out "$DIR/lgr" --json \
    >"$DIR/lgr.out" 2>"$DIR/lgr.err" || fail "latent grid --range: $(cat "$DIR/lgr.err")"
grep -q '"grid_z0":\[-1,0,1\],"grid_z1":\[0,1,2\]' "$DIR/lgr.out" || fail "latent grid --range values: $(cat "$DIR/lgr.out")"
grep -q '"width":24,"height":24' "$DIR/lgr.out" || fail "latent grid --n 3: $(cat "$DIR/lgr.out")"
# the Gaussian mixture of a spec2im latent stack writes decoded patches and the montage (default 8 x 8)
"$BIN" latent gmm --input "$DIR/s2/latent.tif" --components 3 --model "$DIR/s2/model.safetensors" --threads 1 \
    --out "$DIR/gs2" --json >"$DIR/gs2.out" 2>"$DIR/gs2.err" || fail "latent gmm --model (spec2im): $(cat "$DIR/gs2.err")"
for f in decoded_centroids.tif latent_grid.tif; do [ -s "$DIR/gs2/$f" ] || fail "latent gmm (spec2im): missing $f"; done
[ "$(tiff_tag "$DIR/gs2/latent_grid.tif" 256)" = 64 ] || fail "latent gmm: latent_grid.tif should be 8 x 8 tiles of 8 px"
grep -q '"grid":8' "$DIR/gs2.out" || fail "latent gmm summary lacks the grid: $(cat "$DIR/gs2.out")"
# bad input: one sentence, nothing written
expect_none() { # want_rc pattern outdir args...
    local want=$1 pattern=$2 out=$3
    shift 3
    "$BIN" "$@" >"$DIR/e.out" 2>"$DIR/e.err"
    local rc=$?
    [ $rc -eq "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$DIR/e.err")"
    grep -q -- "$pattern" "$DIR/e.err" || fail "'$*': message lacks '$pattern': $(cat "$DIR/e.err")"
    [ "$want" -ne 1 ] || [ "$(wc -l <"$DIR/e.err")" -eq 1 ] || fail "'$*': more than one line on stderr: $(cat "$DIR/e.err")"
    [ ! -e "$out" ] || fail "'$*' created $out"
}
expect_none 1 "has 2 latent channels but the latent stack has 4" "$DIR/gb1" latent grid \
    --model "$DIR/s2/model.safetensors" --input "$DIR/t/latent.tif" --out "$DIR/gb1"
expect_none 1 "is a 'im2spec' model, not a spec2im model" "$DIR/gb2" latent grid --model "$DIR/i2/model.safetensors" \
    --input "$DIR/i2/latent.tif" --out "$DIR/gb2"
expect_none 2 "must be between 1 and 128" "$DIR/gb3" latent grid --model "$DIR/s2/model.safetensors" \
    --input "$DIR/s2/latent.tif" --n 0 --out "$DIR/gb3"
expect_none 2 "needs --input" "$DIR/gb4" latent grid --model "$DIR/s2/model.safetensors" --out "$DIR/gb4"
expect_none 2 "finite a < b" "$DIR/gb5" latent grid --model "$DIR/s2/model.safetensors" --range 1,1 --out "$DIR/gb5"
expect_none 2 "finite a < b" "$DIR/gb6" latent grid --model "$DIR/s2/model.safetensors" --range 0,1,2 --out "$DIR/gb6"
expect_none 1 "needs a spec2im model" "$DIR/gb7" latent gmm --input "$DIR/i2/latent.tif" --grid 4 \
    --model "$DIR/i2/model.safetensors" --out "$DIR/gb7"
expect_none 1 "ferrolens: error:" "$DIR/gb8" latent grid --model "$DIR/nonexistent.safetensors" --range 0,1 --out "$DIR/gb8"
"$BIN" latent grid --help 2>/dev/null | grep -qi "counted from the bottom" || fail "latent grid --help does not document the tile layout"

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
