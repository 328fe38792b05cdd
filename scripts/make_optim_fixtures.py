#!/usr/bin/python3
"""PyTorch reference trajectories for normlab's optimizers (optim/optimizer.hpp).

Run:  /usr/bin/python3 scripts/make_optim_fixtures.py   -> tests/fixtures/optim/optimizers.safetensors

Each case applies 5 steps of one torch.optim optimizer to two parameters (a [3,4] matrix
and a [4] vector: two param groups when the case excludes the vector from weight decay)
with fixed, pre-drawn gradients, and stores
    c.p0, c.p1            initial parameters
    c.g<k>_0, c.g<k>_1    the gradient given at step k (k = 0..4)
    c.after<k>_0/_1       the parameters after step k
and in the metadata the optimizer and its options as JSON.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import save_safetensors  # noqa: E402  (same hand-written writer)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "optim", "optimizers.safetensors")
STEPS = 5

CASES = {
    "sgd_plain": ("sgd", {"lr": 0.1}),
    "sgd_momentum": ("sgd", {"lr": 0.05, "momentum": 0.9}),
    "sgd_nesterov_wd": ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    "sgd_wd_vector_excluded": ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, "exclude_vector": True}),
    "adam": ("adam", {"lr": 0.01}),
    "adam_wd": ("adam", {"lr": 0.01, "weight_decay": 0.1, "betas": [0.8, 0.95], "eps": 1e-6}),
    "adamw": ("adamw", {"lr": 0.01, "weight_decay": 0.1}),
}


def main():
    tensors, meta = {}, {"_generator": "scripts/make_optim_fixtures.py (torch %s)" % torch.__version__}
    gen = torch.Generator().manual_seed(2024)
    for name, (kind, opts) in CASES.items():
        p0 = torch.randn(3, 4, generator=gen)
        p1 = torch.randn(4, generator=gen)
        grads = [(torch.randn(3, 4, generator=gen), torch.randn(4, generator=gen)) for _ in range(STEPS)]
        a = p0.clone().requires_grad_()
        b = p1.clone().requires_grad_()
        o = dict(opts)
        exclude = o.pop("exclude_vector", False)
        wd = o.pop("weight_decay", 0.0)
        groups = [{"params": [a], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0 if exclude else wd}]
        if "betas" in o:
            o["betas"] = tuple(o["betas"])
        opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind](groups, **o)
        tensors[f"{name}.p0"], tensors[f"{name}.p1"] = p0, p1
        for k, (g0, g1) in enumerate(grads):
            a.grad, b.grad = g0.clone(), g1.clone()
            opt.step()
            tensors[f"{name}.g{k}_0"], tensors[f"{name}.g{k}_1"] = g0, g1
            tensors[f"{name}.after{k}_0"], tensors[f"{name}.after{k}_1"] = a.detach().clone(), b.detach().clone()
        meta[name] = json.dumps({"optimizer": kind, "steps": STEPS, "weight_decay": wd, "exclude_vector": exclude, **opts})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_safetensors(OUT, tensors, meta)
    print(f"wrote {OUT}: {len(CASES)} cases")


if __name__ == "__main__":
    main()
