#!/usr/bin/env python3
"""Training-step throughput of a space's largest path in PyTorch (CPU).

With --space other than tiny28 the network is built from what
`tunas-searcher estimate --space S --arch ARCH` prints (so rgb32, rgb96 or
a TOML space run the same layers as `tunas-searcher bench --space S`); the
tiny28 network below is the hand-checked reference.

The reference point for `tunas-searcher bench --space tiny28 --arch largest`:
the same network (as `tunas-searcher estimate --space tiny28 --arch largest`
describes it), the same batch, the same thread count, the same step
(forward, label-smoothed cross-entropy, backward, SGD with Nesterov momentum
0.9 and weight decay 4e-5), random inputs, warm-up steps discarded.

    stem        conv 3x3 s1      28x28x1 -> 28x28x16 relu
    stage1.1    bottleneck k7 e6 s2 se 28x28x16 -> 14x14x32 (mid 96) relu
    stage1.2    bottleneck k7 e6 s1 se 14x14x32 -> 14x14x32 (mid 192) relu +residual
    stage2.1    bottleneck k7 e6 s2 se 14x14x32 -> 7x7x64 (mid 192) swish6
    stage2.2    bottleneck k7 e6 s1 se 7x7x64 -> 7x7x64 (mid 384) swish6 +residual
    stage2.3    bottleneck k7 e6 s1 se 7x7x64 -> 7x7x64 (mid 384) swish6 +residual
    stage3.1    bottleneck k7 e6 s1 se 7x7x64 -> 7x7x96 (mid 384) swish6
    stage3.2    bottleneck k7 e6 s1 se 7x7x96 -> 7x7x96 (mid 576) swish6 +residual
    head        conv 1x1 + avg pool  7x7x96 -> 192 swish6
    classifier  linear               192 -> 10

Squeeze-excite: global average pool, 1x1 conv (bias) to round8(mid/4), ReLU,
1x1 conv (bias) back to mid, sigmoid, multiply. BN: eps 1e-3, momentum 0.99
in TensorFlow terms (0.01 in PyTorch's).

A benchmark dependency only (`scripts/setup-pytorch.sh` installs it into
target/pytorch-venv); no test needs it.

Usage: python3 scripts/pytorch_bench.py --batch 64 --threads 1 [--steps 20]
Prints one JSON object on stdout (images_per_s, step_ms, ...).

OpenMP threads spin while they wait by default (OMP_WAIT_POLICY=active). On
a machine where other processes compete for the cores that makes PyTorch's
multi-threaded steps several times slower than single-threaded ones (measured
here: 22-50 images/s with 2 threads against 117 with passive waiting), so
the script defaults to passive waiting; pass --omp-wait-policy active to
compare.
"""

import argparse
import json
import os
import statistics
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20, help="measured steps")
    ap.add_argument("--warmup-steps", type=int, default=3, help="unmeasured steps first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--omp-wait-policy", choices=["passive", "active"], default="passive")
    ap.add_argument("--space", default="tiny28", help="built-in space or TOML file")
    ap.add_argument("--arch", default="largest", help="architecture (compact text, largest)")
    ap.add_argument("--searcher", default="target/release/tunas-searcher",
                    help="the tunas-searcher binary that describes the network")
    return ap.parse_args()


# OpenMP reads its wait policy when torch loads, so the arguments come first.
ARGS = parse_args()
os.environ["OMP_WAIT_POLICY"] = ARGS.omp_wait_policy.upper()

import torch  # noqa: E402
from torch import nn  # noqa: E402


def round8(v):
    """Round half up to a multiple of 8, at least 8 (as the spaces do)."""
    return max(8, int(v / 8 + 0.5) * 8)


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class SqueezeExcite(nn.Module):
    def __init__(self, mid):
        super().__init__()
        s = round8(mid / 4)
        self.reduce = nn.Conv2d(mid, s, 1, bias=True)
        self.expand = nn.Conv2d(s, mid, 1, bias=True)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        s = torch.sigmoid(self.expand(torch.relu(self.reduce(s))))
        return x * s


class Bottleneck(nn.Module):
    def __init__(self, cin, cout, mid, kernel, stride, act, se, residual):
        super().__init__()
        self.expand = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = bn(mid)
        self.dw = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self.bn2 = bn(mid)
        self.se = SqueezeExcite(mid) if se else nn.Identity()
        self.project = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = bn(cout)
        self.act = act
        self.residual = residual

    def forward(self, x):
        h = self.act(self.bn1(self.expand(x)))
        h = self.act(self.bn2(self.dw(h)))
        h = self.project(self.se(h))
        h = self.bn3(h)
        return h + x if self.residual else h


