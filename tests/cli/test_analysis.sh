#!/usr/bin/env bash
# CLI end-to-end: ferrolens decompose pca|nmf and latent gmm.
# usage: test_analysis.sh FERROLENS_BINARY SCRATCH_DIR   (exit 0 pass, 1 fail, 77 skip)
set -u
BIN=${1:?usage: test_analysis.sh ferrolens-binary scratch-dir}
DIR=${2:?usage: test_analysis.sh ferrolens-binary scratch-dir}
[ -x "$BIN" ] || { echo "SKIP: $BIN is not executable"; exit 77; }
SRC=${FL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
GRID="$SRC/sample-stacks/iv_grid.tif"
[ -f "$GRID" ] || { echo "SKIP: $GRID missing"; exit 77; }
rm -rf "$DIR"
mkdir -p "$DIR" || exit 1

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
PY=""
if command -v python3 >/dev/null 2>&1 && python3 -c 'import json' >/dev/null 2>&1; then PY=python3; fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# ImageJ slice labels are UTF-16 (big- or little-endian, as the writer's byte order) in the metadata tags
# has_label FILE REGEX (not checked when binutils' strings is missing)
has_label() {
    command -v strings >/dev/null 2>&1 || return 0
    { strings -eb "$1"; strings -el "$1"; } 2>/dev/null | grep -q -- "$2"
}

# --- decompose pca on the sample grid ------------------------------------------------------------
"$BIN" decompose pca --input "$GRID" --components 4 --out "$DIR/pca" --json >"$DIR/pca.out" 2>"$DIR/pca.err"
rc=$?
[ $rc -eq 0 ] || fail "decompose pca exited $rc: $(cat "$DIR/pca.err")"
for f in components.csv loadings.tif summary.json; do [ -s "$DIR/pca/$f" ] || fail "missing $DIR/pca/$f"; done
[ "$(wc -l <"$DIR/pca.out")" -eq 1 ] || fail "--json stdout is not one line"
head -1 "$DIR/pca/components.csv" | grep -q '^voltage (V),PC1,PC2,PC3,PC4$' || fail "components.csv header: $(head -1 "$DIR/pca/components.csv")"
[ "$(wc -l <"$DIR/pca/components.csv")" -eq 65 ] || fail "components.csv should have 64 points + header"
sed -n 2p "$DIR/pca/components.csv" | grep -q '^-5,' || fail "first axis value should be -5 (V)"
has_label "$DIR/pca/loadings.tif" 'PC1 (8[0-9]\.[0-9] %)PC2 (1[0-9]\.[0-9] %)' || fail "loadings.tif lacks the 'PC1 (xx.x %)' slice label"
grep -a -q 'images=4' "$DIR/pca/loadings.tif" || fail "loadings.tif should have 4 slices"
if [ -n "$PY" ]; then
    python3 - "$DIR/pca.out" "$DIR/pca/components.csv" <<'PYEOF' || fail "pca summary content"
import json, sys, math
d = json.load(open(sys.argv[1]))
r = d["explained_variance_ratio"]
assert d["command"] == "decompose pca" and d["components"] == 4 and d["curves"] == 4096 and d["points"] == 64, d
assert all(0 < x <= 1 for x in r), r
assert all(r[i] > r[i + 1] for i in range(3)), r
assert 0.8 < r[0] < 0.9 and sum(r) <= 1 + 1e-12, r
assert abs(d["cumulative_ratio"][-1] - sum(r)) < 1e-12
rows = [list(map(float, l.split(","))) for l in open(sys.argv[2]).read().split("\n")[1:] if l]
for c in range(1, 5):  # unit, mutually orthogonal components
    assert abs(sum(x[c] ** 2 for x in rows) - 1) < 1e-6
    for e in range(c + 1, 5):
        assert abs(sum(x[c] * x[e] for x in rows)) < 1e-6
PYEOF
fi
# same result with one thread
"$BIN" decompose pca --input "$GRID" --components 4 --out "$DIR/pca1" --threads 1 2>/dev/null >/dev/null || fail "pca --threads 1"
cmp -s "$DIR/pca/components.csv" "$DIR/pca1/components.csv" || fail "pca components depend on the thread count"
cmp -s "$DIR/pca/loadings.tif" "$DIR/pca1/loadings.tif" || fail "pca loadings depend on the thread count"

# --- decompose nmf: signed curves need --shift ---------------------------------------------------
"$BIN" decompose nmf --input "$GRID" --components 3 --out "$DIR/nmf0" >/dev/null 2>"$DIR/nmf0.err"
rc=$?
[ $rc -eq 1 ] || fail "nmf on signed data without --shift exited $rc, expected 1"
grep -q "negative" "$DIR/nmf0.err" && grep -q -- "--shift" "$DIR/nmf0.err" || fail "nmf message: $(cat "$DIR/nmf0.err")"
[ ! -e "$DIR/nmf0" ] || fail "a failed nmf created its output directory"
"$BIN" decompose nmf --input "$GRID" --components 3 --shift --max-iter 100 --out "$DIR/nmf" --json >"$DIR/nmf.out" 2>"$DIR/nmf.err" ||
    fail "decompose nmf --shift: $(cat "$DIR/nmf.err")"
for f in components.csv loadings.tif summary.json; do [ -s "$DIR/nmf/$f" ] || fail "missing $DIR/nmf/$f"; done
head -1 "$DIR/nmf/components.csv" | grep -q '^voltage (V),NMF 1,NMF 2,NMF 3$' || fail "nmf components.csv header"
has_label "$DIR/nmf/loadings.tif" 'NMF 1NMF 2NMF 3' || fail "nmf loadings.tif lacks the 'NMF 1' label"
if [ -n "$PY" ]; then
    python3 - "$DIR/nmf.out" "$DIR/nmf/components.csv" <<'PYEOF' || fail "nmf summary content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["command"] == "decompose nmf" and d["shift"] < -10, d
assert 0 < d["relative_err"] < 0.2 and 1 <= d["iterations"] <= 100, d
rows = [list(map(float, l.split(","))) for l in open(sys.argv[2]).read().split("\n")[1:] if l]
assert len(rows) == 64 and all(v >= 0 for r in rows for v in r[1:]), "negative NMF component"
PYEOF
fi

# --- latent gmm on a small synthetic truth stack (3 latent dims: domain P, wall proximities) -------
"$BIN" synth iv-grid --out "$DIR/syn" --width 32 --height 24 --points 16 --seed 3 >/dev/null 2>&1 || fail "synth iv-grid"
LAT="$DIR/syn/iv_grid_truth.tif"
"$BIN" latent gmm --input "$LAT" --components 3 --out "$DIR/gmm" --json >"$DIR/gmm.out" 2>"$DIR/gmm.err"
rc=$?
[ $rc -eq 0 ] || fail "latent gmm exited $rc: $(cat "$DIR/gmm.err")"
for f in clusters.tif centroids.csv scatter.tif summary.json; do [ -s "$DIR/gmm/$f" ] || fail "missing $DIR/gmm/$f"; done
[ "$(wc -l <"$DIR/gmm/centroids.csv")" -eq 4 ] || fail "centroids.csv should have 3 clusters + header"
head -1 "$DIR/gmm/centroids.csv" | grep -q '^cluster,weight,pixels,dim 0,dim 1,dim 2$' || fail "centroids.csv header"
grep -a -q 'images=3' "$DIR/gmm/scatter.tif" || fail "scatter.tif should have one slice per cluster"
sz=$(wc -c <"$DIR/gmm/scatter.tif")
[ "$sz" -ge $((256 * 256 * 4 * 3)) ] || fail "scatter.tif too small ($sz bytes)"
if [ -n "$PY" ]; then
    python3 - "$DIR/gmm.out" <<'PYEOF' || fail "gmm summary content"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["command"] == "latent gmm" and d["components"] == 3 and d["pixels"] == 768 and d["dimensions"] == 3, d
assert d["converged"] and abs(sum(d["weights"]) - 1) < 1e-9, d
assert sum(d["pixels_per_cluster"]) == 768, d
# every cluster is pure in the domain sign: its mean of the "domain P" slice (+1/-1 values) is +-1
assert all(abs(abs(m[0]) - 1) < 1e-6 for m in d["means"]), d["means"]
assert {round(m[0]) for m in d["means"]} == {-1, 1}, d["means"]
PYEOF
fi
"$BIN" latent gmm --input "$LAT" --components 3 --out "$DIR/gmm1" --threads 1 >/dev/null 2>&1 || fail "gmm --threads 1"
cmp -s "$DIR/gmm/clusters.tif" "$DIR/gmm1/clusters.tif" || fail "clusters depend on the thread count"
cmp -s "$DIR/gmm/centroids.csv" "$DIR/gmm1/centroids.csv" || fail "centroids depend on the thread count"
# structure patches: the cluster map itself as the structure image
"$BIN" latent gmm --input "$LAT" --components 3 --out "$DIR/gmmp" --structure "$DIR/gmm/clusters.tif" --patch 4 \
    --nearest 5 --json >"$DIR/gmmp.out" 2>"$DIR/gmmp.err" || fail "gmm --structure: $(cat "$DIR/gmmp.err")"
[ -s "$DIR/gmmp/nearest_patches.tif" ] || fail "missing nearest_patches.tif"
has_label "$DIR/gmmp/nearest_patches.tif" 'cluster 1 (5 nearest)' || fail "nearest_patches.tif labels"
grep -q '"nearest_used":5' "$DIR/gmmp.out" || fail "nearest_used"

# decoded centroids through a (tiny, one-epoch) spectral-ae model trained on the synthetic grid
if "$BIN" spectral-ae train --input "$DIR/syn/iv_grid.tif" --out "$DIR/sae" --latent 3 --hidden 4 --layers 1 \
    --epochs 1 --batch-norm 0 >/dev/null 2>"$DIR/sae.err"; then
    "$BIN" latent gmm --input "$DIR/sae/embedding.tif" --components 2 --model "$DIR/sae/model.safetensors" \
        --out "$DIR/gmmm" >/dev/null 2>"$DIR/gmmm.err" || fail "gmm --model: $(cat "$DIR/gmmm.err")"
    head -1 "$DIR/gmmm/decoded_centroids.csv" | grep -q '^voltage (V),cluster 1,cluster 2$' ||
        fail "decoded_centroids.csv header: $(head -1 "$DIR/gmmm/decoded_centroids.csv")"
    [ "$(wc -l <"$DIR/gmmm/decoded_centroids.csv")" -eq 17 ] || fail "decoded_centroids.csv should have 16 points"
    grep -q -i 'nan' "$DIR/gmmm/decoded_centroids.csv" && fail "NaN in decoded_centroids.csv"
    # a model whose latent size differs from the stack's dimensions (4 PCA loadings)
    "$BIN" latent gmm --input "$DIR/pca/loadings.tif" --model "$DIR/sae/model.safetensors" --out "$DIR/bm" \
        >/dev/null 2>"$DIR/bm.err"
    rc=$?
    [ $rc -eq 1 ] && grep -q "has 3 latent channels but the latent stack has 4" "$DIR/bm.err" ||
        fail "model mismatch: rc $rc, $(cat "$DIR/bm.err")"
    [ ! -e "$DIR/bm" ] || fail "a model mismatch created the output directory"
else
    fail "spectral-ae train: $(cat "$DIR/sae.err")"
fi

# --- bad input: exit 1 or 2, a message, no output ----------------------------------------------------
expect_fail() { # want_rc message outdir args...
    local want=$1 msg=$2 out=$3
    shift 3
    "$BIN" "$@" >"$DIR/x.out" 2>"$DIR/x.err"
    local rc=$?
    [ $rc -eq "$want" ] || fail "'$*' exited $rc, expected $want"
    grep -q -- "$msg" "$DIR/x.err" || fail "'$*': stderr lacks '$msg': $(cat "$DIR/x.err")"
    [ ! -s "$DIR/x.out" ] || fail "'$*' wrote to stdout"
    [ ! -e "$out" ] || fail "'$*' created $out"
}
expect_fail 1 "1000 components for only 768 samples" "$DIR/b1" latent gmm --input "$LAT" --components 1000 --out "$DIR/b1"
expect_fail 1 "at most 64" "$DIR/b2" decompose pca --input "$GRID" --components 65 --out "$DIR/b2"
expect_fail 1 "ferrolens: error:" "$DIR/b3" decompose pca --input "$DIR/nonexistent.tif" --out "$DIR/b3"
expect_fail 1 "ferrolens: error:" "$DIR/b4" latent gmm --input "$DIR/nonexistent.tif" --out "$DIR/b4"
expect_fail 1 "ferrolens: error:" "$DIR/b5" decompose pca --input "$DIR/gmm/clusters.tif" --out "$DIR/b5"
expect_fail 1 "single plane" "$DIR/b6" latent gmm --input "$DIR/gmm/clusters.tif" --out "$DIR/b6"
expect_fail 1 "must be a single grey-value plane" "$DIR/b7" latent gmm --input "$LAT" --structure "$LAT" --out "$DIR/b7"
expect_fail 1 "does not fit" "$DIR/b8" latent gmm --input "$LAT" --structure "$DIR/gmm/clusters.tif" --patch 40 --out "$DIR/b8"
# a structure image with one NaN pixel (patched in with dd: CI has no python): refused before any work
be_u() { local v=0 b; for b in $(od -An -v -tu1 -j "$2" -N "$3" "$1"); do v=$((v * 256 + b)); done; echo "$v"; }
strip_offset() { # first strip offset of a classic big-endian TIFF as Ferrolens writes them
    local f=$1 ifd cnt i
    [ "$(od -An -c -N2 "$f" | tr -d ' ')" = "MM" ] || return 1
    ifd=$(be_u "$f" 4 4); cnt=$(be_u "$f" "$ifd" 2)
    for ((i = 0; i < cnt; i++)); do
        if [ "$(be_u "$f" $((ifd + 2 + 12 * i)) 2)" -eq 273 ]; then be_u "$f" $((ifd + 10 + 12 * i)) 4; return 0; fi
    done
    return 1
}
"$BIN" decompose pca --input "$DIR/syn/iv_grid.tif" --components 1 --out "$DIR/pc1" >/dev/null 2>&1 || fail "decompose pca --components 1"
cp "$DIR/pc1/loadings.tif" "$DIR/snan.tif"   # 32 x 24 float: a structure image of the latent's size
if off=$(strip_offset "$DIR/snan.tif"); then
    printf '\177\300\000\000' | dd of="$DIR/snan.tif" bs=1 seek=$((off + 4 * 33)) conv=notrunc status=none   # x=1, y=1
    cmp -s "$DIR/pc1/loadings.tif" "$DIR/snan.tif" && fail "the NaN patch did not change the structure copy"
    "$BIN" latent gmm --input "$LAT" --components 3 --structure "$DIR/pc1/loadings.tif" --patch 4 --out "$DIR/sok" \
        >/dev/null 2>&1 || fail "latent gmm with the finite structure image (control) failed"
    expect_fail 1 "the structure image has NaN or infinite pixels" "$DIR/b13" latent gmm --input "$LAT" --components 3 \
        --structure "$DIR/snan.tif" --patch 4 --out "$DIR/b13"
    [ "$(grep -c 'ferrolens: error:' "$DIR/x.err")" -eq 1 ] || fail "NaN structure: not exactly one error line: $(cat "$DIR/x.err")"
else
    fail "cannot find the pixel data of $DIR/snan.tif"
fi
expect_fail 2 "--input and --out are required" "$DIR/b9" decompose pca --out "$DIR/b9"
expect_fail 2 "did you mean 'pca'" "$DIR/b10" decompose pcs --input "$GRID" --out "$DIR/b10"
expect_fail 2 "need --structure" "$DIR/b11" latent gmm --input "$LAT" --patch 4 --out "$DIR/b11"
expect_fail 2 "must be between" "$DIR/b12" latent gmm --input "$LAT" --components 0 --out "$DIR/b12"
if [ -n "$PY" ] && python3 -c 'import tifffile, numpy' >/dev/null 2>&1; then
    python3 -c 'import numpy, tifffile; tifffile.imwrite(__import__("sys").argv[1], numpy.zeros((16, 16, 3), numpy.uint8), photometric="rgb")' \
        "$DIR/rgb.tif"
    expect_fail 1 "RGB" "$DIR/b13" latent gmm --input "$DIR/rgb.tif" --out "$DIR/b13"
    expect_fail 1 "ferrolens: error:" "$DIR/b14" decompose pca --input "$DIR/rgb.tif" --out "$DIR/b14"
fi

# --- help names the outputs -------------------------------------------------------------------------
"$BIN" decompose pca --help 2>/dev/null | grep -q "loadings.tif" || fail "decompose pca --help does not name loadings.tif"
"$BIN" decompose nmf --help 2>/dev/null | grep -q -- "--shift" || fail "decompose nmf --help lacks --shift"
"$BIN" latent gmm --help 2>/dev/null | grep -q "nearest_patches.tif" || fail "latent gmm --help does not name its outputs"
"$BIN" decompose --help 2>/dev/null | grep -q "nmf" || fail "decompose --help"

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "PASS"
exit 0
