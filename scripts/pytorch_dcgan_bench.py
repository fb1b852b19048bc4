#!/usr/bin/env python3
"""PyTorch reference throughput for DCGAN 64x64, to compare against gannet.

Measures, on the CPU by default:
  - train: one D step (real + fake, BCE) and one G step (BCE), Adam(lr 2e-4, betas (0.5, 0.999)),
    batch 64, nz=100, ngf=ndf=64, nc=3 -- the standard DCGAN recipe;
  - generate: a G forward pass at batch 256 under torch.no_grad().
Prints one JSON object with img/s (median over --reps timed repetitions after --warmup).

    python3 scripts/pytorch_dcgan_bench.py [--threads 2] [--reps 5] [--warmup 2] [--device cpu]
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn as nn


def generator(nz: int, ngf: int, nc: int) -> nn.Module:
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def discriminator(ndf: int, nc: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 8),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )


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
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    nz, ngf, ndf, nc = 100, 64, 64, 3

    g = generator(nz, ngf, nc).to(dev)
    d = discriminator(ndf, nc).to(dev)
    g.apply(init_weights)
    d.apply(init_weights)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    b = args.batch
    # Real images are random: throughput does not depend on their content.
    real = torch.rand(b, nc, 64, 64, device=dev) * 2 - 1
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
