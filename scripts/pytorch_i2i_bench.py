#!/usr/bin/env python3
"""PyTorch speed twin of gannet's image-to-image training step (pix2pix, CycleGAN, super-resolution).

Builds the same networks as gannet (crates/gannet/src/models/{unet,resnet_translator,srgan,
patchgan}.rs) and runs the same step as crates/gannet/src/train/i2i/step.rs, fp32 on the CPU by
default, on synthetic images in [-1, 1] (no file loading is timed), so a comparison script can
time gannet's train step against PyTorch doing the same work. Settings come from an i2i preset
TOML laid over gannet's task defaults (crates/gannet/src/config/i2i.rs, I2iConfig::for_task);
flags named as `gannet train-i2i`'s override it. Prints one JSON object; `train_img_per_s` is
batch / the median seconds per step over --reps timed steps after --warmup untimed ones.

    python3 -W ignore scripts/pytorch_i2i_bench.py --task cyclegan \\
        --preset crates/gannet/presets/i2i/cyclegan-emoji.toml [--threads 2 --reps 5 --warmup 2] \\
        [--g-channels N --d-channels N --g-blocks N --d-layers N --batch-size N --resolution N]

--preset takes a TOML path or a preset name (pix2pix-emoji, ...); --task may be left out when the
preset names it. Without --preset the task's defaults are used.
Time it with the cores otherwise idle: next to another busy process, PyTorch's OpenMP threads
spin-wait and a step can take 10-50x longer (seen here: CycleGAN 0.16 s/step alone at 1 thread,
over 10 s/step at 2 threads beside a running gannet).

What one step does (as gannet):
  pix2pix   G = U-Net, D = conditional PatchGAN on cat(input, image). G fwd; D fwd on (a, b) and on
            (a, G(a).detach()), D loss x 0.5, D bwd + Adam; D fwd on (a, G(a)) with D's weights
            frozen, G loss = adv * w_adv + l1 * |G(a) - b|, bwd into G (through frozen D) + Adam.
  cyclegan  G_AB, G_BA = ResNet translators, D_A, D_B = PatchGANs; one Adam over both Gs, one over
            both Ds. G fwds: G_AB(a), G_BA(b), G_BA(G_AB(a)), G_AB(G_BA(b)), identity G_AB(b),
            G_BA(a) (when identity > 0); frozen D_B(fake_b), D_A(fake_a); one bwd + Adam. Then the
            history pools (size pool_size) pick the fakes; D_A(a), D_A(pool_a), D_B(b), D_B(pool_b),
            one bwd + Adam.
  superres  G = sub-pixel SR net, D = PatchGAN. hr box-downscaled by `scale` (timed, as in gannet);
            G fwd; D fwd on hr and G(lr).detach(), D bwd + Adam; frozen D fwd on G(lr), G loss =
            pixel L1/MSE + adv * w_adv, bwd + Adam.

Differences from gannet that could not be avoided (none changes the algorithm's FLOPs):
  - Frozen D in the G update: gannet detaches D's weights (nn::frozen); here D's parameters get
    requires_grad=False for that forward, so PyTorch skips their weight-gradient GEMMs. candle
    0.11's matmul backward computes both operand gradients unconditionally, so gannet may still
    spend the (discarded) dW GEMMs of D there, and the input-gradient GEMM of each network's first
    conv on a data input; PyTorch does neither. That is gannet's extra work, not the step's.
  - Kernels: PyTorch's own conv / transposed conv / instance norm (mkldnn or its native CPU
    kernels) vs gannet's im2col + GEMM and fused norm+activation; losses (tiny logit maps) use
    torch's fused functions. Adam is torch.optim.Adam with its default CPU implementation.
  - Zero padding everywhere, as gannet (CycleGAN's paper uses reflection padding; gannet and this
    twin do not), and 4x4 stride-2 transposed convs in the ResNet translator, as gannet.
  - The images are the same random batch every step (gannet reads a new batch per step; the
    content does not change the cost). The pool's coin flips use Python's random, not gannet's RNG.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F

TASKS = ("pix2pix", "cyclegan", "superres")
PRESET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "gannet", "presets", "i2i")


# ---------------------------------------------------------------------------------------------
# Config: gannet's I2iConfig::for_task defaults with the preset and the flags laid over them.


def defaults(task: str) -> dict:
    """I2iConfig::for_task(task), the fields that matter for a step."""
    adam = {"lr": 2e-4, "beta1": 0.5, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
    cfg = {
        "task": task,
        "seed": 0,
        "loss": "non-saturating",
        "data": {"resolution": 64, "channels": "rgb"},
        "model": {"g_channels": 32, "g_blocks": 4, "g_residual": False, "d_channels": 32, "d_layers": 3, "scale": 4},
        "weights": {"adversarial": 1.0, "l1": 100.0, "cycle": 10.0, "identity": 0.5, "pixel": "l1"},
        "schedule": {"batch_size": 16, "pool_size": 50, "lr_decay_start": 0, "lr_decay_steps": 0},
        "optim": {"gen": dict(adam), "disc": dict(adam)},
    }
    if task == "cyclegan":
        cfg["loss"] = "least-squares"
        cfg["model"]["g_channels"] = 16
    elif task == "superres":
        cfg["weights"]["adversarial"] = 1e-3
        for k in ("gen", "disc"):
            cfg["optim"][k]["lr"] = 1e-4
            cfg["optim"][k]["beta1"] = 0.9
    return cfg


def merge(base: dict, over: dict) -> None:
    """Lays `over` onto `base` key by key (tables recursively), as gannet's config::merge."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v


