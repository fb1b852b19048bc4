#!/usr/bin/env python3
"""pytorch-fid's FID of the image folders that gannet's eval parity test writes
(crates/gannet-cli/tests/eval_cli.rs): the reference values stored there.

Folders (written under OUT, default a temporary folder):
  mnist_a: MNIST t10k images 0..24, mnist_b: images 24..48, as 8-bit grey PNGs (28x28);
  emoji_a: 12 Noto emoji (google/, 64x64 RGBA, every 300th file name in sorted order),
  emoji_b: the same names from twitter/; files copied as they are.
The FID is pytorch-fid's own `calculate_fid_given_paths` (what `python -m pytorch_fid A B` runs)
with the shared weights (shared/models/pt_inception-2015-12-05-nofc.pth) loaded into its network
in place of the download, as scripts/fid_reference.py does: the same network as pytorch-fid's
release file, whose extra fc layer FID does not use.

Usage: python scripts/fid_folder_reference.py [OUT]   (env GANNET_DATA, GANNET_MODELS)
Needs: pip install pytorch-fid (pulls torch, torchvision, scipy, pillow).
"""
import gzip
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

import pytorch_fid
import pytorch_fid.inception as pi
from pytorch_fid.fid_score import calculate_fid_given_paths

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("GANNET_DATA", os.path.join(ROOT, "..", "shared", "data"))
MODELS = os.environ.get("GANNET_MODELS", os.path.join(ROOT, "..", "shared", "models"))
WEIGHTS = os.path.join(MODELS, "pt_inception-2015-12-05-nofc.pth")

MNIST_COUNT = 24
EMOJI_COUNT = 12
EMOJI_STRIDE = 300


def write_mnist(out, start, count):
    with gzip.open(os.path.join(DATA, "mnist", "t10k-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read()
    _, n, h, w = np.frombuffer(raw[:16], dtype=">u4")
    imgs = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, h, w)
    os.makedirs(out)
    for i in range(count):
        Image.fromarray(imgs[start + i], mode="L").save(os.path.join(out, f"{i:03}.png"))


def emoji_names():
    names = sorted(n for n in os.listdir(os.path.join(DATA, "emoji", "google")) if n.endswith(".png"))
    return names[::EMOJI_STRIDE][:EMOJI_COUNT]


def copy_emoji(out, style):
    os.makedirs(out)
    for name in emoji_names():
        shutil.copy(os.path.join(DATA, "emoji", style, name), os.path.join(out, name))


class SharedWeights:
    """pytorch-fid builds its network with the shared weights instead of downloading its own
    (strict apart from the absent fc layer, which FID does not use)."""

    def __enter__(self):
        shared = torch.load(WEIGHTS, map_location="cpu")
        self.saved = (pi.load_state_dict_from_url, torch.nn.Module.load_state_dict)
        orig = self.saved[1]
        pi.load_state_dict_from_url = lambda *_a, **_k: dict(shared)

        def strict_but_fc(module, sd, strict=True, **kw):
            res = orig(module, sd, strict=False, **kw)
            bad = [k for k in res.missing_keys if not k.startswith("fc.") and "num_batches_tracked" not in k]
            assert not bad and not res.unexpected_keys, (bad, res.unexpected_keys)
            return res

        torch.nn.Module.load_state_dict = strict_but_fc

    def __exit__(self, *_):
        pi.load_state_dict_from_url, torch.nn.Module.load_state_dict = self.saved


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="fid-folders-")
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"torch {torch.__version__}, pytorch-fid {pytorch_fid.__version__}, folders in {out}")
    write_mnist(os.path.join(out, "mnist_a"), 0, MNIST_COUNT)
    write_mnist(os.path.join(out, "mnist_b"), MNIST_COUNT, MNIST_COUNT)
    copy_emoji(os.path.join(out, "emoji_a"), "google")
    copy_emoji(os.path.join(out, "emoji_b"), "twitter")
    modes = sorted({Image.open(os.path.join(out, "emoji_a", n)).mode for n in emoji_names()})
    print(f"emoji: {emoji_names()} (PIL modes {modes})")
    with SharedWeights():
        for a, b in [("mnist_a", "mnist_b"), ("emoji_a", "emoji_b")]:
            paths = [os.path.join(out, a), os.path.join(out, b)]
            fid = calculate_fid_given_paths(paths, batch_size=50, device="cpu", dims=2048, num_workers=0)
            print(f"FID {a} vs {b}: {fid:.9f}")


if __name__ == "__main__":
    main()
