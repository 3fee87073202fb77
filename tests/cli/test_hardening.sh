#!/usr/bin/env bash
# CLI hardening (issue 6): size-bomb TIFFs with no memory budget, NaN/Inf pixels, 1-slice stacks and a
# model of another family for every apply command. Every case: exit 1, one "ferrolens: error:" sentence
# with the expected words, no output file. No python needed (NaN/Inf are patched in with dd).
# usage: test_hardening.sh FERROLENS_BINARY SCRATCH_DIR   (exit 0 pass, 1 fail, 77 skip)
set -u
BIN=${1:?usage: test_hardening.sh ferrolens-binary scratch-dir}
DIR=${2:?usage: test_hardening.sh ferrolens-binary scratch-dir}
[ -x "$BIN" ] || { echo "SKIP: $BIN is not executable"; exit 77; }
for g in "synth iv-grid" "synth pfm-walls" "spectral-ae train" "walls train" "im2spec apply" "diffraction-ae apply" \
         "decompose pca" "loops descriptors"; do
    "$BIN" $g --help >/dev/null 2>&1 || { echo "SKIP: '$g' not in this build"; exit 77; }
done
REG="$(cd "$(dirname "$0")/../fuzz/regressions/tiff" && pwd)"
rm -rf "$DIR"
mkdir -p "$DIR" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
n=0
# expect_error "words" ARGS...: exit 1, the words in the error line, nothing written to --out DIR/eN
# (an --out among ARGS is used instead: cli_parse keeps the last of repeated options, so adding a second
# --out would make the folder checks below vacuous)
expect_error() {
    local want=$1; shift
    n=$((n + 1))
    local out="$DIR/e$n" a prev="" own=""
    for a in "$@"; do [ "$prev" = --out ] && out=$a own=1; prev=$a; done
    if [ -n "$own" ]; then set -- "$@" --threads 1; else set -- "$@" --out "$out" --threads 1; fi
    "$BIN" "$@" >"$DIR/e$n.out" 2>"$DIR/e$n.err"
    local rc=$?
    [ $rc -eq 1 ] || fail "[$*] exited $rc, expected 1: $(cat "$DIR/e$n.err")"
    grep -q "^ferrolens: error: .*$want" "$DIR/e$n.err" || fail "[$*] message lacks '$want': $(cat "$DIR/e$n.err")"
    [ "$(grep -c . "$DIR/e$n.err")" -eq 1 ] || fail "[$*] more than one line on stderr: $(cat "$DIR/e$n.err")"
    if [ -d "$out" ] && [ -n "$(ls -A "$out")" ]; then fail "[$*] wrote into --out: $(ls "$out")"; fi
}

# --- TIFF size bombs: refused from the file size, with --memory 0 (no budget) ------------------------------
for f in contiguous-60000x60000x1000-f32-in-200-bytes.tif deflate-60000x60000-f32-in-150-bytes.tif \
         three-pages-60000x60000-f32-uncompressed.tif; do
    expect_error "truncated or damaged" decompose pca --input "$REG/$f" --memory 0
    expect_error "60000 x 60000" spectral-ae train --input "$REG/$f" --memory 0
done

# --- data and two models of different families ----------------------------------------------------------
"$BIN" synth iv-grid --out "$DIR/iv" --width 8 --height 8 --points 16 --seed 2 >/dev/null 2>&1 || fail "synth iv-grid"
"$BIN" synth pfm-walls --out "$DIR/syn" --size 48 --count 1 --test-count 1 --ood-count 1 --seed 3 >/dev/null 2>&1 ||
    fail "synth pfm-walls"
GRID="$DIR/iv/iv_grid.tif"
IMG="$DIR/syn/pfm_walls_test.tif"
"$BIN" spectral-ae train --input "$GRID" --out "$DIR/sae" --epochs 1 --hidden 4 --latent 2 --threads 1 >/dev/null 2>&1 ||
    fail "spectral-ae train"
"$BIN" walls train --input "$DIR/syn/pfm_walls_train.tif" --masks "$DIR/syn/pfm_walls_train_mask.tif" --out "$DIR/w" \
    --members 1 --filters 2 --iterations 2 --patch 32 --threads 1 >/dev/null 2>&1 || fail "walls train"
SAE="$DIR/sae/model.safetensors"
WAL="$DIR/w/model.safetensors"
[ -s "$SAE" ] && [ -s "$WAL" ] || { echo "FAIL: no models to test with"; exit 1; }