def load_preset(name_or_path: str) -> dict:
    path = name_or_path
    if not os.path.exists(path):
        path = os.path.join(PRESET_DIR, name_or_path + ("" if name_or_path.endswith(".toml") else ".toml"))
    if not os.path.exists(path):
        sys.exit(f"no preset file or name '{name_or_path}' (looked in {os.path.normpath(PRESET_DIR)})")
    with open(path, "rb") as f:
        return tomllib.load(f)


def resolve_config(args) -> dict:
    preset = load_preset(args.preset) if args.preset else {}
    task = preset.get("task")
    if args.task and task and args.task != task:
        sys.exit(f"--task {args.task} does not match the preset's task {task}")
    task = args.task or task
    if task not in TASKS:
        sys.exit(f"name a task: --task {' | '.join(TASKS)} (or a preset that sets one)")
    cfg = defaults(task)
    merge(cfg, preset)
    m, s = cfg["model"], cfg["schedule"]
    for flag, table, key in (
        ("resolution", cfg["data"], "resolution"),
        ("batch_size", s, "batch_size"),
        ("g_channels", m, "g_channels"),
        ("d_channels", m, "d_channels"),
        ("g_blocks", m, "g_blocks"),
        ("d_layers", m, "d_layers"),
        ("scale", m, "scale"),
        ("seed", cfg, "seed"),
        ("lr_g", cfg["optim"]["gen"], "lr"),
        ("lr_d", cfg["optim"]["disc"], "lr"),
    ):
        v = getattr(args, flag)
        if v is not None:
            table[key] = v
    return cfg


def lr_factor(sched: dict, step: int) -> float:
    """I2iSchedule::lr_factor."""
    start, steps = sched["lr_decay_start"], sched["lr_decay_steps"]
    if steps == 0 or step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start + 1) / (steps + 1))


# ---------------------------------------------------------------------------------------------
# Networks (zero padding, N(0, 0.02) weights, zero biases, instance norm without affine).


def conv(cin: int, cout: int, k: int, stride: int, pad: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, pad, bias=bias)


def inorm(c: int) -> nn.InstanceNorm2d:
    # gannet's InstanceNorm: biased variance, eps 1e-5, no affine, no running statistics.
    return nn.InstanceNorm2d(c, eps=1e-5, affine=False, track_running_stats=False)


