#!/usr/bin/env bash
# Regenerates the seed corpora of tests/fuzz/corpus/ (committed; rerun only when the formats change).
#   tests/fuzz/make_seeds.sh path/to/ferrolens
# Engine-written seeds: a small I(V) grid (float32 ImageJ hyperstack), the embedding/error TIFFs and two
# tiny spectral-ae models (BiLSTM + BN, and LSTM without BN, per-curve normalisation) from the CLI;
# safetensors headers and F64/F16/BF16 tensors from a few lines of python3; Keras HDF5, 8/16-bit,
# compressed, tiled and BigTIFF TIFFs and JSON documents from gen_seeds.c (libhdf5, libtiff).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
FL=${1:?usage: make_seeds.sh path/to/ferrolens}
C=$HERE/corpus
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$C"/{tiff,safetensors,json,keras}

"$FL" synth iv-grid --width 8 --height 8 --points 8 --threads 1 --out "$TMP/syn" >/dev/null
"$FL" spectral-ae train --input "$TMP/syn/iv_grid.tif" --out "$TMP/bi" --layers 1 --hidden 4 --latent 2 \
  --epochs 1 --threads 1 >/dev/null 2>&1
"$FL" spectral-ae train --input "$TMP/syn/iv_grid.tif" --out "$TMP/uni" --layers 1 --hidden 3 --latent 2 \
  --epochs 1 --threads 1 --bidirectional 0 --batch-norm 0 --norm per-curve >/dev/null 2>&1
cp "$TMP/syn/iv_grid.tif" "$C/tiff/iv_grid_f32.tif"
cp "$TMP/syn/iv_grid_truth.tif" "$C/tiff/iv_grid_truth.tif"
cp "$TMP/bi/embedding.tif" "$C/tiff/embedding_labels.tif"
cp "$TMP/bi/error.tif" "$C/tiff/error_1page.tif"
cp "$TMP/bi/model.safetensors" "$C/safetensors/sae_bilstm_bn.safetensors"
cp "$TMP/uni/model.safetensors" "$C/safetensors/sae_lstm_percurve.safetensors"
cp "$TMP/bi/summary.json" "$C/json/summary.json"

python3 - "$C/safetensors" <<'PY'
import json, struct, sys
d = sys.argv[1]
def st(name, tensors, meta=None):
    hdr, blob = {}, b""
    if meta is not None: hdr["__metadata__"] = meta
    for n, dt, shape, data in tensors:
        hdr[n] = {"dtype": dt, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(f"{d}/{name}", "wb").write(struct.pack("<Q", len(h)) + h + blob)
st("dtypes.safetensors", [("a", "F64", [2, 2], struct.pack("<4d", 1.5, -2, 1e300, 5e-324)),
                          ("b", "F16", [3], struct.pack("<3H", 0x3c00, 0x0001, 0x7c00)),
                          ("c", "BF16", [2], struct.pack("<2H", 0x3f80, 0xff81)),
                          ("e", "F32", [0, 4], b""), ("s", "F32", [], struct.pack("<f", 3.25))],
   {"note": "scalar, empty and converted tensors"})
st("metadata_only.safetensors", [], {"format": "ferrolens-model", "family": "spectral-ae", "format_version": "1"})
PY

cc -O1 -o "$TMP/gen_seeds" "$HERE/gen_seeds.c" $(pkg-config --cflags hdf5-serial) -lhdf5_serial -ltiff
"$TMP/gen_seeds" "$C"
du -b "$C"/*/* | sort -n | tail -20
