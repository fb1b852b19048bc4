#!/usr/bin/env python3
"""PyTorch quality twin of `gannet train --preset dcgan-mnist` and `--preset cgan-mnist`.

It trains, in plain PyTorch, the networks and update rule that gannet trains for these two
presets (same architecture, initialisation, losses, optimiser, batch, step count and EMA shadow
generator), then writes generated digits as PNGs in the layout `gannet sample` writes, so that
`gannet eval --images` scores both implementations the same way. Every part names the gannet
source it mirrors (paths relative to the repository root; line numbers as of this writing).

What is mirrored (see the comments below for the exact source of each):
  * the preset TOML (read from crates/gannet/presets/NAME.toml) with the defaults of every unset
    setting (crates/gannet/src/config/train.rs, models/dcgan.rs, optim/adam.rs);
  * DCGAN G and D at 28x28 (7x7 stem, two stride-2 stages), N(0, 0.02) convs without bias,
    BatchNorm N(1, 0.02)/0, eps 1e-5, momentum 0.1, ReLU in G, LeakyReLU(0.2) in D, tanh output;
  * cgan-mnist (AC-GAN): one-hot label concatenated to the latent, class-conditional BatchNorm
    in G (`bn(x) * (1 + gain[y]) + bias[y]`, tables initialised to 0), an auxiliary class head
    in D whose cross-entropy is added to D's loss (real images; also fake ones with
    acgan_class_loss = "real-and-fake") and G's loss (fake);
  * one training step as GanState::step: fresh latents, fakes for the real batch's labels,
    D on real and on detached fake in two train-mode passes, non-saturating BCE, then G on the
    same fakes with D frozen; Adam(2e-4, 0.5, 0.999, 1e-8) for both;
  * the EMA shadow generator (decay 0.999 with the (1+t)/(10+t) ramp, BatchNorm buffers copied)
    used for the output images, drawn with G in eval mode (BatchNorm running statistics).

How to compare (same step count and seed in both; N steps, e.g. the presets' 3000):

    export GANNET_DATA=/work/shared/data GANNET_MODELS=/work/shared/models
    # gannet
    gannet train --preset dcgan-mnist --steps N --seed 0 --out runs/dcgan-N
    gannet sample --checkpoint runs/dcgan-N/checkpoints/latest.safetensors --count 2000 \\
        --out-dir cmp/gannet-dcgan
    gannet train --preset cgan-mnist --steps N --seed 0 --out runs/cgan-N
    gannet sample --checkpoint runs/cgan-N/checkpoints/latest.safetensors --per-class 200 \\
        --out-dir cmp/gannet-cgan
    # PyTorch twin
    python3 scripts/pytorch_gan_twin.py --preset dcgan-mnist --steps N --seed 0 --out cmp/torch-dcgan
    python3 scripts/pytorch_gan_twin.py --preset cgan-mnist --steps N --seed 0 --out cmp/torch-cgan
    # score both folders the same way
    for d in cmp/*-dcgan cmp/*-cgan; do
      gannet eval --images $d --data $GANNET_DATA/mnist --metrics fid,cfid -n 2000
    done
    for d in cmp/*-cgan; do gannet eval --images $d --data $GANNET_DATA/mnist --metrics cacc -n 2000; done

GAN results vary a lot from seed to seed: compare several seeds of each, not one run of each.
Both implementations draw their random numbers differently (weights, data order, latents), so
the same seed does not give the same run, only the same recipe.

    python3 scripts/pytorch_gan_twin.py --preset dcgan-mnist|cgan-mnist [--steps N] [--seed S]
        [--ema-decay D] [--out DIR] [--count 2000] [--threads 2] [--data DIR] [--log-every 250]
"""

import argparse
import copy
import gzip
import math
import os
import struct
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PRESETS = REPO / "crates" / "gannet" / "presets"

# ---------------------------------------------------------------------------------------------
# Configuration: the preset laid over gannet's defaults.
# ---------------------------------------------------------------------------------------------

