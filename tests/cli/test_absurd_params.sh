#!/usr/bin/env bash
# CLI hardening (issue 6): absurd numeric options. Every numeric option of every command (found from the
# commands' own --help, so a new option is swept without editing this file) gets 0, -1 and 1e12 on an
# otherwise tiny, valid run. Each run must either succeed (a legal value, e.g. --seed 0 or --threads 0),
# fail with exit 1 and ONE "ferrolens: error:" line, or be a usage error (exit 2: "ferrolens: <cmd>: error:"
# naming the option, then the "Try ... --help" line). Never a crash (exit >= 128), a hang (timeout 20 s) or
# an absurd allocation (the runs have a 3 GB address-space limit, so one fails instead of swapping).
# A failed run writes nothing into its --out. No python needed.
# usage: test_absurd_params.sh FERROLENS_BINARY SCRATCH_DIR   (exit 0 pass, 1 fail, 77 skip)
set -u
BIN=${1:?usage: test_absurd_params.sh ferrolens-binary scratch-dir}
DIR=${2:?usage: test_absurd_params.sh ferrolens-binary scratch-dir}
[ -x "$BIN" ] || { echo "SKIP: $BIN is not executable"; exit 77; }
for g in "synth iv-grid" "synth loops" "synth stem4d" "synth pfm-walls" "spectral-ae train" "im2spec train" \
         "diffraction-ae train" "walls train" "stem com" "latent gmm"; do
    "$BIN" $g --help >/dev/null 2>&1 || { echo "SKIP: '$g' not in this build"; exit 77; }
done
rm -rf "$DIR"
mkdir -p "$DIR" || exit 1
DIR=$(cd "$DIR" && pwd)
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
T0=$(date +%s)

# --- tiny inputs and one model per family ------------------------------------------------------------------
q() { "$BIN" "$@" --threads 1 >/dev/null 2>"$DIR/setup.err" || fail "setup: $*: $(cat "$DIR/setup.err")"; }
q synth iv-grid --out "$DIR/iv" --width 4 --height 4 --points 16 --seed 2
q synth loops --out "$DIR/lp" --width 12 --height 12 --points 16 --seed 4
q synth stem4d --out "$DIR/st" --scan-x 4 --scan-y 4 --detector 16 --seed 3
q synth pfm-walls --out "$DIR/pw" --size 32 --count 1 --test-count 1 --ood-count 1 --seed 3
IV="$DIR/iv/iv_grid.tif" LS="$DIR/lp/loops_structure.tif" LG="$DIR/lp/loops_grid.tif" ST="$DIR/st/stem4d.tif"
PW="$DIR/pw/pfm_walls_train.tif" PM="$DIR/pw/pfm_walls_train_mask.tif"
SAE_CFG="--epochs 1 --hidden 2 --latent 2 --layers 1 --batch 8"
I2S_CFG="--patch 8 --latent 2 --filters 2 --epochs 1 --batch 8"
DAE_CFG="--width 2 --embedding 2 --epochs 1 --batch 8"
WAL_CFG="--members 1 --filters 2 --iterations 1 --patch 32 --batch 1 --swa-last 0"
q spectral-ae train --input "$IV" --out "$DIR/sae" $SAE_CFG
q im2spec train --structure "$LS" --input "$LG" --out "$DIR/i2s" $I2S_CFG
q spec2im train --structure "$LS" --input "$LG" --out "$DIR/s2i" $I2S_CFG
q diffraction-ae train --input "$ST" --out "$DIR/dae" $DAE_CFG
q walls train --input "$PW" --masks "$PM" --out "$DIR/w" $WAL_CFG
q stem vdf --input "$ST" --annulus 8,8,0,4 --out "$DIR/vdf"
q walls skeleton --input "$PM" --out "$DIR/sk"
for f in "$DIR"/{sae,i2s,s2i,dae,w}/model.safetensors "$DIR/vdf/vdf.tif" "$DIR/sk/skeleton.tif"; do
    [ -s "$f" ] || { echo "FAIL: no $f to test with"; exit 1; }