class UnetGenerator(nn.Module):
    """models/unet.rs: 4x4 stride-2 convs down to 2x2, mirrored transposed convs up with skips."""

    def __init__(self, ngf: int, resolution: int, cin: int, cout: int):
        super().__init__()
        if resolution < 4 or resolution & (resolution - 1):
            sys.exit(f"the U-Net needs a power-of-two resolution of at least 4, got {resolution}")
        depth = resolution.bit_length() - 2  # trailing_zeros - 1

        def ch(i):
            return ngf * (1 << min(i, 3))

        self.down = nn.ModuleList()
        self.down_norm = nn.ModuleList()
        for i in range(depth):
            c_in = cin if i == 0 else ch(i - 1)
            has_norm = not (i == 0 or i == depth - 1)
            self.down.append(conv(c_in, ch(i), 4, 2, 1, bias=not has_norm))
            self.down_norm.append(inorm(ch(i)) if has_norm else nn.Identity())
        self.up = nn.ModuleList()
        self.up_norm = nn.ModuleList()
        for i in reversed(range(depth)):
            c_in = ch(i) if i == depth - 1 else 2 * ch(i)
            c_out = cout if i == 0 else ch(i - 1)
            has_norm = i != 0
            self.up.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=not has_norm))
            self.up_norm.append(inorm(c_out) if has_norm else nn.Identity())

    def forward(self, x):
        skips = []
        h = x
        for i, (c, n) in enumerate(zip(self.down, self.down_norm)):
            inp = h if i == 0 else F.leaky_relu(h, 0.2)
            h = n(c(inp))
            skips.append(h)
        skips.pop()
        for c, n in zip(self.up, self.up_norm):
            h = n(c(F.relu(h)))
            if skips:
                h = torch.cat([skips.pop(), h], 1)
        return torch.tanh(h)


class ResnetTranslator(nn.Module):
    """models/resnet_translator.rs: 7x7 stem, 2 stride-2 downs, `blocks` residual blocks at 4*ngf,
    2 4x4 stride-2 transposed convs up, 7x7 to the image, tanh; instance norm + ReLU."""

    def __init__(self, ngf: int, blocks: int, cin: int, cout: int, residual: bool = False):
        super().__init__()
        c = ngf
        self.residual = residual
        self.stem = nn.Sequential(conv(cin, c, 7, 1, 3, False), inorm(c), nn.ReLU())
        self.down = nn.Sequential(
            conv(c, 2 * c, 3, 2, 1, False), inorm(2 * c), nn.ReLU(),
            conv(2 * c, 4 * c, 3, 2, 1, False), inorm(4 * c), nn.ReLU(),
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(conv(4 * c, 4 * c, 3, 1, 1, False), inorm(4 * c), nn.ReLU(), conv(4 * c, 4 * c, 3, 1, 1, False), inorm(4 * c))
            for _ in range(blocks)
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1, bias=False), inorm(2 * c), nn.ReLU(),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False), inorm(c), nn.ReLU(),
        )
        self.to_image = conv(c, cout, 7, 1, 3, True)

    def forward(self, x):
        if x.shape[2] % 4 or x.shape[3] % 4:
            sys.exit("the ResNet translator needs sizes that are multiples of 4")
        h = self.down(self.stem(x))
        for b in self.blocks:
            h = h + b(h)
        out = self.to_image(self.up(h))
        if self.residual:  # g_residual: tanh(atanh(x) + f(x)), x clamped to +-0.999 as gannet
            out = out + torch.atanh(x.clamp(-0.999, 0.999))
        return torch.tanh(out)