# Defaults of every setting the two presets leave unset.
DEFAULTS = {
    # crates/gannet/src/config/train.rs:47-66 (TrainConfig::default): seed 0, non-saturating
    # loss (l.52), ema_decay 0.999 (l.60), augment none, no penalty.
    "seed": 0,
    "loss": "non-saturating",
    "ema_decay": 0.999,
    "augment": "none",
    # config/train.rs:111-113 (ScheduleConfig::default): 3000 steps, batch 64, 1 D step per G step.
    "schedule": {"steps": 3000, "batch_size": 64, "d_steps_per_g": 1},
    # models/dcgan.rs:37-41 (DcganConfig::default): latent 100, 32 channels, no spectral norm,
    # BatchNorm in D, unconditional.
    "model": {
        "arch": "dcgan",
        "latent_dim": 100,
        "g_channels": 32,
        "d_channels": 32,
        "spectral_norm": False,
        "d_batch_norm": True,
        "conditional": "none",
    },
    # optim/adam.rs:26-30 (AdamConfig::default): lr 2e-4, betas (0.5, 0.999), eps 1e-8, no
    # weight decay; config/train.rs:116-122: the same defaults for G and D.
    "optim": {
        "gen": {"lr": 2e-4, "beta1": 0.5, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
        "disc": {"lr": 2e-4, "beta1": 0.5, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
    },
    # config/train.rs:84-88: resolution None = 28 for IDX data (train/gan_task.rs:286-293),
    # channels auto = 1 for IDX data (data/mod.rs:319).
    "data": {"source": "${GANNET_DATA}/mnist", "resolution": None, "channels": "auto"},
}


def merge(base: dict, over: dict) -> dict:
    """Preset keys over the defaults, table by table (as crate::config::merge does)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def data_root() -> Path:
    """crates/gannet/src/data/mod.rs:396-409 (data_root / shared_folder): $GANNET_DATA, else the
    first `shared/data` beside the current folder or one of its parents, else ../shared/data."""
    env = os.environ.get("GANNET_DATA")
    if env:
        return Path(env)
    for a in Path.cwd().resolve().parents:
        if (a / "shared" / "data").is_dir():
            return a / "shared" / "data"
    return Path("../shared/data")


def load_config(preset: str) -> dict:
    """The preset file as `gannet train --preset` reads it (train/presets.rs:56-87), over the
    defaults; refuses settings this twin does not implement rather than ignoring them."""
    with open(PRESETS / f"{preset}.toml", "rb") as f:
        cfg = merge(DEFAULTS, tomllib.load(f))
    m = cfg["model"]
    unsupported = []
    if m["arch"] != "dcgan":
        unsupported.append(f"model.arch = {m['arch']!r}")
    if m["spectral_norm"]:
        unsupported.append("model.spectral_norm")
    if m["conditional"] not in ("none", "acgan"):
        unsupported.append(f"model.conditional = {m['conditional']!r}")
    if cfg.get("acgan_class_loss", "real") not in ("real", "real-and-fake"):
        unsupported.append(f"acgan_class_loss = {cfg['acgan_class_loss']!r}")
    if cfg["loss"] != "non-saturating":
        unsupported.append(f"loss = {cfg['loss']!r}")
    if cfg["augment"] != "none" or "penalty" in cfg or "ada" in cfg:
        unsupported.append("augment / ada / penalty")
    for who in ("gen", "disc"):
        if cfg["optim"][who]["weight_decay"] != 0.0:
            unsupported.append(f"optim.{who}.weight_decay")
    if unsupported:
        sys.exit(f"preset {preset}: this twin does not implement {', '.join(unsupported)}")
    return cfg


# ---------------------------------------------------------------------------------------------
# Data: MNIST IDX training split, bytes -> [-1, 1], reshuffled every epoch.
# ---------------------------------------------------------------------------------------------


def read_idx(path: Path, magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    got, = struct.unpack(">I", raw[:4])
    if got != magic:
        sys.exit(f"{path}: IDX magic {got}, expected {magic}")
    dims = raw[3] & 0xFF
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find_first(folder: Path, names) -> Path:
    for n in names:
        if (folder / n).is_file():
            return folder / n
    sys.exit(f"{folder}: none of {names}")


def load_mnist(folder: Path):
    """data/mod.rs:267-271 and 281: an IDX folder means its train-images / train-labels files
    (plain or .gz). data/mod.rs:166-169 (to_unit_f32): x / 127.5 - 1. data/mod.rs:323-325: the
    class count is max label + 1, class names "0".."9"."""
    images = read_idx(find_first(folder, ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]), 2051)
    labels = read_idx(find_first(folder, ["train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz"]), 2049)
    if images.shape[1:] != (28, 28):
        sys.exit(f"{folder}: expected 28x28 images, got {images.shape[1:]}")
    x = torch.from_numpy(images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y, int(labels.max()) + 1


class Batches:
    """data/loader.rs:44-53 and 135-143: every epoch is a fresh permutation of the whole set,
    cut into len // batch full batches (the last partial batch is dropped, loader.rs:64-65 and
    79). Gannet draws the permutation from its own RNG (Fisher-Yates on rng(seed, Shuffle,
    epoch)); here torch.randperm from a generator seeded by the run seed: the same kind of order
    (uniform, without replacement within an epoch), not the same order."""

    def __init__(self, x, y, batch_size: int, seed: int):
        self.x, self.y, self.b = x, y, batch_size
        self.per_epoch = len(x) // batch_size
        self.gen = torch.Generator().manual_seed(seed * 1_000_003 + 11)
        self.perm, self.pos = None, self.per_epoch

    def next(self):
        if self.pos == self.per_epoch:
            self.perm, self.pos = torch.randperm(len(self.x), generator=self.gen), 0
        idx = self.perm[self.pos * self.b:(self.pos + 1) * self.b]
        self.pos += 1
        return self.x[idx], self.y[idx]


# ---------------------------------------------------------------------------------------------
# Networks: crates/gannet/src/models/dcgan.rs, nn/class_batch_norm.rs, nn/batch_norm.rs.
# ---------------------------------------------------------------------------------------------


def plan(resolution: int):
    """models/dcgan.rs:50-61 (Plan::for_resolution): resolution = base * 2^k with base 4 or 7
    and k >= 2; 28 -> base 7, 2 doublings."""
    for base in (4, 7):
        q = resolution // base
        if resolution % base == 0 and q >= 4 and q & (q - 1) == 0:
            return base, q.bit_length() - 1
    sys.exit(f"DCGAN cannot make {resolution}x{resolution} images")


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """nn/batch_norm.rs:21-32: eps 1e-5, momentum 0.1, running mean 0 / var 1; train mode uses
    the batch's biased variance and moves the running variance towards the unbiased one
    (l.76-83), exactly torch's BatchNorm2d. Eval mode (l.66-73) uses the running statistics."""
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


class ClassBatchNorm(nn.Module):
    """nn/class_batch_norm.rs: a BatchNorm (with its own affine weight and bias) followed, when
    conditional, by `y * (1 + gain[label]) + bias[label]` (l.36-45) with [classes, C] tables
    initialised to 0 (l.22-25), so it starts as the plain BatchNorm; then the ReLU that
    dcgan.rs:109,111 asks for (relu_slope Some(0.0)). The tables are looked up with a one-hot
    matrix product (nn/embedding.rs:41-44), which gives the same values and gradients as
    indexing (zero gradient rows for classes not in the batch)."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.bn = batch_norm(channels)
        self.classes = classes
        if classes > 0:
            self.class_gain = nn.Parameter(torch.zeros(classes, channels))
            self.class_bias = nn.Parameter(torch.zeros(classes, channels))

    def forward(self, x, onehot):
        y = self.bn(x)
        if self.classes > 0:
            g = (onehot @ self.class_gain + 1.0)[:, :, None, None]
            b = (onehot @ self.class_bias)[:, :, None, None]
            y = y * g + b
        return F.relu(y)


class Generator(nn.Module):
    """models/dcgan.rs:76-114 (DcganGenerator). Channels ch(i) = g_channels << (doublings-1-i)
    (l.81): at 28x28 with g_channels 32, 64 at 7x7 and 32 at 14x14.
      stem:     ConvTranspose(latent + classes -> 64, k=7, s=1, p=0), 1x1 -> 7x7   (l.84)
      stem_bn:  (class) BatchNorm + ReLU                                          (l.85, 109)
      up1:      ConvTranspose(64 -> 32, k=4, s=2, p=1), 7 -> 14; (class) BN + ReLU (l.86-95, 111)
      to_image: ConvTranspose(32 -> 1, k=4, s=2, p=1), 14 -> 28; tanh              (l.96, 113)
    No conv has a bias (the last argument `false`). A conditional G concatenates the one-hot
    label to the latent before the stem (l.104-108, models/conditional.rs:75-79)."""

    def __init__(self, latent: int, g_channels: int, channels: int, resolution: int, classes: int):
        super().__init__()
        base, doublings = plan(resolution)
        ch = [g_channels << (doublings - 1 - i) for i in range(doublings)]
        self.latent, self.classes = latent, classes
        self.stem = nn.ConvTranspose2d(latent + classes, ch[0], base, 1, 0, bias=False)
        self.stem_bn = ClassBatchNorm(ch[0], classes)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(ch[i - 1], ch[i], 4, 2, 1, bias=False) for i in range(1, doublings))
        self.up_bns = nn.ModuleList(ClassBatchNorm(ch[i], classes) for i in range(1, doublings))
        self.to_image = nn.ConvTranspose2d(ch[-1], channels, 4, 2, 1, bias=False)

    def forward(self, z, labels=None):
        onehot = None
        if self.classes > 0:
            onehot = F.one_hot(labels, self.classes).to(z.dtype)
            z = torch.cat([z, onehot], 1)
        h = self.stem_bn(self.stem(z[:, :, None, None]), onehot)
        for conv, bn in zip(self.ups, self.up_bns):
            h = bn(conv(h), onehot)
        return torch.tanh(self.to_image(h))


class Discriminator(nn.Module):
    """models/dcgan.rs:173-238 (DcganDiscriminator). Channels ch(i) = d_channels << i (l.177):
    32 at 14x14, 64 at 7x7.
      from_image: Conv(1 -> 32, k=4, s=2, p=1), 28 -> 14; LeakyReLU(0.2), no BN     (l.179, 210)
      down1:      Conv(32 -> 64, k=4, s=2, p=1), 14 -> 7; BN + LeakyReLU(0.2)       (l.180-186, 211-217)
      head:       Conv(64 -> 1, k=7, s=1, p=0) -> one logit per image              (l.188, 218)
      class_head: (acgan) Conv(64 -> classes, k=7, s=1, p=0) -> class logits        (l.192, 236)
    No conv has a bias (l.156: `false`); the slope is LRELU_SLOPE = 0.2 (l.170)."""

    def __init__(self, d_channels: int, channels: int, resolution: int, classes: int, acgan: bool, d_batch_norm: bool):
        super().__init__()
        base, doublings = plan(resolution)
        ch = [d_channels << i for i in range(doublings)]
        self.from_image = nn.Conv2d(channels, ch[0], 4, 2, 1, bias=False)
        self.downs = nn.ModuleList(nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=False) for i in range(1, doublings))
        self.down_bns = nn.ModuleList(batch_norm(ch[i]) if d_batch_norm else nn.Identity() for i in range(1, doublings))
        self.head = nn.Conv2d(ch[-1], 1, base, 1, 0, bias=False)
        self.class_head = nn.Conv2d(ch[-1], classes, base, 1, 0, bias=False) if acgan and classes > 0 else None

    def forward(self, x):
        h = F.leaky_relu(self.from_image(x), 0.2)
        for conv, bn in zip(self.downs, self.down_bns):
            h = F.leaky_relu(bn(conv(h)), 0.2)
        logits = self.head(h).flatten()
        classes = self.class_head(h).flatten(1) if self.class_head is not None else None
        return logits, classes


def dcgan_init(net: nn.Module) -> None:
    """nn/init.rs:25-28: Init::DCGAN = N(0, 0.02) for every conv / transposed conv weight
    (dcgan.rs:84,90,96,156), Init::DCGAN_BN = N(1, 0.02) for BatchNorm scales (dcgan.rs:85,91,183)
    with biases 0 (nn/batch_norm.rs:25). The class tables stay 0 (nn/class_batch_norm.rs:24)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------
# Losses: crates/gannet/src/loss.rs and train/step.rs (with_class_loss).
# ---------------------------------------------------------------------------------------------


def bce(logits, target: float):
    """loss.rs:16-20: mean binary cross-entropy of sigmoid(logits) against a constant target."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def with_class_loss(adversarial, class_logits, labels):
    """train/step.rs:232-241: adds the mean cross-entropy (loss.rs:25-33) of every set of class
    logits against the batch's labels; models without a class head add nothing."""
    total = adversarial
    for logits in class_logits:
        if logits is not None:
            total = total + F.cross_entropy(logits, labels)
    return total


# ---------------------------------------------------------------------------------------------
# EMA shadow generator: crates/gannet/src/train/ema.rs.
# ---------------------------------------------------------------------------------------------


class Ema:
    """ema.rs:27-32 (Ema::new): the shadow starts as a copy of G's initial weights and buffers.
    ema.rs:39-42: update t (from 0) uses decay min(decay, (1 + t) / (10 + t)).
    ema.rs:44-56: trainable tensors ema = d*ema + (1-d)*G; buffers (BatchNorm running mean and
    variance) are copied from G, not averaged. Called after every G update (step.rs:160-162)."""

    def __init__(self, gen: nn.Module, decay: float):
        self.gen = copy.deepcopy(gen)
        self.decay = decay
        for p in self.gen.parameters():
            p.requires_grad_(False)

    def decay_at(self, t: int) -> float:
        return min(self.decay, (1.0 + t) / (10.0 + t))

    @torch.no_grad()
    def update(self, gen: nn.Module, t: int) -> None:
        d = self.decay_at(t)
        for pe, p in zip(self.gen.parameters(), gen.parameters()):
            pe.mul_(d).add_(p.detach(), alpha=1.0 - d)
        for be, b in zip(self.gen.buffers(), gen.buffers()):
            be.copy_(b)


# ---------------------------------------------------------------------------------------------
# Training: crates/gannet/src/train/step.rs (GanState::step).
# ---------------------------------------------------------------------------------------------


def adam(params, c: dict) -> torch.optim.Adam:
    """optim/adam.rs:114-141: torch.optim.Adam's update (bias-corrected moments, denominator
    sqrt(v)/sqrt(1-beta2^t) + eps, per-parameter step counts); G and D have separate optimisers
    (step.rs:73-74, config/train.rs:116-122)."""
    return torch.optim.Adam(params, lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["eps"], weight_decay=c["weight_decay"])


def train(cfg: dict, args):
    m, sch = cfg["model"], cfg["schedule"]
    source = cfg["data"]["source"].replace("${GANNET_DATA}", str(data_root()))
    data_dir = Path(args.data) if args.data else Path(source)
    x, y, dataset_classes = load_mnist(data_dir)
    resolution = cfg["data"]["resolution"] or 28
    if resolution != 28:
        sys.exit("this twin reads MNIST at its native 28x28 (data.resolution must be unset or 28)")
    # models/mod.rs:189-205 (classes_for): the class count comes from the data for a conditional
    # model, 0 for an unconditional one.
    acgan = m["conditional"] == "acgan"
    classes = dataset_classes if acgan else 0

    torch.manual_seed(cfg["seed"])
    # models/mod.rs:271-278: G and D built with their weights drawn at creation.
    gen = Generator(m["latent_dim"], m["g_channels"], 1, resolution, classes)
    disc = Discriminator(m["d_channels"], 1, resolution, classes, acgan, m["d_batch_norm"])
    dcgan_init(gen)
    dcgan_init(disc)
    opt_g = adam(gen.parameters(), cfg["optim"]["gen"])
    opt_d = adam(disc.parameters(), cfg["optim"]["disc"])
    # step.rs:75: an EMA shadow when ema_decay > 0 (config/train.rs:18-21: 0 turns it off).
    ema = Ema(gen, cfg["ema_decay"]) if cfg["ema_decay"] > 0 else None
    gen.train()
    disc.train()

    batch, d_steps, steps = sch["batch_size"], sch["d_steps_per_g"], sch["steps"]
    batches = Batches(x, y, batch, cfg["seed"])
    latent_gen = torch.Generator().manual_seed(cfg["seed"] * 1_000_003 + 23)
    print(
        f"{args.preset}: {steps} steps, batch {batch}, d_steps_per_g {d_steps}, latent {m['latent_dim']}, "
        f"G/D channels {m['g_channels']}/{m['d_channels']}, conditional {m['conditional']} ({classes} classes), "
        f"ema_decay {cfg['ema_decay']}, seed {cfg['seed']}, threads {torch.get_num_threads()}; "
        f"G {sum(p.numel() for p in gen.parameters())} / D {sum(p.numel() for p in disc.parameters())} parameters",
        flush=True,
    )

    window, last = [], None
    t0 = time.perf_counter()
    for step in range(steps):
        d_loss_v = d_real_v = d_fake_v = 0.0
        for _ in range(d_steps):
            # step.rs:104-108: a real batch with its labels, fresh N(0, 1) latents (rng.rs:52-56,
            # step.rs:89-92) and fakes for the real batch's labels, G in train mode.
            real, labels = batches.next()
            z = torch.randn(batch, m["latent_dim"], generator=latent_gen)
            fake = gen(z, labels if classes else None)
            # step.rs:120-122: D on the real batch and on the detached fakes, two separate
            # train-mode passes (each with its own batch statistics, each moving the running
            # statistics), both with the batch's labels.
            real_logits, real_cls = disc(real)
            fake_logits, fake_cls = disc(fake.detach())
            # step.rs (D loss) + loss.rs:70: BCE(real, 1) + BCE(fake, 0), plus for AC-GAN the class
            # cross-entropy of the real images, and of the fakes only with
            # acgan_class_loss = "real-and-fake" (models/conditional.rs, AcganClassLoss).
            fake_cls = fake_cls if cfg.get("acgan_class_loss") == "real-and-fake" else None
            d_loss = with_class_loss(bce(real_logits, 1.0) + bce(fake_logits, 0.0), [real_cls, fake_cls], labels)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()  # step.rs:137-139
            # step.rs:140-142: D values averaged over the D updates of the step.
            d_loss_v += d_loss.item() / d_steps
            d_real_v += real_logits.mean().item() / d_steps
            d_fake_v += fake_logits.mean().item() / d_steps
        # step.rs:145-149: G's update on the last D update's fakes and labels, D in train mode
        # with its weights frozen (nn/params.rs:19-31: no weight gradients, BatchNorm statistics
        # still move); loss.rs:89: non-saturating BCE(fake, 1), plus the AC-GAN class loss.
        disc.requires_grad_(False)
        g_logits, g_cls = disc(fake)
        g_loss = with_class_loss(bce(g_logits, 1.0), [g_cls], labels)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()  # step.rs:157-159
        disc.requires_grad_(True)
        if ema is not None:
            ema.update(gen, step)  # step.rs:160-162
        last = (d_loss_v, g_loss.item(), d_real_v, d_fake_v)
        window.append(last)
        if (step + 1) % args.log_every == 0 or step + 1 == steps:
            mean = [sum(v) / len(window) for v in zip(*window)]
            rate = (step + 1) * batch * d_steps / (time.perf_counter() - t0)
            # The summary format of train/gan_task.rs:36-38, averaged since the last line.
            print(f"step {step + 1:6d}/{steps}  D {mean[0]:.3f} G {mean[1]:.3f} | D(x) {mean[2]:+.2f} D(G(z)) {mean[3]:+.2f}  ({rate:.0f} img/s)", flush=True)
            window = []
    elapsed = time.perf_counter() - t0
    return gen, ema, classes, elapsed, last


# ---------------------------------------------------------------------------------------------
# Output: what `gannet sample --out-dir` / `--per-class` writes.
# ---------------------------------------------------------------------------------------------


def to_u8(images: torch.Tensor) -> np.ndarray:
    """image_io.rs:20-24: ((x + 1) * 127.5).round().clamp(0, 255) in f32, Rust's round (half away
    from zero) rather than numpy's half-to-even."""
    v = (images.numpy().astype(np.float32) + np.float32(1.0)) * np.float32(127.5)
    return np.clip(np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)), 0, 255).astype(np.uint8)


