#!/usr/bin/env bash
# Spectral autoencoder (family 1) side by side with PyTorch at equal threads, on this machine.
#   bench/run_family1.sh [BUILD_DIR] [THREADS...]      (default: build, threads 1 2)
# Ferrolens: build/bin/bench_sae (torch_ref.py's configuration: T=128, H=64, 2+2 BiLSTM, latent 16, batch 64).
# PyTorch: ../shared/bench/torch_ref.py --family 1 with Debian's python3-torch, in its best setup for this
# CPU: --tuned only where AVX-512 exists (it forces AVX-512 OpenBLAS kernels), and --omp-passive (the
# LSTM's OpenBLAS and OpenMP threads otherwise spin against each other).
# Run nothing else meanwhile. Prints one JSON line per run.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
THREADS=${*:-1 2}
REF=../shared/bench/torch_ref.py
TUNED=""
grep -qw avx512f /proc/cpuinfo && TUNED="--tuned"
grep -m1 'model name' /proc/cpuinfo >&2
for t in $THREADS; do
  "$BUILD/bin/bench_sae" --threads "$t"
  "$BUILD/bin/bench_sae" --threads "$t" --paper
  if [ -r "$REF" ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 "$REF" --family 1 --threads "$t" $TUNED --omp-passive --repeats 5 2>/dev/null
  else
    echo "{\"torch\":\"not available (python3-torch or $REF missing)\"}"
  fi
done
