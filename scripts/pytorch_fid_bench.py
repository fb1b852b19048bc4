#!/usr/bin/env python3
"""PyTorch twin of `gannet bench --only fid`: pytorch-fid's feature extraction, timed.

pytorch-fid's `InceptionV3([3], resize_input=True, normalize_input=True)` (the FID network,
loaded from the shared weights file as scripts/fid_reference.py loads it) embeds batches of 50
random RGB 64x64 images in [0, 1] (pytorch-fid's default batch; resized to 299x299 inside, as
gannet does) under torch.no_grad(). Prints one JSON object with img/s of the median over --reps
timed batches after --warmup untimed ones.

    python3 scripts/pytorch_fid_bench.py [--threads 2] [--reps 3] [--warmup 1]

Needs: pip install pytorch-fid; GANNET_MODELS (default ../shared/models) with
pt_inception-2015-12-05-nofc.pth.
"""

import argparse
import json
import statistics
import time

import torch

from fid_reference import build_model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = build_model()
    g = torch.Generator().manual_seed(0)
    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.reps):
            x = torch.rand(args.batch, 3, 64, 64, generator=g)
            t = time.perf_counter()
            f = model(x)[0]
            assert f.shape == (args.batch, 2048, 1, 1), f.shape
            dt = time.perf_counter() - t
            if i >= args.warmup:
                times.append(dt)
    med = statistics.median(times)
    print(json.dumps({
        "framework": "pytorch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "times_s": times,
        "fid_img_per_s": args.batch / med,
    }))


if __name__ == "__main__":
    main()
