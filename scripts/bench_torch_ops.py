#!/usr/bin/python3
"""PyTorch side of `normlab_bench conv` (bench/bench_matmul_conv.cpp): conv2d forward and
forward+backward milliseconds on the conv layers of the reference MNIST/CIFAR CNNs
(scripts/torch_models.py cnn: 3x3, padding 1, bias) at batch 2, 8, 32, 128.

Run (OpenBLAS-openmp for torch as scripts/bench_train_vs_torch.sh explains; conv itself goes
through torch's oneDNN), with --normlab to run normlab's bench right afterwards at the same
thread count and print the ratio per row:

  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
    /usr/bin/python3 scripts/bench_torch_ops.py --threads 2 --normlab build/normlab_bench

speedup = torch ms / normlab ms (> 1: normlab is faster). --normlab takes several binaries
(e.g. a build before and after a change): each runs right after torch and gets its own table. Timing is the same as normlab's
bench_util.hpp: one warm-up call, then 3 batches of calls lasting >= 1/60 s (and >= 3
calls) each; the best batch average is reported, since noise on a shared machine only adds time.
"""
import argparse
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

LAYERS = [  # name, cin, cout, hw -- same names as bench/bench_matmul_conv.cpp
    ("mnist1_1-32_28", 1, 32, 28),
    ("mnist2_32-64_14", 32, 64, 14),
    ("cifar1_3-32_32", 3, 32, 32),
    ("cifar2_32-64_16", 32, 64, 16),
    ("cifar3_64-128_8", 64, 128, 8),
    ("resnet1_16-16_32", 16, 16, 32),
    ("resnet2_32-32_16", 32, 32, 16),
    ("resnet3_64-64_8", 64, 64, 8),
]


def seconds_per_call(fn, min_seconds=0.05, min_reps=3):
    fn()
    best = float("inf")
    for _ in range(3):
        reps, start = 0, time.perf_counter()
        elapsed = 0.0
        while reps < min_reps or elapsed < min_seconds / 3:
            fn()
            reps += 1
            elapsed = time.perf_counter() - start
        best = min(best, elapsed / reps)
    return best


def torch_rows(batches):
    torch.manual_seed(0)
    rows = {}
    for name, cin, cout, hw in LAYERS:
        for n in batches:
            x = torch.randn(n, cin, hw, hw, requires_grad=cin > 3)  # image layer: no input grad
            w = torch.randn(cout, cin, 3, 3, requires_grad=True)
            b = torch.randn(cout, requires_grad=True)
            gy = torch.randn(n, cout, hw, hw)
            with torch.no_grad():
                t_fwd = seconds_per_call(lambda: F.conv2d(x, w, b, padding=1))

            def both():
                x.grad = w.grad = b.grad = None
                F.conv2d(x, w, b, padding=1).backward(gy)

            t_both = seconds_per_call(both)
            rows[(name, n)] = (t_fwd * 1e3, t_both * 1e3)
            print(f"torch  {name:18s} {n:6d} {t_fwd * 1e3:10.3f} {t_both * 1e3:10.3f}", flush=True)
    return rows


def normlab_rows(binary, batches, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env.pop("LD_LIBRARY_PATH", None)  # normlab links its own OpenBLAS
    out = subprocess.run([binary, "conv"] + [str(b) for b in batches], env=env, check=True, capture_output=True,
                         text=True).stdout
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "conv" and parts[2].isdigit():
            rows[(parts[1], int(parts[2]))] = (float(parts[3]), float(parts[4]))
    return out, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="2,8,32,128")
    ap.add_argument("--normlab", nargs="+", default=[],
                    help="path(s) to normlab_bench; each runs `normlab_bench conv` after torch")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as normlab runs (README, "Threads"): PyTorch at its best
    batches = [int(b) for b in args.batches.split(",")]
    print(f"# torch {torch.__version__}, threads={torch.get_num_threads()}, mkldnn={torch.backends.mkldnn.is_available()}")
    print(f"{'':6s} {'layer':18s} {'batch':>6s} {'fwd_ms':>10s} {'fwdbwd_ms':>10s}")
    t = torch_rows(batches)
    if not args.normlab:
        return
    for binary in args.normlab:
        raw, nl = normlab_rows(binary, batches, args.threads)
        print(f"\n# normlab_bench conv output ({binary})\n" + raw)
        print(f"# {binary}: speedup = torch ms / normlab ms (> 1: normlab faster)")
        print(f"{'layer':18s} {'batch':>6s} {'torch fwd':>10s} {'nl fwd':>10s} {'speedup':>8s}"
              f" {'torch f+b':>10s} {'nl f+b':>10s} {'speedup':>8s}")
        for key, (tf, tb) in t.items():
            if key not in nl:
                print(f"{key[0]:18s} {key[1]:6d}  (missing in normlab output)")
                continue
            nf, nb = nl[key]
            print(f"{key[0]:18s} {key[1]:6d} {tf:10.3f} {nf:10.3f} {tf / nf:8.2f} {tb:10.3f} {nb:10.3f} {tb / nb:8.2f}")

if __name__ == "__main__":
    sys.exit(main())
