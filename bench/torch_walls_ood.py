#!/usr/bin/python3
"""Cross-check of the family 4 out-of-distribution uncertainty in PyTorch.

Trains the same wall ensemble as build/bin/bench_walls_ood (ResHedNet, atomai's deep-ensemble protocol)
with PyTorch on the same synthetic images and prints the same ratio: mean uncertainty (population
variance of the per-member sigmoid probability) on the out-of-distribution set over that on the held-out
in-distribution images, overall and per variant. It answers one question: is the ratio a property of
the data and the architecture, or of Ferrolens' engine?

Data: the stacks of `ferrolens synth pfm-walls --out DIR --size 96 --count 8 --test-count 4
--ood-count 8 --seed 7` (sets 0, 1, 2: the ones bench_walls_ood draws in memory).

Protocol (docs/model-families.md A4, as native/src/models/reshednet.c implements it): per member i,
torch.manual_seed(seed + i), Xavier-uniform weights, zero biases; training images min-max normalised;
every iteration B random P x P crops (image chosen in proportion to its crop positions), min-max over
the batch, then per patch one of {both flips, vertical flip, horizontal flip, rot90}, Gaussian blur
sigma 0.05 k (k 1..49), gamma (5..19)/10; Adam lr 1e-3; focal loss on the batch-mean BCE (alpha 0.5,
gamma 2); SWA over the last 30 iterations' parameters, BN buffers from the first of those snapshots.
Inference: per image min-max, eval mode. The random streams differ from the engine's, so single
numbers differ; what should agree is the level of the ratios.

Usage: /usr/bin/python3 bench/torch_walls_ood.py DATA_DIR [--members 5] [--filters 16] [--iters 1000]
       [--patch 48] [--batch 4] [--threads 2] [--seed 0]
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("data")
ap.add_argument("--members", type=int, default=5)
ap.add_argument("--filters", type=int, default=16)
ap.add_argument("--iters", type=int, default=1000)
ap.add_argument("--patch", type=int, default=48)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--swa-last", type=int, default=30)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
torch.set_num_threads(a.threads)


def read_stack(name):
    im = Image.open(os.path.join(a.data, name))
    planes = []
    for k in range(im.n_frames):
        im.seek(k)
        planes.append(np.array(im, dtype=np.float32))
    return np.stack(planes)


train_x, train_y = read_stack("pfm_walls_train.tif"), read_stack("pfm_walls_train_mask.tif")
train_x = np.stack([(im - im.min()) / max(im.max() - im.min(), 1e-12) for im in train_x])  # per image, as the engine
test_x, test_y = read_stack("pfm_walls_test.tif"), read_stack("pfm_walls_test_mask.tif")
ood_x, ood_y = read_stack("pfm_walls_ood.tif"), read_stack("pfm_walls_ood_mask.tif")


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.c0 = nn.Conv2d(cin, cout, 1)
        self.c1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.b2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        r = self.c0(x)
        o = F.leaky_relu(self.b1(self.c1(r)), 0.01)
        return F.leaky_relu(self.b2(self.c2(o)) + r, 0.01)


def module(n, cin, cout):
    return nn.Sequential(*[ResBlock(cin if i == 0 else cout, cout) for i in range(n)])


class ResHedNet(nn.Module):
    def __init__(self, nf):
        super().__init__()
        self.net1, self.net2, self.net3 = module(3, 1, nf), module(4, nf, 2 * nf), module(5, 2 * nf, 4 * nf)
        self.s1 = nn.Sequential(nn.Conv2d(nf, 1, 1), nn.BatchNorm2d(1))
        self.s2 = nn.Sequential(nn.Conv2d(2 * nf, 1, 1), nn.BatchNorm2d(1))
        self.s3 = nn.Sequential(nn.Conv2d(4 * nf, 1, 1), nn.BatchNorm2d(1))
        self.fuse = nn.Conv2d(3, 1, 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        x1 = self.net1(x)
        x2 = self.net2(F.max_pool2d(x1, 2))
        x3 = self.net3(F.max_pool2d(x2, 2))
        o1 = self.s1(x1)
        o2 = F.interpolate(self.s2(x2), size=(h, w), mode="bilinear")
        o3 = F.interpolate(self.s3(x3), size=(h, w), mode="bilinear")
        return self.fuse(torch.cat([o1, o2, o3], 1))


def init(m):
    if isinstance(m, nn.Conv2d):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


def focal(z, y, alpha=0.5, gamma=2.0):
    ce = F.binary_cross_entropy_with_logits(z, y)
    return alpha * (1 - torch.exp(-ce)) ** gamma * ce


def blur(x, sigma):
    rad = max(1, int(4 * sigma + 0.5))
    t = np.arange(-rad, rad + 1)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k = torch.tensor(k / k.sum(), dtype=torch.float32)
    x = F.pad(x[None, None], (rad, rad, 0, 0), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, rad, rad), mode="replicate")
    return F.conv2d(x, k.view(1, 1, -1, 1))[0, 0]


def make_batch(rng):
    P, B = a.patch, a.batch
    pos = np.array([(im.shape[0] - P + 1) * (im.shape[1] - P + 1) for im in train_x], dtype=np.float64)
    xs, ys = [], []
    for _ in range(B):
        k = rng.choice(len(train_x), p=pos / pos.sum())
        y0, x0 = rng.integers(0, train_x[k].shape[0] - P + 1), rng.integers(0, train_x[k].shape[1] - P + 1)
        xs.append(train_x[k, y0:y0 + P, x0:x0 + P])
        ys.append(train_y[k, y0:y0 + P, x0:x0 + P])
    xb, yb = np.stack(xs), np.stack(ys)
    xb = (xb - xb.min()) / max(xb.max() - xb.min(), 1e-12)
    xo, yo = [], []
    for b in range(B):
        x, y = torch.tensor(xb[b]), torch.tensor(yb[b])
        t = rng.integers(0, 4)
        if t == 0:
            x, y = x.flip(0).flip(1), y.flip(0).flip(1)
        elif t == 1:
            x, y = x.flip(0), y.flip(0)
        elif t == 2:
            x, y = x.flip(1), y.flip(1)
        else:
            x, y = torch.rot90(x, 1), torch.rot90(y, 1)
        x = blur(x, 0.05 * rng.integers(1, 50))
        x = x.clamp(min=0) ** (rng.integers(5, 20) / 10.0)
        xo.append(x)
        yo.append(y)
    return torch.stack(xo)[:, None], torch.stack(yo)[:, None]


def train_member(i):
    torch.manual_seed(a.seed + i)
    rng = np.random.default_rng(a.seed + i)
    m = ResHedNet(a.filters)
    m.apply(init)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    swa_sum, bufs = None, None
    m.train()
    for it in range(a.iters):
        x, y = make_batch(rng)
        loss = focal(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it >= a.iters - a.swa_last:
            p = [q.detach().clone() for q in m.parameters()]
            if swa_sum is None:
                swa_sum = p
                bufs = [b.detach().clone() for b in m.buffers()]
            else:
                for s, q in zip(swa_sum, p):
                    s += q
    with torch.no_grad():
        for q, s in zip(m.parameters(), swa_sum):
            q.copy_(s / a.swa_last)
        for b, s in zip(m.buffers(), bufs):
            b.copy_(s)
    m.eval()
    return m


def probs(models, imgs):
    out = np.zeros((len(imgs), len(models)) + imgs.shape[1:], dtype=np.float64)
    with torch.no_grad():
        for i, im in enumerate(imgs):
            x = (im - im.min()) / max(im.max() - im.min(), 1e-12)
            x = torch.tensor(x)[None, None]
            for k, m in enumerate(models):
                out[i, k] = torch.sigmoid(m(x))[0, 0].numpy()
    return out


def f1_tol(pred, truth, r=2):
    """F1 with a tolerance of r px (disk): a predicted pixel is right when a true one is within r."""
    t = np.arange(-r, r + 1)
    disk = torch.tensor((t[:, None] ** 2 + t[None, :] ** 2 <= r * r).astype(np.float32))[None, None]
    def dil(m):
        return F.conv2d(torch.tensor(m.astype(np.float32))[None, None], disk, padding=r)[0, 0].numpy() > 0
    tp_p = (pred & dil(truth)).sum()
    tp_t = (truth & dil(pred)).sum()
    prec = tp_p / max(pred.sum(), 1)
    rec = tp_t / max(truth.sum(), 1)
    return 2 * prec * rec / max(prec + rec, 1e-12)


t0 = time.time()
models = [train_member(i) for i in range(a.members)]
ttrain = time.time() - t0
pin, pood = probs(models, test_x), probs(models, ood_x)
f1s = [f1_tol(pin[i].mean(0) >= 0.5, test_y[i] > 0) for i in range(len(test_x))]
rows = []
for k in sorted({2, 3, 5, a.members}):
    if k > a.members:
        continue
    vin = pin[:, :k].var(1).mean()
    vv = [pood[t::4, :k].var(1).mean() for t in range(4)]
    vood = pood[:, :k].var(1).mean()
    rows.append({"k": k, "var_in": float(vin), "var_ood": float(vood), "ratio": round(vood / vin, 3),
                 "ratio_blobs": round(vv[0] / vin, 3), "ratio_checker": round(vv[1] / vin, 3),
                 "ratio_inverted": round(vv[2] / vin, 3), "ratio_noise": round(vv[3] / vin, 3),
                 "mean_prob_in": round(pin[:, :k].mean(), 3),
                 "mean_prob_ood": [round(pood[t::4, :k].mean(), 3) for t in range(4)]})
print(json.dumps({"bench": "torch_walls_ood", "members": a.members, "filters": a.filters, "iterations": a.iters,
                  "patch": a.patch, "batch": a.batch, "threads": a.threads, "train_s": round(ttrain, 1),
                  "f1_mean_of_images": round(float(np.mean(f1s)), 4), "by_members": rows}))
