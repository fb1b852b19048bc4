#!/usr/bin/env python3
"""`python -m pytorch_fid A B` with the shared weights: pytorch-fid's own
`calculate_fid_given_paths` (batch 50, CPU, no loader workers), its network built from
shared/models/pt_inception-2015-12-05-nofc.pth instead of the download (as
scripts/fid_folder_reference.py does). The twin of `gannet eval --images A --data B --metrics fid
-n COUNT`, for timing the whole command: prints the FID and the seconds it took.

    python3 scripts/pytorch_fid_folders.py A B [--threads 2]

Needs: pip install pytorch-fid; GANNET_MODELS (default ../shared/models).
"""
import argparse
import time

import torch
from pytorch_fid.fid_score import calculate_fid_given_paths

from fid_folder_reference import SharedWeights


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    with SharedWeights():
        fid = calculate_fid_given_paths([args.a, args.b], batch_size=50, device="cpu", dims=2048, num_workers=0)
    print(f"FID {fid:.6f} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
