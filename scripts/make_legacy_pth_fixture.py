#!/usr/bin/env python3
"""Writes crates/gannet/tests/fixtures/legacy_state_dict.pth: a small state dict saved by
torch.save in PyTorch's legacy (pre-1.6, non-zip) format, the format of pytorch-fid's release
weights pt_inception-2015-12-05-6726825d.pth, so that gannet's legacy reader is tested on bytes
torch itself wrote.

What it holds (values the Rust test checks):
  - a BatchNorm2d(2) state dict (an OrderedDict with `_metadata`, as Module.state_dict() gives):
    weight [1, 1], bias [0, 0], running_mean [0, 0], running_var [1, 1], num_batches_tracked 7 (int64);
  - base = arange(12).reshape(3, 4) float32, and two views of its storage: base_t = base.t()
    (non-contiguous) and row = base[1] (storage offset 4);
  - double = [1.5, -2.25] float64; half = [0.5, -1.0] float16;
  - fc.weight = (arange(6).reshape(2, 3) - 2.5) / 4 float32, fc.bias = [0.25, -0.75].

Usage: python scripts/make_legacy_pth_fixture.py [--full OUT.pth]
  --full OUT.pth: instead, write the shared FID weights in the release file's layout (pytorch-fid's
  model.state_dict(): the 470 shared tensors, num_batches_tracked and a random fc, 566 entries) in
  the legacy format, for a one-off check that gannet scores identically with it (too large to
  commit). Env GANNET_MODELS as the Rust code.
"""
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "gannet", "tests", "fixtures", "legacy_state_dict.pth")


def small():
    sd = torch.nn.BatchNorm2d(2).state_dict()
    sd["num_batches_tracked"] = torch.tensor(7)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd["base"] = base
    sd["base_t"] = base.t()
    sd["row"] = base[1]
    sd["double"] = torch.tensor([1.5, -2.25], dtype=torch.float64)
    sd["half"] = torch.tensor([0.5, -1.0], dtype=torch.float16)
    sd["fc.weight"] = (torch.arange(6, dtype=torch.float32).reshape(2, 3) - 2.5) / 4
    sd["fc.bias"] = torch.tensor([0.25, -0.75])
    torch.save(sd, OUT, _use_new_zipfile_serialization=False)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes) with torch {torch.__version__}")
    back = torch.load(OUT, map_location="cpu")
    assert all(torch.equal(back[k], v) for k, v in sd.items())


def full(out):
    import pytorch_fid.inception as pi

    models = os.environ.get("GANNET_MODELS", os.path.join(ROOT, "..", "shared", "models"))
    shared = torch.load(os.path.join(models, "pt_inception-2015-12-05-nofc.pth"), map_location="cpu")
    torch.manual_seed(0)
    # fid_inception_v3() builds pytorch-fid's network (fc of 1008 classes) and downloads its
    # weights; hand it the shared ones, the fc keeping its random initialisation.
    pi.load_state_dict_from_url = lambda *_a, **_k: dict(shared)
    orig = torch.nn.Module.load_state_dict
    torch.nn.Module.load_state_dict = lambda self, sd, strict=True, **kw: orig(self, sd, strict=False, **kw)
    model = pi.fid_inception_v3()
    torch.nn.Module.load_state_dict = orig
    sd = model.state_dict()
    for k, v in shared.items():
        assert torch.equal(sd[k], v), k
    torch.save(sd, out, _use_new_zipfile_serialization=False)
    print(f"wrote {out}: {len(sd)} entries, {os.path.getsize(out)} bytes, legacy format")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--full":
        full(sys.argv[2])
    else:
        small()