# --- a model of another family, for every command that takes --model -------------------------------------
expect_error "is a 'spectral-ae' model, not a ResHedNet" walls apply --model "$SAE" --input "$IMG"
expect_error "is a 'spectral-ae' model, not a ResHedNet" walls live --model "$SAE" --input "$IMG"
expect_error "is a 'spectral-ae' model, not a ResHedNet" walls retrain --model "$SAE" --input "$DIR/syn/pfm_walls_train.tif" \
    --masks "$DIR/syn/pfm_walls_train_mask.tif"
expect_error "is a 'reshednet' model, not a spectral autoencoder" spectral-ae apply --model "$WAL" --input "$GRID"
expect_error "is a 'reshednet' model, not a spectral autoencoder" spectral-ae traverse --model "$WAL" --input "$GRID"
expect_error "is a 'spectral-ae' model, not an im2spec or spec2im" im2spec apply --model "$SAE" --structure "$IMG"
expect_error "is a 'reshednet' model, not an im2spec or spec2im" spec2im apply --model "$WAL" --input "$GRID"
expect_error "is a 'spectral-ae' model, not a diffraction autoencoder" diffraction-ae apply --model "$SAE" --input "$GRID"
expect_error "is a 'reshednet' model, not a diffraction autoencoder" diffraction-ae apply --model "$WAL" --input "$GRID"

# --- NaN / Inf pixels --------------------------------------------------------------------------------------
be_u() { local v=0 b; for b in $(od -An -v -tu1 -j "$2" -N "$3" "$1"); do v=$((v * 256 + b)); done; echo "$v"; }
strip_offset() { # first strip offset of a classic big-endian TIFF as Ferrolens and ImageJ write them
    local f=$1 ifd cnt i
    [ "$(od -An -c -N2 "$f" | tr -d ' ')" = "MM" ] || return 1
    ifd=$(be_u "$f" 4 4); cnt=$(be_u "$f" "$ifd" 2)
    for ((i = 0; i < cnt; i++)); do
        if [ "$(be_u "$f" $((ifd + 2 + 12 * i)) 2)" -eq 273 ]; then be_u "$f" $((ifd + 10 + 12 * i)) 4; return 0; fi
    done
    return 1
}
put_bad() { # put_bad FILE PIXEL nan|inf
    local off; off=$(strip_offset "$1") || { fail "cannot find the pixel data of $1"; return 1; }
    if [ "$3" = inf ]; then printf '\177\200\000\000'; else printf '\177\300\000\000'; fi |
        dd of="$1" bs=1 seek=$((off + 4 * $2)) conv=notrunc status=none
}
for kind in nan inf; do
    cp "$GRID" "$DIR/grid_$kind.tif" && put_bad "$DIR/grid_$kind.tif" 8 $kind   # x=0, y=1 of plane 1
    cp "$IMG" "$DIR/img_$kind.tif" && put_bad "$DIR/img_$kind.tif" 50 $kind     # x=2, y=1 of a 48-wide image
    for cmd in "spectral-ae apply --model $SAE" "spectral-ae train --epochs 1" "decompose pca" "decompose nmf" \
               "loops descriptors"; do
        expect_error "1 NaN/Inf pixel (first at x=0, y=1, slice 1)" $cmd --input "$DIR/grid_$kind.tif"
    done
    expect_error "NaN or infinity at pixel (2, 1)" walls apply --model "$WAL" --input "$DIR/img_$kind.tif"
done
# the original files are untouched by all of this
cmp -s "$GRID" "$DIR/grid_nan.tif" && fail "the NaN patch did not change the copy"