@torch.no_grad()
def write_samples(gen: nn.Module, classes: int, count: int, latent: int, seed: int, out: Path) -> int:
    """metrics/evaluate.rs:219-241 (generate_from, used by `gannet sample`): chunks of 256, G in
    Mode::Eval, which for BatchNorm means the running statistics (nn/batch_norm.rs:66-73): torch's
    eval(). gannet-cli/src/commands/sample.rs:105: the EMA shadow when the run has one.
    Unconditional: OUT/00000.png ... (sample.rs:160). Conditional, as `--per-class n`:
    OUT/<class name>/00000.png ... with the label of image i = i // n (sample.rs:117, 159), and
    OUT/classes.txt listing the class names one per line (sample.rs:181-185); IDX class names are
    "0".."9" (data/mod.rs:325). n = ceil(count / classes), so at least `count` images exist."""
    gen.eval()
    per_class = math.ceil(count / classes) if classes else 0
    total = per_class * classes if classes else count
    names = [str(c) for c in range(classes)]
    dirs = [out / n for n in names] if classes else [out]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    z_gen = torch.Generator().manual_seed(seed * 1_000_003 + 37)
    done = 0
    while done < total:
        n = min(256, total - done)
        z = torch.randn(n, latent, generator=z_gen)
        labels = torch.arange(done, done + n) // per_class if classes else None
        imgs = to_u8(gen(z, labels))
        for j in range(n):
            i = done + j
            path = out / names[i // per_class] / f"{i % per_class:05d}.png" if classes else out / f"{i:05d}.png"
            Image.fromarray(imgs[j, 0]).save(path)
        done += n
    if classes:
        (out / "classes.txt").write_text("\n".join(names) + "\n")
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True, choices=["dcgan-mnist", "cgan-mnist"])
    ap.add_argument("--steps", type=int, help="generator updates (default: the preset's)")
    ap.add_argument("--seed", type=int, help="default: the preset's (0)")
    ap.add_argument("--ema-decay", type=float, help="EMA shadow decay, 0 = off (default: the preset's, 0.999)")
    ap.add_argument("--out", default=None, help="folder for the PNGs (default: runs/torch-PRESET)")
    ap.add_argument("--count", type=int, default=2000, help="images to write (conditional: rounded up to a multiple of the classes)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--data", help="MNIST IDX folder (default: the preset's ${GANNET_DATA}/mnist)")
    ap.add_argument("--log-every", type=int, default=250, help="steps per progress line")
    args = ap.parse_args()

    cfg = load_config(args.preset)
    if args.steps is not None:
        cfg["schedule"]["steps"] = args.steps
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.ema_decay is not None:
        cfg["ema_decay"] = args.ema_decay
    # config/train.rs:206-208: ema_decay in [0, 1).
    if not 0.0 <= cfg["ema_decay"] < 1.0 or cfg["schedule"]["steps"] < 1 or args.count < 1 or args.log_every < 1:
        sys.exit("need 0 <= --ema-decay < 1, --steps >= 1, --count >= 1 and --log-every >= 1")
    out = Path(args.out or f"runs/torch-{args.preset}")
    if out.exists() and any(out.rglob("*.png")):
        sys.exit(f"{out} already holds PNG images: give an empty or new --out, so old images are not scored too")
    torch.set_num_threads(args.threads)

    gen, ema, classes, elapsed, last = train(cfg, args)
    steps = cfg["schedule"]["steps"]
    print(f"training time: {elapsed:.1f} s for {steps} steps ({elapsed / steps * 1000:.1f} ms/step)")
    print(f"final losses (step {steps}): D {last[0]:.4f}  G {last[1]:.4f}  D(x) {last[2]:+.3f}  D(G(z)) {last[3]:+.3f}")
    sampler = ema.gen if ema is not None else gen
    t0 = time.perf_counter()
    n = write_samples(sampler, classes, args.count, cfg["model"]["latent_dim"], cfg["seed"], out)
    layout = f"{n // classes} per class in {classes} subfolders + classes.txt" if classes else "flat"
    print(f"wrote {n} PNGs ({layout}) from the {'EMA shadow' if ema is not None else 'trained'} generator to {out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
