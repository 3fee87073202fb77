#!/usr/bin/env bash
# Families 2-4 side by side with PyTorch at equal threads, on this machine (run nothing else meanwhile).
#   bench/run_conv_families.sh [BUILD_DIR] [THREADS]      (default: build, 2 threads)
# Ferrolens: bench_im2spec (torch_ref --family 2 configuration), bench_diffraction_ae at 64 and 128 pixels
# (--family 3), bench_reshednet with 16 and 64 filters (--family 4). PyTorch: ../shared/bench/torch_ref.py
# and bench/torch_family3_sizes.py (the 64-pixel STEM AE torch_ref.py lacks). One JSON line per run.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
T=${2:-2}
REF=../shared/bench/torch_ref.py
grep -m1 'model name' /proc/cpuinfo >&2
TORCH=0
[ -r "$REF" ] && /usr/bin/python3 -c 'import torch' 2>/dev/null && TORCH=1
torch_ref() { if [ $TORCH = 1 ]; then /usr/bin/python3 "$REF" --threads "$T" --repeats 3 "$@" 2>/dev/null | tr -d '\n' | tr -s ' '; echo; else echo '{"torch":"not available"}'; fi; }
"$BUILD/bin/bench_im2spec" --threads "$T" --epochs 2 2>/dev/null
"$BUILD/bin/bench_im2spec" --threads "$T" --epochs 2 --latent 2 --direction spec2im 2>/dev/null
torch_ref --family 2 --variant im2spec_z10
torch_ref --family 2 --variant spec2im_z2
for s in 64 128; do "$BUILD/bin/bench_diffraction_ae" --threads "$T" --size $s 2>/dev/null; done
[ $TORCH = 1 ] && /usr/bin/python3 bench/torch_family3_sizes.py --threads "$T" --sizes 64 2>/dev/null
torch_ref --family 3 --variant 128
for f in 16 64; do "$BUILD/bin/bench_reshednet" --threads "$T" --filters $f --members 10 --size 256 --repeats 3 --lines 8 2>/dev/null; done
torch_ref --family 4 --variant f16
torch_ref --family 4 --variant f64