done
KERAS="$(cd "$(dirname "$0")/../fuzz/regressions/keras" && pwd)/hdf5-attr-decode-heap-overflow.h5"

# --- the table: command | a tiny valid run (without --out) ---------------------------------------------------
# Every action of every group must be here (checked below), so a new command cannot slip through.
TABLE=(
    "spectral-ae train|--input $IV $SAE_CFG"
    "spectral-ae apply|--input $IV --model $DIR/sae/model.safetensors"
    "spectral-ae traverse|--input $IV --model $DIR/sae/model.safetensors --levels 2"
    "im2spec train|--structure $LS --input $LG $I2S_CFG"
    "im2spec apply|--structure $LS --input $LG --model $DIR/i2s/model.safetensors"
    "spec2im train|--structure $LS --input $LG $I2S_CFG"
    "spec2im apply|--structure $LS --input $LG --model $DIR/s2i/model.safetensors"
    "decompose pca|--input $IV --components 2"
    "decompose nmf|--input $IV --components 2 --max-iter 5 --shift"
    "latent gmm|--input $DIR/i2s/latent.tif --components 2 --max-iter 5"
    "latent grid|--model $DIR/s2i/model.safetensors --input $DIR/s2i/latent.tif --n 2"
    "diffraction-ae train|--input $ST $DAE_CFG"
    "diffraction-ae apply|--input $ST --model $DIR/dae/model.safetensors"
    "stem com|--input $ST --hist-bins 4"
    "stem vdf|--input $ST --annulus 8,8,0,4"
    "stem compare|--input $ST --select-a $DIR/vdf/vdf.tif --select-b $DIR/vdf/vdf.tif"
    "walls train|--input $PW --masks $PM $WAL_CFG"
    "walls retrain|--model $DIR/w/model.safetensors --input $PW --masks $PM --iterations 1"
    "walls apply|--model $DIR/w/model.safetensors --input $PW"
    "walls live|--model $DIR/w/model.safetensors --input $PW --no-check"
    "walls skeleton|--input $PM"
    "walls points|--input $DIR/sk/skeleton.tif --every 4"
    "walls metrics|--input $PM --truth $PM"
    "loops descriptors|--input $LG --vmax 5"
    "model import-keras|--input $KERAS"
    "model info|--model $DIR/sae/model.safetensors"
    "synth iv-grid|--width 4 --height 4 --points 16"
    "synth loops|--width 8 --height 8 --points 16"
    "synth stem4d|--scan-x 2 --scan-y 2 --detector 8"
    "synth pfm-walls|--size 32 --count 1 --test-count 1 --ood-count 1"
)
# metavars of numeric options in the help tables (FILE, DIR, WxH, TYPE, ... are not numeric)
NUMERIC='N|K|X|F|V|PX|DEG|A0|T|P|B|I|C|R|MiB|BYTES|EPOCHS|0\|1|8\|16'

# every action of every group is in the table
for g in $("$BIN" --help | awk '/^Groups:/{p=1; next} /^$/{p=0} p{print $1}'); do
    [ "$g" = bench ] && continue
    for a in $("$BIN" "$g" --help 2>&1 | awk '/^  [a-z][a-z0-9-]*  /{print $1}'); do
        found=0
        for row in "${TABLE[@]}"; do [ "${row%%|*}" = "$g $a" ] && found=1; done
        [ $found -eq 1 ] || fail "'$g $a' is not in the absurd-parameter table"
    done
done

# Address-space cap: a huge allocation must fail, not succeed or swap. AddressSanitizer reserves terabytes of
# shadow memory, so under it (./run sets ASAN_OPTIONS) the cap is ASan's own: larger mallocs return NULL.
limit_memory() { ulimit -v 3000000; }
if [ -n "${ASAN_OPTIONS:-}" ]; then
    limit_memory() { :; }
    export ASAN_OPTIONS="$ASAN_OPTIONS:allocator_may_return_null=1:max_allocation_size_mb=3000"
fi