def tiny28_largest():
    relu, swish6 = nn.ReLU(), nn.Hardswish()
    # (cin, cout, stride, act, residual); kernel 7, expansion 6, SE on.
    layers = [
        (16, 32, 2, relu, False),
        (32, 32, 1, relu, True),
        (32, 64, 2, swish6, False),
        (64, 64, 1, swish6, True),
        (64, 64, 1, swish6, True),
        (64, 96, 1, swish6, False),
        (96, 96, 1, swish6, True),
    ]
    blocks = [nn.Conv2d(1, 16, 3, 1, 1, bias=False), bn(16), nn.ReLU()]
    for cin, cout, stride, act, residual in layers:
        blocks.append(Bottleneck(cin, cout, round8(cin * 6), 7, stride, act, True, residual))
    blocks += [
        nn.Conv2d(96, 192, 1, bias=False),
        bn(192),
        nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(192, 10),
    ]
    return nn.Sequential(*blocks)


def act_of(name):
    return {"relu": nn.ReLU(), "swish6": nn.Hardswish()}[name]


def from_description(searcher, space, arch):
    """The network `tunas-searcher estimate` describes, layer by layer."""
    import re
    import subprocess
    text = subprocess.run([searcher, "estimate", "--space", space, "--arch", arch],
                          capture_output=True, text=True, check=True).stdout
    shape = r"(\d+)x(\d+)x(\d+)"
    blocks, classes, channels = [], None, None
    for line in text.splitlines():
        m = re.match(r"stem\s+conv (\d+)x\d+ s(\d+)\s+" + shape + " -> " + shape + r" (\w+)", line)
        if m:
            k, s_, cin, cout = int(m[1]), int(m[2]), int(m[5]), int(m[8])
            channels = int(m[5])
            blocks += [nn.Conv2d(cin, cout, k, s_, k // 2, bias=False), bn(cout), act_of(m[9])]
            continue
        m = re.match(r"stage\S+\s+bottleneck k(\d+) e(\d+) s(\d+)( se)? " + shape + " -> " + shape
                     + r" \(mid (\d+)\) (\w+)( \+residual)?", line)
        if m:
            k, s_, se = int(m[1]), int(m[3]), m[4] is not None
            cin, cout, mid = int(m[7]), int(m[10]), int(m[11])
            blocks.append(Bottleneck(cin, cout, mid, k, s_, act_of(m[12]), se, m[13] is not None))
            continue
        m = re.match(r"head\s+conv 1x1 \+ avg pool\s+" + shape + r" -> (\d+) (\w+)", line)
        if m:
            cin, f = int(m[3]), int(m[4])
            blocks += [nn.Conv2d(cin, f, 1, bias=False), bn(f), act_of(m[5]),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            continue
        m = re.match(r"classifier\s+linear\s+(\d+) -> (\d+)", line)
        if m:
            blocks.append(nn.Linear(int(m[1]), int(m[2])))
            classes = int(m[2])
    if classes is None or channels is None:
        sys.exit(f"error: cannot read the network from `{searcher} estimate`:\n{text}")
    return nn.Sequential(*blocks), channels


def main():
    args = ARGS

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    if args.space == "tiny28" and args.arch == "largest":
        net, channels = tiny28_largest().train(), 1
    else:
        net, channels = from_description(args.searcher, args.space, args.arch)
        net = net.train()
    size = {"tiny28": 28, "rgb32": 32, "rgb96": 96}.get(args.space)
    if size is None:
        sys.exit("error: give a built-in space (tiny28, rgb32, rgb96) for the input size")
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.SGD(
        net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.rand(args.batch, channels, size, size) * 2 - 1
    y = torch.randint(0, 10, (args.batch,))

    times = []
    for step in range(args.warmup_steps + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        if step >= args.warmup_steps:
            times.append(t1 - t0)

    ms = [t * 1e3 for t in times]
    print(
        json.dumps(
            {
                "framework": "pytorch",
                "torch_version": torch.__version__,
                "network": f"{args.space} {args.arch} path",
                "params": params,
                "batch": args.batch,
                "threads": torch.get_num_threads(),
                "omp_wait_policy": os.environ["OMP_WAIT_POLICY"].lower(),
                "steps": args.steps,
                "warmup_steps": args.warmup_steps,
                "images_per_s": args.batch * len(times) / sum(times),
                "step_ms_median": statistics.median(ms),
                "step_ms_min": min(ms),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