# --- NaN / Inf through the other families: im2spec / spec2im, diffraction-ae, stem, walls live / retrain -----
"$BIN" synth loops --out "$DIR/lp" --width 12 --height 12 --points 16 --seed 4 --threads 1 >/dev/null 2>&1 || fail "synth loops"
"$BIN" synth stem4d --out "$DIR/st" --scan-x 6 --scan-y 6 --detector 16 --seed 3 --threads 1 >/dev/null 2>&1 || fail "synth stem4d"
LS="$DIR/lp/loops_structure.tif" LG="$DIR/lp/loops_grid.tif" ST="$DIR/st/stem4d.tif"
I2S_CFG="--patch 8 --latent 2 --filters 2 --epochs 1 --batch 8"
"$BIN" im2spec train --structure "$LS" --input "$LG" $I2S_CFG --threads 1 --out "$DIR/i2s" >/dev/null 2>&1 || fail "im2spec train"
"$BIN" spec2im train --structure "$LS" --input "$LG" $I2S_CFG --threads 1 --out "$DIR/s2i" >/dev/null 2>&1 || fail "spec2im train"
"$BIN" diffraction-ae train --input "$ST" --width 2 --embedding 2 --epochs 1 --batch 8 --threads 1 --out "$DIR/dae" >/dev/null 2>&1 ||
    fail "diffraction-ae train"
"$BIN" stem vdf --input "$ST" --annulus 8,8,0,4 --threads 1 --out "$DIR/vdf" >/dev/null 2>&1 || fail "stem vdf" # a scan-sized mask
SEL="$DIR/vdf/vdf.tif"
for kind in nan inf; do
    cp "$LS" "$DIR/ls_$kind.tif" && put_bad "$DIR/ls_$kind.tif" 13 $kind            # x=1, y=1 of the 12 x 12 structure
    cp "$LG" "$DIR/lg_$kind.tif" && put_bad "$DIR/lg_$kind.tif" 13 $kind            # x=1, y=1 of plane 1
    cp "$ST" "$DIR/st_$kind.tif" && put_bad "$DIR/st_$kind.tif" 17 $kind            # scan (0, 0), detector (1, 1)
    cp "$DIR/syn/pfm_walls_train.tif" "$DIR/tr_$kind.tif" && put_bad "$DIR/tr_$kind.tif" 50 $kind  # x=2, y=1
    word=NaN; [ $kind = inf ] && word="an infinite value"
    for fam in im2spec spec2im; do
        expect_error "the structure image holds NaN or infinity (first at x=1, y=1)" $fam train --structure "$DIR/ls_$kind.tif"             --input "$LG" $I2S_CFG
        expect_error "image has 1 NaN/Inf pixel (first at x=1, y=1, slice 1)" $fam train --structure "$LS" --input "$DIR/lg_$kind.tif"             $I2S_CFG
    done
    expect_error "the structure image holds NaN or infinity (first at x=1, y=1)" im2spec apply --model "$DIR/i2s/model.safetensors"         --structure "$DIR/ls_$kind.tif"
    expect_error "image has 1 NaN/Inf pixel (first at x=1, y=1, slice 1)" im2spec apply --model "$DIR/i2s/model.safetensors"         --structure "$LS" --input "$DIR/lg_$kind.tif"
    expect_error "image has 1 NaN/Inf pixel (first at x=1, y=1, slice 1)" spec2im apply --model "$DIR/s2i/model.safetensors"         --input "$DIR/lg_$kind.tif"
    expect_error "the structure image holds NaN or infinity (first at x=1, y=1)" spec2im apply --model "$DIR/s2i/model.safetensors"         --input "$LG" --structure "$DIR/ls_$kind.tif"
    # 4D-STEM: every reader of the data (fl_stem4d_read) refuses a non-finite pattern, naming it
    for cmd in "diffraction-ae train --width 2 --embedding 2 --epochs 1 --batch 8" \
               "diffraction-ae apply --model $DIR/dae/model.safetensors" "stem com" "stem vdf --annulus 8,8,0,4" \
               "stem compare --select-a $SEL --select-b $SEL"; do
        expect_error "hold $word in the pattern at scan position (0, 0), detector pixel (1, 1)" $cmd --input "$DIR/st_$kind.tif"
    done
    expect_error "live: line 2 holds NaN or infinity" walls live --model "$WAL" --input "$DIR/img_$kind.tif"
    expect_error "pair 1: the image holds NaN or infinity at pixel (2, 1)" walls retrain --model "$WAL" --input "$DIR/tr_$kind.tif" \
        --masks "$DIR/syn/pfm_walls_train_mask.tif" --iterations 1
done
# latent gmm takes NaN/Inf by design: a pixel without a finite latent vector (the frame edge im2spec skips)
# is left out of the fit and gets cluster 0. One non-finite pixel inside the frame: one pixel fewer clustered.
ppc_sum() { grep -o '"pixels_per_cluster":\[[0-9,]*\]' "$1" | grep -o '[0-9][0-9,]*' | tr ',' '\n' | awk '{s += $1} END {print s + 0}'; }
"$BIN" latent gmm --input "$DIR/i2s/latent.tif" --components 2 --threads 1 --out "$DIR/g0" --json >"$DIR/g0.json" 2>/dev/null ||
    fail "latent gmm (finite)"