n=0 ran=0 refused=0 usage=0 opts=0
for row in "${TABLE[@]}"; do
    cmd=${row%%|*} base=${row#*|}
    # the tiny base run itself must work (or the sweep would only test failures)
    out="$DIR/base_${cmd// /_}"
    args="$cmd $base --out $out --threads 1"
    [ "$cmd" = "model info" ] && args="$cmd $base"
    [ "$cmd" = "model import-keras" ] && args="$cmd $base --model $out/m.safetensors"
    (limit_memory; timeout 20 "$BIN" $args) >"$DIR/base.out" 2>"$DIR/base.err"
    rc=$?
    if [ "$cmd" = "model import-keras" ]; then # no valid Keras file in the tree: a damaged one, refused
        [ $rc -eq 1 ] || fail "[$args] base run exited $rc: $(cat "$DIR/base.err")"
    else
        [ $rc -eq 0 ] || fail "[$args] base run exited $rc: $(cat "$DIR/base.err")"
    fi
    for opt in $("$BIN" $cmd --help | grep -E "^  --[a-z0-9-]+ ($NUMERIC)( |$)" | awk '{print substr($1, 3)}'); do
        opts=$((opts + 1))
        vals="0 -1 1e12"
        # ABSURD_MAX=1 (not in ctest: slow): also the largest legal value the help shows, "(min..max)"; those
        # runs get 5 s, and one still running then counts as long-running work, not as a hang
        if [ -n "${ABSURD_MAX:-}" ]; then
            vals="$vals $("$BIN" $cmd --help | grep -E "^  --$opt " | grep -oE '\([-0-9.e+]+\.\.[-0-9.e+]+\)$' | sed 's/.*\.\.//; s/)//')"
        fi
        for v in $vals; do
            n=$((n + 1))
            out="$DIR/o$n"
            args="$cmd $base --out $out --threads 1 --$opt $v"
            [ "$cmd" = "model info" ] && args="$cmd $base --$opt $v"
            [ "$cmd" = "model import-keras" ] && args="$cmd $base --model $out/m.safetensors --$opt $v"
            lim=20; case $v in 0 | -1 | 1e12) ;; *) lim=5 ;; esac
            (limit_memory; timeout $lim "$BIN" $args) >"$DIR/o$n.out" 2>"$DIR/o$n.err"
            rc=$?
            if [ $rc -eq 124 ] && [ $lim -eq 5 ]; then echo "long-running: $cmd --$opt $v"; continue; fi
            err=$(cat "$DIR/o$n.err")
            case $rc in
            0) ran=$((ran + 1)) ;;
            1)
                refused=$((refused + 1))
                [ "$(grep -c . "$DIR/o$n.err")" -eq 1 ] && grep -q "^ferrolens: error: ." "$DIR/o$n.err" ||
                    fail "[$args] exit 1 without one error line: $err"
                if [ -d "$out" ] && [ -n "$(ls -A "$out")" ]; then fail "[$args] failed but wrote into --out: $(ls "$out")"; fi
                ;;
            2)
                usage=$((usage + 1))
                [ "$(grep -c . "$DIR/o$n.err")" -eq 2 ] && grep -q "^ferrolens: $cmd: error: .*--$opt" "$DIR/o$n.err" ||
                    fail "[$args] usage error that does not name --$opt in one sentence: $err"
                [ ! -e "$out" ] || fail "[$args] usage error but --out was created"
                ;;
            124) fail "[$args] still running after 20 s (hang?)" ;;
            *) fail "[$args] exited $rc (crash?): $(tail -c 300 "$DIR/o$n.err")" ;;
            esac
        done
    done
done
secs=$(($(date +%s) - T0))
echo "$n absurd-parameter runs over $opts numeric options of ${#TABLE[@]} commands in $secs s:" \
    "$ran ran (legal values), $refused refused (exit 1), $usage usage errors (exit 2)"
[ $opts -gt 100 ] || fail "only $opts numeric options found: is the --help table format still the one parsed here?"
if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "PASS"
