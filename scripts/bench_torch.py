#!/usr/bin/python3
"""PyTorch side of the speed comparisons: the models of scripts/torch_models.py and the norm
layers, with the same step and timing rule as normlab_bench's `train`, `lm` and `norms` suites
(bench/), printed in their row formats so scripts/bench_train_vs_torch.sh, bench_lm_vs_torch.sh
and bench_norms_vs_torch.sh read both sides with one parser.

  /usr/bin/python3 scripts/bench_torch.py images [--threads N] [--budget S] [--only mnist,cifar,resnet20]
                                                 [--norms none,bn,gn,in,ln] [--batches 2,8,32,128]
  /usr/bin/python3 scripts/bench_torch.py lm [--threads N] [--budget S]
  /usr/bin/python3 scripts/bench_torch.py norms [--threads N] [--budget S]

images: CNN on MNIST-shaped [1, 28, 28] and CIFAR-shaped [3, 32, 32] synthetic batches (and
        ResNet-20 on CIFAR-shaped ones with --only ...,resnet20), norms none/bn/gn/in/ln, batch
        2/8/32/128; SGD lr 0.01 momentum 0.9; rows
        "train <mnist|cifar|resnet20> <norm> <batch> <images/s> <step ms>".
lm:     Transformer (ln, rms; AdamW lr 3e-4, weight decay 0.01), LSTM and GRU (Adam lr 2e-3)
        on synthetic ids, batch 16 x seq 64, vocab 65; rows "<title> <tokens/s> <step ms> - <params>".
        One step = zero_grad, forward, mean cross-entropy, backward, optimizer step. 3 warm-up
        steps, then timed steps until `budget` seconds passed (at least 8, at most 60); the
        median counts.
norms:  bench/bench_norms.cpp's layers and shapes (conv maps: BatchNorm2d, GroupNorm(8),
        InstanceNorm2d(affine), LayerNorm(C,H,W); tokens: LayerNorm(D), RMSNorm written out,
        BatchNorm1d(D)), training mode, parameters uniform in [0.5, 1.5]; forward and
        forward+backward microseconds (median of single calls, >= 7, within `budget` s each).
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def median_step_seconds(step, budget):
    for _ in range(3):
        step()
    times, start = [], time.perf_counter()
    while len(times) < 60 and (len(times) < 8 or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_step(model, opt, inputs, targets, classes):
    def step():
        opt.zero_grad(set_to_none=False)
        logits = model(inputs)
        F.cross_entropy(logits.reshape(-1, classes), targets.reshape(-1)).backward()
        opt.step()
    return step


def images(budget, only, norms, batches):
    for name in only:
        channels, size = (1, 28) if name == "mnist" else (3, 32)
        for norm in norms:
            for batch in batches:
                torch.manual_seed(0)
                model = (torch_models.resnet20(norm) if name == "resnet20"
                         else torch_models.cnn(channels, norm, size)).train()
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
                x = torch.randn(batch, channels, size, size)
                y = torch.tensor([(i * 7 + 3) % 10 for i in range(batch)])
                t = median_step_seconds(train_step(model, opt, x, y, 10), budget)
                print(f"{'train':14s}{name:14s}{norm:14s}{batch:<14d}{batch / t:<14.0f}{t * 1e3:<14.3f}", flush=True)


def lm(budget):
    B, T, V = 16, 64, 65
    rows = [("Transformer 2L d128 h4, pre-LayerNorm", lambda: torch_models.transformer("ln"), True),
            ("Transformer 2L d128 h4, pre-RMSNorm (composite)", lambda: torch_models.transformer("rms"), True),
            ("LSTM 1L h256 (emb 128)", lambda: torch_models.char_rnn("lstm"), False),
            ("GRU 1L h256 (emb 128)", lambda: torch_models.char_rnn("gru"), False)]
    for title, make, adamw in rows:
        torch.manual_seed(0)
        model = make().train()
        opt = (torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01) if adamw
               else torch.optim.Adam(model.parameters(), lr=2e-3))
        ids = torch.randint(0, V, (B, T))
        targets = torch.randint(0, V, (B, T))
        t = median_step_seconds(train_step(model, opt, ids, targets, V), budget)
        params = sum(p.numel() for p in model.parameters())
        print(f"{title:<48s} {B * T / t:9.0f} {t * 1e3:8.2f} {'-':>16s} {params:8d}", flush=True)


def median_call_seconds(fn, budget, min_reps=7, max_reps=400):
    for _ in range(3):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def norms(budget):
    nn = torch.nn
    conv = [(2, 32, 32, 32), (8, 32, 32, 32), (32, 32, 32, 32), (128, 64, 16, 16), (128, 16, 28, 28)]
    tokens = [(64 * 128, 256), (8 * 64, 512), (512 * 64, 768)]
    rows = []
    for s in conv:
        rows += [("BatchNorm2d", "bn", s, lambda s: nn.BatchNorm2d(s[1])),
                 ("GroupNorm(8)", "gn", s, lambda s: nn.GroupNorm(8, s[1])),
                 ("InstanceNorm2d(affine)", "in", s, lambda s: nn.InstanceNorm2d(s[1], affine=True)),
                 ("LayerNorm(C,H,W)", "ln", s, lambda s: nn.LayerNorm(list(s[1:])))]
    for s in tokens:
        rows += [("LayerNorm(D)", "ln", s, lambda s: nn.LayerNorm(s[1])),
                 ("RMSNorm(D) [composite]", "rms", s, lambda s: torch_models.RMSNorm(s[1])),
                 ("BatchNorm1d(D)", "bn", s, lambda s: nn.BatchNorm1d(s[1]))]
    print(f"{'layer':24s} {'shape':18s} {'norm':11s} {'fwd us':>10s} {'f+b us':>10s} {'f+b GB/s':>9s}")
    for layer, norm, shape, make in rows:
        torch.manual_seed(0)
        m = make(shape).train()
        with torch.no_grad():
            for p in m.parameters():
                p.uniform_(0.5, 1.5)
        x = torch.randn(shape, requires_grad=True)
        dy = torch.randn(shape)

        def fwd():
            with torch.no_grad():
                m(x)

        def fwd_bwd():
            x.grad = None
            m.zero_grad(set_to_none=True)
            m(x).backward(dy)

        t_f, t_fb = median_call_seconds(fwd, budget), median_call_seconds(fwd_bwd, budget)
        text = "x".join(str(d) for d in shape)
        print(f"{layer:24s} {text:18s} {norm:11s} {t_f * 1e6:10.1f} {t_fb * 1e6:10.1f} "
              f"{5 * x.numel() * 4 / t_fb / 1e9:9.2f}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("suite", choices=["images", "lm", "norms"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget", type=float, default=0.5)
    p.add_argument("--only", default="mnist,cifar", help="images: models (mnist, cifar, resnet20)")
    p.add_argument("--norms", default="none,bn,gn,in,ln", help="images: norms")
    p.add_argument("--batches", default="2,8,32,128", help="images: batch sizes")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)  # as normlab runs (README, "Threads"): PyTorch at its best
    print(f"# torch {torch.__version__}, {a.threads} thread(s), budget {a.budget}s", flush=True)
    if a.suite == "images":
        images(a.budget, a.only.split(","), a.norms.split(","), [int(b) for b in a.batches.split(",")])
    else:
        {"lm": lm, "norms": norms}[a.suite](a.budget)


if __name__ == "__main__":
    main()