for kind in nan inf; do
    cp "$DIR/i2s/latent.tif" "$DIR/lat_$kind.tif" && put_bad "$DIR/lat_$kind.tif" 78 $kind  # x=6, y=6: inside the frame
    "$BIN" latent gmm --input "$DIR/lat_$kind.tif" --components 2 --threads 1 --out "$DIR/g_$kind" --json >"$DIR/g_$kind.json" \
        2>"$DIR/g_$kind.err" || fail "latent gmm with one $kind latent pixel exited $?: $(cat "$DIR/g_$kind.err")"
    a=$(ppc_sum "$DIR/g0.json") b=$(ppc_sum "$DIR/g_$kind.json")
    [ "$a" -gt 1 ] && [ "$b" -eq $((a - 1)) ] || fail "latent gmm: one $kind pixel should drop one pixel from the fit ($a -> $b)"
done

# --- a single plane where a grid of curves is needed ------------------------------------------------------
for cmd in "spectral-ae apply --model $SAE" "spectral-ae train --epochs 1" "decompose pca" "decompose nmf" \
           "loops descriptors"; do
    expect_error "single plane; a grid of curves needs" $cmd --input "$IMG"
done

# --- a failed command removes the --out folders it created, and only those ---------------------------------
# (cli_command_start: spectral-ae train/apply/traverse, im2spec/spec2im train/apply, walls train/retrain/apply/live,
#  stem com/vdf/compare, diffraction-ae train/apply)
gone() { [ ! -e "$1" ] || fail "$2: '$1' was left behind: $(ls -A "$1" 2>&1)"; }
expect_error "not a spectral autoencoder" spectral-ae apply --model "$WAL" --input "$GRID" --out "$DIR/new1/a/b"
gone "$DIR/new1" "spectral-ae apply (new --out with new parents)"
expect_error "not an im2spec or spec2im" im2spec apply --model "$SAE" --structure "$IMG" --out "$DIR/new2/"
gone "$DIR/new2" "im2spec apply (new --out, trailing slash)"
expect_error "60000 x 60000" spectral-ae train --input "$REG/contiguous-60000x60000x1000-f32-in-200-bytes.tif" \
    --memory 0 --out "$DIR/new3"
gone "$DIR/new3" "spectral-ae train"
mkdir -p "$DIR/keep_empty" "$DIR/keep_full" && echo x >"$DIR/keep_full/mine.txt"
expect_error "not a spectral autoencoder" spectral-ae apply --model "$WAL" --input "$GRID" --out "$DIR/keep_empty"
[ -d "$DIR/keep_empty" ] || fail "a pre-existing empty --out folder was removed"
expect_error "not a spectral autoencoder" spectral-ae traverse --model "$WAL" --input "$GRID" --out "$DIR/keep_full/sub"
gone "$DIR/keep_full/sub" "spectral-ae traverse (new folder inside an existing one)"
[ "$(cat "$DIR/keep_full/mine.txt" 2>/dev/null)" = x ] || fail "a file in a pre-existing --out parent was touched"
# walls train / retrain / apply / live run in the same frame (issue 6: walls apply used to leave an empty --out)
expect_error "NaN or infinity at pixel (2, 1)" walls apply --model "$WAL" --input "$DIR/img_nan.tif" --out "$DIR/new4/a"
gone "$DIR/new4" "walls apply (NaN pixel, new nested --out)"
expect_error "live: line 2 holds NaN" walls live --model "$WAL" --input "$DIR/img_nan.tif" --out "$DIR/new5"
gone "$DIR/new5" "walls live (NaN pixel)"
expect_error "pair 1: the image holds NaN" walls retrain --model "$WAL" --input "$DIR/tr_nan.tif" \
    --masks "$DIR/syn/pfm_walls_train_mask.tif" --iterations 1 --out "$DIR/new6"
gone "$DIR/new6" "walls retrain (NaN pixel)"
expect_error "pair 1: the image holds NaN" walls train --input "$DIR/tr_nan.tif" --masks "$DIR/syn/pfm_walls_train_mask.tif" \
    --members 1 --filters 2 --iterations 1 --patch 32 --out "$DIR/new7"
