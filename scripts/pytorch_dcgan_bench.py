#!/usr/bin/env python3
"""PyTorch reference throughput for DCGAN 64x64 (or 32x32), to compare against gannet.

Measures, on the CPU by default:
  - train: one D step (real + fake, BCE) and one G step (BCE), Adam(lr 2e-4, betas (0.5, 0.999)),
    batch 64, nz=100, ngf=ndf=64, nc=3 -- the standard DCGAN recipe;
  - generate: a G forward pass at batch 256 under torch.no_grad().
Prints one JSON object with img/s (median over --reps timed repetitions after --warmup).

    python3 scripts/pytorch_dcgan_bench.py [--threads 2] [--reps 5] [--warmup 2] [--device cpu] [--resolution 64|32]
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn


def generator(nz: int, ngf: int, nc: int, res: int = 64) -> nn.Module:
    """DCGAN's G: a 4x4 stem, then stride-2 transposed convs halving the channels up to `res`
    (at 64: ngf*8, *4, *2, *1, the paper's network)."""
    depth = int(math.log2(res // 4))
    ch = [ngf * 2 ** (depth - 1 - i) for i in range(depth)]
    layers = [nn.ConvTranspose2d(nz, ch[0], 4, 1, 0, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU(True)]
    for a, b in zip(ch, ch[1:]):
        layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(ch[-1], nc, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(ndf: int, nc: int, res: int = 64) -> nn.Module:
    """DCGAN's D, the mirror of G: stride-2 convs doubling the channels (no BatchNorm on the
    first), then a 4x4 head."""
    depth = int(math.log2(res // 4))
    ch = [ndf * 2**i for i in range(depth)]
    layers = [nn.Conv2d(nc, ch[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for a, b in zip(ch, ch[1:]):
        layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, inplace=True)]
    layers += [nn.Conv2d(ch[-1], 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    return nn.Sequential(*layers)


def init_weights(m: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convs, N(1, 0.02) batch-norm scales."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def median_rate(fn, images: int, warmup: int, reps: int) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return images / statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--gen-batch", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", type=int, default=64, choices=[32, 64], help="64 (train64, gen64) or 32 (train32)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    nz, ngf, ndf, nc = 100, 64, 64, 3

    res = args.resolution
    g = generator(nz, ngf, nc, res).to(dev)
    d = discriminator(ndf, nc, res).to(dev)
    g.apply(init_weights)
    d.apply(init_weights)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    b = args.batch
    # Real images are random: throughput does not depend on their content.
    real = torch.rand(b, nc, res, res, device=dev) * 2 - 1
    ones = torch.ones(b, device=dev)
    zeros = torch.zeros(b, device=dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def train_step() -> None:
        # D step: real towards 1, fake (detached) towards 0.
        d.zero_grad(set_to_none=True)
        fake = g(torch.randn(b, nz, 1, 1, device=dev))
        loss_d = bce(d(real).view(-1), ones) + bce(d(fake.detach()).view(-1), zeros)
        loss_d.backward()
        opt_d.step()
        # G step: non-saturating loss on the same fakes.
        g.zero_grad(set_to_none=True)
        loss_g = bce(d(fake).view(-1), ones)
        loss_g.backward()
        opt_g.step()
        sync()

    def generate() -> None:
        with torch.no_grad():
            g(torch.randn(args.gen_batch, nz, 1, 1, device=dev))
        sync()

    train_rate, train_times = median_rate(train_step, b, args.warmup, args.reps)
    g.eval()
    gen_rate, gen_times = median_rate(generate, args.gen_batch, args.warmup, args.reps)
    print(
        json.dumps(
            {
                "framework": "pytorch",
                "torch": torch.__version__,
                "device": str(dev),
                "threads": args.threads,
                "resolution": res,
                "batch": b,
                "train_img_per_s": round(train_rate, 2),
                "gen_batch": args.gen_batch,
                "gen_img_per_s": round(gen_rate, 2),
                "train_step_s": [round(t, 4) for t in train_times],
                "gen_s": [round(t, 4) for t in gen_times],
            }
        )
    )


if __name__ == "__main__":
    main()