class SrGenerator(nn.Module):
    """models/srgan.rs: 3x3 head, `blocks` (conv, ReLU, conv) residual blocks, body conv + skip,
    per factor 2: conv to 4c, pixel shuffle, ReLU; 3x3 tail; plus the nearest-upscaled input."""

    def __init__(self, c: int, blocks: int, scale: int, channels: int):
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            sys.exit(f"super-resolution scale must be a power of two of at least 2, got {scale}")
        self.head = conv(channels, c, 3, 1, 1, True)
        self.blocks = nn.ModuleList(nn.Sequential(conv(c, c, 3, 1, 1, True), nn.ReLU(), conv(c, c, 3, 1, 1, True)) for _ in range(blocks))
        self.body_out = conv(c, c, 3, 1, 1, True)
        self.ups = nn.ModuleList(conv(c, 4 * c, 3, 1, 1, True) for _ in range(scale.bit_length() - 1))
        self.tail = conv(c, channels, 3, 1, 1, True)

    def forward(self, x):
        h0 = self.head(x)
        h = h0
        for b in self.blocks:
            h = h + b(h)
        h = self.body_out(h) + h0
        base = x.detach()
        for up in self.ups:
            h = F.relu(F.pixel_shuffle(up(h), 2))
            base = F.interpolate(base, scale_factor=2, mode="nearest")
        return self.tail(h) + base


class PatchGan(nn.Module):
    """models/patchgan.rs: 4x4 convs, stride 2 for the first `layers` and 1 for one more, channels
    doubling to 8 * ndf, instance norm on all but the first (bias only there), LeakyReLU(0.2);
    a 4x4 stride-1 head to one channel (with bias)."""

    def __init__(self, ndf: int, layers: int, cin: int):
        super().__init__()

        def ch(i):
            return ndf * (1 << min(i, 3))

        mods = []
        for i in range(layers + 1):
            c_in = cin if i == 0 else ch(i - 1)
            stride = 2 if i < layers else 1
            mods.append(conv(c_in, ch(i), 4, stride, 1, bias=i == 0))
            if i > 0:
                mods.append(inorm(ch(i)))
            mods.append(nn.LeakyReLU(0.2))
        mods.append(conv(ch(layers), 1, 4, 1, 1, True))
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        return self.net(x)


def init_weights(m: nn.Module) -> None:
    """Init::DCGAN: N(0, 0.02) weights; biases zero."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class frozen:
    """nn::frozen: the networks' weights are constants inside (no weight gradients), the inputs'
    gradients still flow."""

    def __init__(self, *nets: nn.Module):
        self.params = [p for n in nets for p in n.parameters()]

    def __enter__(self):
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc):
        for p in self.params:
            p.requires_grad_(True)


# ---------------------------------------------------------------------------------------------
# Losses (loss.rs, GanLoss), on logits.


def d_loss(kind: str, r, f):
    if kind in ("non-saturating", "minimax"):
        return F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
    if kind == "least-squares":
        return ((r - 1).square().mean() + f.square().mean()) * 0.5
    if kind == "hinge":
        return F.relu(1 - r).mean() + F.relu(1 + f).mean()
    if kind == "wasserstein":
        return f.mean() - r.mean()
    sys.exit(f"unknown loss {kind}")


def g_loss(kind: str, f):
    if kind == "non-saturating":
        return F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
    if kind == "minimax":
        return -F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
    if kind == "least-squares":
        return (f - 1).square().mean() * 0.5
    if kind in ("hinge", "wasserstein"):
        return -f.mean()
    sys.exit(f"unknown loss {kind}")


class ImagePool:
    """train/i2i/pool.rs: CycleGAN's history of generated images."""

    def __init__(self, size: int, rng: random.Random):
        self.size, self.images, self.rng = size, [], rng

    def query(self, fakes):
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        out = []
        for i in range(fakes.shape[0]):
            img = fakes[i : i + 1]
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif self.rng.random() < 0.5:
                j = self.rng.randrange(self.size)
                out.append(self.images[j])
                self.images[j] = img
            else:
                out.append(img)
        return torch.cat(out, 0)


def adam(params, a: dict) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"], weight_decay=a["weight_decay"])


