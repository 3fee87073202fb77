#!/usr/bin/python3
"""PyTorch reference speed of the family-3 4D-STEM autoencoder at detector sizes torch_ref.py lacks.

../shared/bench/torch_ref.py --family 3 only measures 256 x 256 and 128 x 128 patterns; the engine's
CPU settings bin the detector to 64 x 64 (or smaller). This script runs the SAME model class
(torch_ref.STEMAE, taken from that file's source with ast, not copied: torch_ref.py parses its own
command line on import) at other sizes with the pooling rule of ferrolens/diffraction_ae.h
(64 -> [4, 2], 32 -> [4], 16 -> [2]; bottleneck 8 x 8), and measures
  * training patterns/s: Adam, batch 32, loss MSE + 1e-5 * L1 of the embedding (torch_ref family 3);
  * inference patterns/s: encoder + decoder forward (model(x), eval, inference_mode), batch 32,
    and encoder-only (the embedding pass of `diffraction-ae apply`).
Usage (Debian's torch):
    /usr/bin/python3 bench/torch_family3_sizes.py --threads 2 [--sizes 64,32] [--width 128] [--emb 32]
        [--steps 20] [--warmup 2] [--out FILE]
    --steps 1 is a smoke test (numbers meaningless). Run on a quiet machine: nothing else running.
Prints one JSON object on stdout. Data are random (speed only).
"""
import argparse
import ast
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_REF = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench", "torch_ref.py"))

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--sizes", default="64", help="comma-separated pattern sizes (8 x a power of two), default 64")
ap.add_argument("--width", type=int, default=128, help="conv channels (torch_ref: 128)")
ap.add_argument("--emb", type=int, default=32, help="embedding size (torch_ref: 32)")
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--steps", type=int, default=20, help="timed repeats per measurement (median reported)")
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--torch-ref", default=TORCH_REF, help="path of torch_ref.py")
ap.add_argument("--out", default=None)
args = ap.parse_args()
if args.steps < 1 or args.batch < 1 or args.warmup < 0:
    sys.exit("--steps and --batch must be >= 1, --warmup >= 0")

for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = str(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass
torch.manual_seed(0)


def load_stemae(path):
    """STEMAE and its helpers from torch_ref.py, executed from that file's own source (no copy)."""
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    want = {"ResConv3", "Ident1", "resnet_block", "STEMAE"}
    nodes = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in want]
    missing = want - {n.name for n in nodes}
    if missing:
        sys.exit(f"{path} lacks {sorted(missing)}")
    ns = {"torch": torch, "nn": nn, "F": F, "__name__": "torch_ref_family3"}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), path, "exec"), ns)
    return ns["STEMAE"]


def pools_for(size):
    """Pooling rule of ferrolens/diffraction_ae.h: bottleneck 8, pools 4 while r >= 4, then 2."""
    if size % 8 or (size // 8) & (size // 8 - 1):
        sys.exit(f"size {size} is not 8 times a power of two")
    r, pools = size // 8, []
    while r >= 4:
        pools.append(4)
        r //= 4
    if r == 2:
        pools.append(2)
    return tuple(pools)


def timed(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return statistics.median(t), min(t)


def measure(STEMAE, size):
    pools = pools_for(size)
    model = STEMAE(size=size, c=args.width, emb=args.emb, pools=pools)
    nparams = sum(p.numel() for p in model.parameters())
    B = args.batch
    x = torch.randn(B, 1, size, size)
    res = {"size": size, "pools": list(pools), "width": args.width, "embedding": args.emb, "batch": B,
           "params": nparams}

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-5)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), x) + 1e-5 * model.emb.abs().sum(1).mean()
        loss.backward()
        opt.step()
    med, mn = timed(step, args.steps, args.warmup)
    res.update(train_step_s=med, train_step_min_s=mn, train_patterns_per_s=B / med)

    model.eval()

    def infer():
        with torch.inference_mode():
            model(x)
    med, mn = timed(infer, args.steps, args.warmup)
    res.update(infer_batch_s=med, infer_batch_min_s=mn, infer_patterns_per_s=B / med)

    def embed():
        with torch.inference_mode():
            F.relu(model.fc_enc(model.encoder(x).flatten(1)))
    med, mn = timed(embed, args.steps, args.warmup)
    res.update(embed_batch_s=med, embed_batch_min_s=mn, embed_patterns_per_s=B / med)
    print(f"[{size}] params {nparams:,}: train {res['train_patterns_per_s']:.1f} patterns/s, "
          f"infer {res['infer_patterns_per_s']:.1f}, embed {res['embed_patterns_per_s']:.1f}", file=sys.stderr)
    return res


def main():
    STEMAE = load_stemae(args.torch_ref)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    t0 = time.time()
    out = {"family": 3, "reference": os.path.relpath(args.torch_ref, HERE), "threads": args.threads,
           "steps": args.steps, "warmup": args.warmup, "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(),
           "results": {f"stem_ae_{s}": measure(STEMAE, s) for s in sizes}}
    out["wall_s"] = round(time.time() - t0, 2)
    s = json.dumps(out, indent=1)
    print(s)
    if args.out:
        with open(args.out, "w") as f:
            f.write(s + "\n")


if __name__ == "__main__":
    main()