gone "$DIR/new7" "walls train (NaN pixel)"
# stem com / vdf / compare and diffraction-ae train / apply: the same frame (they used to leave an empty --out)
i=8
for cmd in "stem com" "stem vdf --annulus 8,8,0,4" "stem compare --select-a $SEL --select-b $SEL" \
           "diffraction-ae train --width 2 --embedding 2 --epochs 1 --batch 8" \
           "diffraction-ae apply --model $DIR/dae/model.safetensors"; do
    expect_error "hold NaN in the pattern" $cmd --input "$DIR/st_nan.tif" --out "$DIR/new$i/x"
    gone "$DIR/new$i" "$cmd (NaN pattern, new nested --out)"
    expect_error "hold an infinite value in the pattern" $cmd --input "$DIR/st_inf.tif" --out "$DIR/keep_empty"
    [ -d "$DIR/keep_empty" ] && [ -z "$(ls -A "$DIR/keep_empty")" ] || fail "$cmd: the pre-existing empty --out changed"
    expect_error "hold NaN in the pattern" $cmd --input "$DIR/st_nan.tif" --out "$DIR/keep_full/s$i"
    gone "$DIR/keep_full/s$i" "$cmd (new folder inside an existing one)"
    i=$((i + 1))
done
[ "$(ls -A "$DIR/keep_full")" = mine.txt ] && [ "$(cat "$DIR/keep_full/mine.txt")" = x ] ||
    fail "the pre-existing --out parent changed: $(ls -A "$DIR/keep_full")"
# failures before the work (no such input / model) create no folder; in the work (a selection of the wrong
# size, a model for other patterns) remove it again
expect_error "no_such.tif" stem vdf --input "$DIR/no_such.tif" --annulus 8,8,0,4 --out "$DIR/new20"
gone "$DIR/new20" "stem vdf (missing input)"
expect_error "no_such.safetensors" diffraction-ae apply --model "$DIR/no_such.safetensors" --input "$ST" --out "$DIR/new21"
gone "$DIR/new21" "diffraction-ae apply (missing model)"
expect_error "--select-a" stem compare --input "$ST" --select-a "$GRID" --select-b "$SEL" --out "$DIR/new22/y"
gone "$DIR/new22" "stem compare (selection of the wrong size)"
expect_error "is a 'spectral-ae' model, not a diffraction autoencoder" diffraction-ae apply --model "$SAE" --input "$ST" \
    --out "$DIR/new23"
gone "$DIR/new23" "diffraction-ae apply (model of another family)"
# a success keeps its folder
"$BIN" spectral-ae apply --model "$SAE" --input "$GRID" --out "$DIR/ok1/x" --threads 1 >/dev/null 2>&1 ||
    fail "spectral-ae apply (valid)"
[ -s "$DIR/ok1/x/summary.json" ] || fail "a successful command lost its --out folder"

# --- Keras files on which libhdf5 1.10.8 itself crashes: one clean error, no model written ---------------
KREG="$(cd "$(dirname "$0")/../fuzz/regressions/keras" && pwd)"
for f in hdf5-global-heap-H5HG_read-segv.h5 hdf5-attr-decode-heap-overflow.h5; do
    n=$((n + 1))
    "$BIN" model import-keras --input "$KREG/$f" --model "$DIR/k$n.safetensors" >"$DIR/k$n.out" 2>"$DIR/k$n.err"
    rc=$?
    [ $rc -eq 1 ] || fail "import-keras $f exited $rc, expected 1: $(cat "$DIR/k$n.err")"
    # one message from Ferrolens (in a sanitizer build the dying child's own report precedes it on stderr)
    [ "$(grep -c "^ferrolens: " "$DIR/k$n.err")" -eq 1 ] && grep -q "^ferrolens: error: " "$DIR/k$n.err" ||
        fail "import-keras $f: not one error line: $(cat "$DIR/k$n.err")"
    [ ! -e "$DIR/k$n.safetensors" ] || fail "import-keras $f wrote a model"
done
grep -q "the HDF5 library failed while reading .*hdf5-global-heap-H5HG_read-segv.h5" "$DIR"/k*.err ||
    fail "the libhdf5 SEGV is not reported as such"

echo "$n bad-input cases checked"
if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "PASS"