# ---------------------------------------------------------------------------------------------
# The steps (train/i2i/step.rs).


def build(cfg: dict, channels: int, dev: torch.device):
    """Networks, optimisers and the step function of cfg's task."""
    task, m, w, sched = cfg["task"], cfg["model"], cfg["weights"], cfg["schedule"]
    res, loss = cfg["data"]["resolution"], cfg["loss"]
    nets = {}
    if task == "pix2pix":
        nets["g"] = UnetGenerator(m["g_channels"], res, channels, channels)
        nets["d"] = PatchGan(m["d_channels"], m["d_layers"], 2 * channels)
    elif task == "cyclegan":
        nets["g_ab"] = ResnetTranslator(m["g_channels"], m["g_blocks"], channels, channels, m["g_residual"])
        nets["g_ba"] = ResnetTranslator(m["g_channels"], m["g_blocks"], channels, channels, m["g_residual"])
        nets["d_a"] = PatchGan(m["d_channels"], m["d_layers"], channels)
        nets["d_b"] = PatchGan(m["d_channels"], m["d_layers"], channels)
    else:
        if res % m["scale"] or res // m["scale"] < 2:
            sys.exit(f"data.resolution {res} must be a multiple of model.scale {m['scale']} (and at least twice it)")
        nets["g"] = SrGenerator(m["g_channels"], m["g_blocks"], m["scale"], channels)
        nets["d"] = PatchGan(m["d_channels"], m["d_layers"], channels)
    for n in nets.values():
        n.to(dev).apply(init_weights)
        n.train()
    gens = [n for k, n in nets.items() if k.startswith("g")]
    discs = [n for k, n in nets.items() if k.startswith("d")]
    opt_g = adam([p for n in gens for p in n.parameters()], cfg["optim"]["gen"])
    opt_d = adam([p for n in discs for p in n.parameters()], cfg["optim"]["disc"])
    base_lr = (cfg["optim"]["gen"]["lr"], cfg["optim"]["disc"]["lr"])
    rng = random.Random(cfg["seed"])
    pool_size = sched["pool_size"] if task == "cyclegan" else 0
    pool_a, pool_b = ImagePool(pool_size, rng), ImagePool(pool_size, rng)

    def set_lr(step):
        f = lr_factor(sched, step)
        for opt, lr in ((opt_g, base_lr[0]), (opt_d, base_lr[1])):
            for group in opt.param_groups:
                group["lr"] = lr * f

    def pix2pix(a, b):
        g, d = nets["g"], nets["d"]
        fake = g(a)
        opt_d.zero_grad(set_to_none=True)
        real_logits = d(torch.cat([a, b], 1))
        fake_logits = d(torch.cat([a, fake.detach()], 1))
        (d_loss(loss, real_logits, fake_logits) * 0.5).backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        with frozen(d):
            g_adv = g_loss(loss, d(torch.cat([a, fake], 1)))
        g_l1 = (fake - b).abs().mean()
        (g_adv * w["adversarial"] + g_l1 * w["l1"]).backward()
        opt_g.step()

    def cyclegan(a, b):
        g_ab, g_ba, d_a, d_b = nets["g_ab"], nets["g_ba"], nets["d_a"], nets["d_b"]
        opt_g.zero_grad(set_to_none=True)
        fake_b = g_ab(a)
        fake_a = g_ba(b)
        cycle = (g_ba(fake_b) - a).abs().mean() + (g_ab(fake_a) - b).abs().mean()
        with frozen(d_a, d_b):
            g_adv = g_loss(loss, d_b(fake_b)) + g_loss(loss, d_a(fake_a))
        total = g_adv * w["adversarial"] + cycle * w["cycle"]
        if w["identity"] > 0:
            idt = (g_ab(b) - b).abs().mean() + (g_ba(a) - a).abs().mean()
            total = total + idt * (w["cycle"] * w["identity"])
        total.backward()
        opt_g.step()
        pooled_b = pool_b.query(fake_b)
        pooled_a = pool_a.query(fake_a)
        opt_d.zero_grad(set_to_none=True)
        dl = d_loss(loss, d_a(a), d_a(pooled_a)) + d_loss(loss, d_b(b), d_b(pooled_b))
        dl.backward()
        opt_d.step()

    def superres(hr, _b):
        g, d = nets["g"], nets["d"]
        lr_images = hr
        for _ in range(m["scale"].bit_length() - 1):
            lr_images = F.avg_pool2d(lr_images, 2)
        sr = g(lr_images)
        opt_d.zero_grad(set_to_none=True)
        d_loss(loss, d(hr), d(sr.detach())).backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        pixel = (sr - hr).abs().mean() if w["pixel"] == "l1" else (sr - hr).square().mean()
        with frozen(d):
            g_adv = g_loss(loss, d(sr))
        (pixel + g_adv * w["adversarial"]).backward()
        opt_g.step()

    step_fn = {"pix2pix": pix2pix, "cyclegan": cyclegan, "superres": superres}[task]

    def step(i, a, b):
        set_lr(i)
        step_fn(a, b)

    params = {k: sum(p.numel() for p in n.parameters()) for k, n in nets.items()}
    return step, params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=TASKS, help="pix2pix, cyclegan or superres (or set by the preset)")
    ap.add_argument("--preset", help="an i2i preset TOML path, or a name in crates/gannet/presets/i2i/")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--reps", type=int, default=5, help="timed steps (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--device", default="cpu")
    # As `gannet train-i2i` (--g-blocks, --d-layers, --scale are config keys it has no flags for).
    ap.add_argument("--resolution", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--g-channels", type=int)
    ap.add_argument("--d-channels", type=int)
    ap.add_argument("--g-blocks", type=int)
    ap.add_argument("--d-layers", type=int)
    ap.add_argument("--scale", type=int)
    ap.add_argument("--lr-g", type=float)
    ap.add_argument("--lr-d", type=float)
    ap.add_argument("--seed", type=int)
    args = ap.parse_args()
    if args.reps < 1 or args.warmup < 0:
        sys.exit("--reps must be at least 1 and --warmup at least 0")

    cfg = resolve_config(args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(cfg["seed"])
    dev = torch.device(args.device)
    channels = 1 if cfg["data"].get("channels") == "grey" else 3
    res, bs = cfg["data"]["resolution"], cfg["schedule"]["batch_size"]
    step, params = build(cfg, channels, dev)

    # Synthetic images in [-1, 1]: the cost does not depend on their content.
    a = torch.rand(bs, channels, res, res, device=dev) * 2 - 1
    b = torch.rand(bs, channels, res, res, device=dev) * 2 - 1 if cfg["task"] != "superres" else None

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for i in range(args.warmup):
        step(i, a, b)
    sync()
    times = []
    for i in range(args.warmup, args.warmup + args.reps):
        t = time.perf_counter()
        step(i, a, b)
        sync()
        times.append(time.perf_counter() - t)

    m = cfg["model"]
    out = {
        "framework": "pytorch",
        "task": cfg["task"],
        "torch": torch.__version__,
        "device": str(dev),
        "threads": args.threads,
        "batch": bs,
        "resolution": res,
        "channels": channels,
        "g_channels": m["g_channels"],
        "d_channels": m["d_channels"],
        "d_layers": m["d_layers"],
        "loss": cfg["loss"],
        "params": params,
        "train_img_per_s": round(bs / statistics.median(times), 3),
        "step_s": [round(t, 4) for t in times],
    }
    if cfg["task"] != "pix2pix":
        out["g_blocks"] = m["g_blocks"]
    if cfg["task"] == "superres":
        out["scale"] = m["scale"]
    if cfg["task"] == "cyclegan":
        out["identity"] = cfg["weights"]["identity"]
        out["pool_size"] = cfg["schedule"]["pool_size"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
