#!/usr/bin/env python3
"""Reference numbers for gannet's FID Inception / FID, from pytorch-fid itself.

Loads the shared weights (shared/models/pt_inception-2015-12-05-nofc.pth) into pytorch-fid's
`InceptionV3([3], resize_input=True, normalize_input=True)` (its `fid_inception_v3`
architecture; state dict loaded strictly apart from the absent fc layer), feeds the first images
of MNIST / Fashion-MNIST test (grey [0,1], repeated to 3 channels) and prints:
  (a) pool3 features of the first 4 MNIST test images (first 8 dims each);
  (b) FID(MNIST test[:N] vs MNIST test[N:2N]) and FID(MNIST test[:N] vs Fashion test[:N]),
      both with pytorch-fid's calculate_frechet_distance (scipy sqrtm) and with an
      eigenvalue-based tr sqrt(S1 S2) (exact for singular covariances, N < 2048).

Usage: python scripts/fid_reference.py [N]   (env GANNET_DATA, GANNET_MODELS as the Rust code)
Needs: pip install pytorch-fid (pulls torch, torchvision, scipy).
"""
import gzip
import os
import sys

import numpy as np
import scipy
import torch
import pytorch_fid
import pytorch_fid.inception as pi
from pytorch_fid.fid_score import calculate_frechet_distance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("GANNET_DATA", os.path.join(ROOT, "..", "shared", "data"))
MODELS = os.environ.get("GANNET_MODELS", os.path.join(ROOT, "..", "shared", "models"))
WEIGHTS = os.path.join(MODELS, "pt_inception-2015-12-05-nofc.pth")


def read_idx_images(path, count):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, h, w = np.frombuffer(raw[:16], dtype=">u4")
    assert magic == 2051, path
    imgs = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, 1, h, w)[:count]
    return torch.from_numpy(imgs.astype(np.float32) / 255.0)


def build_model():
    shared = torch.load(WEIGHTS, map_location="cpu")

    # fid_inception_v3() downloads its weights; hand it ours instead, adding the model's own
    # (unused) fc so that the load is strict for everything else.
    def load_shared(_url, progress=True):
        sd = dict(shared)
        return sd

    pi.load_state_dict_from_url = load_shared
    orig = torch.nn.Module.load_state_dict

    def strict_but_fc(self, sd, strict=True, **kw):
        res = orig(self, sd, strict=False, **kw)
        bad = [k for k in res.missing_keys if not k.startswith("fc.") and "num_batches_tracked" not in k]
        assert not bad and not res.unexpected_keys, (bad, res.unexpected_keys)
        return res

    torch.nn.Module.load_state_dict = strict_but_fc
    model = pi.InceptionV3([3], resize_input=True, normalize_input=True).eval()
    torch.nn.Module.load_state_dict = orig
    return model


@torch.no_grad()
def features(model, x01):
    out = []
    for i in range(0, len(x01), 50):
        b = x01[i:i + 50].repeat(1, 3, 1, 1)
        out.append(model(b)[0].squeeze(-1).squeeze(-1).double())
    return torch.cat(out).numpy()


def stats(f):
    return f.mean(0), np.cov(f, rowvar=False)


def fid_eig(s1, s2, m1, m2):
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(r @ s2 @ r)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"torch {torch.__version__}, pytorch-fid {pytorch_fid.__version__}, numpy {np.__version__}, scipy {scipy.__version__}")
    model = build_model()
    mnist = read_idx_images(os.path.join(DATA, "mnist", "t10k-images-idx3-ubyte.gz"), 2 * n)
    fashion = read_idx_images(os.path.join(DATA, "fashion-mnist", "t10k-images-idx3-ubyte.gz"), n)
    fm = features(model, mnist)
    ff = features(model, fashion)
    print("(a) pool3 of MNIST test[0..4], dims 0..8:")
    for i in range(4):
        print("  [" + ", ".join(f"{x:.6f}" for x in fm[i, :8]) + "],")
    a, b = stats(fm[:n]), stats(fm[n:2 * n])
    c = stats(ff)
    for name, (s, t) in [("MNIST[:N] vs MNIST[N:2N]", (a, b)), ("MNIST[:N] vs Fashion[:N]", (a, c))]:
        pf = calculate_frechet_distance(s[0], s[1], t[0], t[1])
        ex = fid_eig(s[1], t[1], s[0], t[0])
        print(f"(b) N={n} FID {name}: pytorch-fid {pf:.6f}  eigen {ex:.6f}")


if __name__ == "__main__":
    main()
