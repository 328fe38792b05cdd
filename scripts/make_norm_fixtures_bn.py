#!/usr/bin/python3
"""PyTorch fixtures for the BatchNorm family (tests/test_norm_batch.cpp).

Run with Debian's torch 1.13:  /usr/bin/python3 scripts/make_norm_fixtures_bn.py
Writes tests/fixtures/norm/bn_<layer>.safetensors (pure-Python safetensors writer, F32).

Each case: step 1 trains on x with gradients (out, grad_x, grad_weight, grad_bias for
dout); steps 2 and 3 train on x2, x3; then running_mean / running_var (and
num_batches_tracked) are stored, and eval_out = layer in eval mode on x.
BatchNorm uses torch.nn.BatchNorm1d/2d; mean-only BN, batch renorm and ghost BN are
composites of torch primitives written from the papers' formulas.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import save_safetensors  # noqa: E402  (the one safetensors writer)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "norm")


save = save_safetensors


def reduce_dims(x):
    return [0] + list(range(2, x.dim()))


def cshape(x):
    return [1, x.shape[1]] + [1] * (x.dim() - 2)


class Composite:
    """Training-mode composite with PyTorch's running-statistics conventions."""

    def __init__(self, kind, C, momentum, eps, **kw):
        self.kind, self.momentum, self.eps, self.kw = kind, momentum, eps, kw
        self.weight = torch.randn(C) * 0.5 + 1.0
        self.bias = torch.randn(C) * 0.5
        self.running_mean = torch.zeros(C)
        self.running_var = torch.ones(C)
        self.count = 0

    def update(self, mean, var_unbiased):
        self.count += 1
        f = self.momentum if self.momentum >= 0 else 1.0 / self.count
        self.running_mean = (1 - f) * self.running_mean + f * mean.detach()
        if var_unbiased is not None:
            self.running_var = (1 - f) * self.running_var + f * var_unbiased.detach()

    def bn(self, x, w, b, update=True):
        dims = reduce_dims(x)
        M = x.numel() // x.shape[1]
        mean = x.mean(dims, keepdim=True)
        var = x.var(dims, unbiased=False, keepdim=True)
        if update:
            self.update(mean.flatten(), var.flatten() * M / (M - 1))
        return (x - mean) / torch.sqrt(var + self.eps) * w.view(cshape(x)) + b.view(cshape(x)), mean, var

    def train_forward(self, x, w, b):
        cs = cshape(x)
        if self.kind == "mobn":
            mean = x.mean(reduce_dims(x), keepdim=True)
            self.update(mean.flatten(), None)
            return x - mean + b.view(cs)
        if self.kind == "brn":
            dims = reduce_dims(x)
            M = x.numel() // x.shape[1]
            mean = x.mean(dims, keepdim=True)
            var = x.var(dims, unbiased=False, keepdim=True)
            W = self.kw["warmup"]
            frac = 1.0 if W == 0 else min(1.0, self.count / W)
            r_max = 1 + (self.kw["r_max"] - 1) * frac
            d_max = self.kw["d_max"] * frac
            sigma_run = torch.sqrt(self.running_var.view(cs) + self.eps)
            r = torch.clamp(torch.sqrt(var.detach() + self.eps) / sigma_run, 1 / r_max, r_max)
            d = torch.clamp((mean.detach() - self.running_mean.view(cs)) / sigma_run, -d_max, d_max)
            self.update(mean.flatten(), var.flatten() * M / (M - 1))
            xhat = (x - mean) / torch.sqrt(var + self.eps)
            return (xhat * r + d) * w.view(cs) + b.view(cs)
        if self.kind == "gbn":
            g, N = self.kw["ghost"], x.shape[0]
            bounds = list(range(0, N, g))
            if len(bounds) > 1 and N - bounds[-1] == 1:
                bounds.pop()
            bounds.append(N)
            outs = [self.bn(x[bounds[k]:bounds[k + 1]], w, b)[0] for k in range(len(bounds) - 1)]
            return torch.cat(outs, 0)
        raise ValueError(self.kind)

    def eval_forward(self, x, w, b):
        cs = cshape(x)
        if self.kind == "mobn":
            return x - self.running_mean.view(cs) + b.view(cs)
        return (x - self.running_mean.view(cs)) / torch.sqrt(self.running_var.view(cs) + self.eps) * w.view(cs) + b.view(cs)


def make_case(kind, shape, momentum, eps=1e-5, **kw):
    C = shape[1]
    x = torch.randn(shape) * 2.0 + 0.5
    x2 = torch.randn(shape) * 0.7 - 1.0
    x3 = torch.randn(shape) * 1.3 + 2.0
    dout = torch.randn(shape)
    if kind == "bn":
        cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
        m = cls(C, eps=eps, momentum=None if momentum < 0 else momentum)
        with torch.no_grad():
            m.weight.copy_(torch.randn(C) * 0.5 + 1.0)
            m.bias.copy_(torch.randn(C) * 0.5)
        w0, b0 = m.weight.detach().clone(), m.bias.detach().clone()
        xg = x.clone().requires_grad_(True)
        out = m(xg)
        out.backward(dout)
        gx, gw, gb = xg.grad, m.weight.grad, m.bias.grad
        with torch.no_grad():
            m(x2)
            m(x3)
        m.eval()
        with torch.no_grad():
            ev = m(x)
        rm, rv, nbt = m.running_mean, m.running_var, float(m.num_batches_tracked)
    else:
        m = Composite(kind, C, momentum, eps, **kw)
        w = m.weight.clone().requires_grad_(True)
        b = m.bias.clone().requires_grad_(True)
        w0, b0 = m.weight.clone(), m.bias.clone()
        xg = x.clone().requires_grad_(True)
        out = m.train_forward(xg, w, b)
        out.backward(dout)
        gx, gw, gb = xg.grad, w.grad, b.grad
        with torch.no_grad():
            m.train_forward(x2, w, b)
            m.train_forward(x3, w, b)
            ev = m.eval_forward(x, w, b)
        rm, rv, nbt = m.running_mean, m.running_var, float(m.count)
    t = {"x": x, "x2": x2, "x3": x3, "dout": dout, "weight": w0, "bias": b0, "out": out, "grad_x": gx,
         "grad_weight": gw, "grad_bias": gb, "running_mean": rm, "running_var": rv, "eval_out": ev}
    if kind == "mobn":  # no gamma, no running variance
        for k in ("weight", "grad_weight", "running_var"):
            del t[k]
    params = {"kind": kind, "shape": list(shape), "momentum": momentum, "eps": eps,
              "num_batches_tracked": nbt, **kw}
    return t, params


def write(filename, cases):
    tensors, meta = {}, {"_generator": "scripts/make_norm_fixtures_bn.py, torch " + torch.__version__}
    for name, (t, p) in cases.items():
        for k, v in t.items():
            tensors[name + "." + k] = v
        meta[name] = json.dumps(p)
    save(os.path.join(OUT, filename), tensors, meta)
    print("wrote", filename, len(tensors), "tensors")


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    write("bn_batchnorm.safetensors", {
        "bn2d": make_case("bn", (4, 3, 5, 6), 0.1),
        "bn2d_batch1": make_case("bn", (1, 3, 4, 4), 0.1),
        "bn1d_ncl": make_case("bn", (5, 4, 7), 0.1),
        "bn1d_nc_cumulative": make_case("bn", (8, 6), -1.0),
    })
    write("bn_mean_only.safetensors", {
        "mobn2d": make_case("mobn", (4, 3, 5, 6), 0.1),
        "mobn1d_nc": make_case("mobn", (8, 6), -1.0),
    })
    write("bn_renorm.safetensors", {
        "brn2d_clipped": make_case("brn", (4, 3, 5, 6), 0.1, r_max=1.5, d_max=0.5, warmup=0),
        "brn2d_warmup": make_case("brn", (4, 3, 5, 6), 0.3, r_max=3.0, d_max=5.0, warmup=2),
        "brn1d_nc": make_case("brn", (8, 6), 0.1, r_max=2.0, d_max=1.0, warmup=0),
    })
    write("bn_ghost.safetensors", {
        "gbn2d_ghost3_n8": make_case("gbn", (8, 3, 4, 5), 0.1, ghost=3),
        "gbn2d_ghost3_n7_merge": make_case("gbn", (7, 3, 4, 5), 0.1, ghost=3),
        "gbn1d_nc_ghost4": make_case("gbn", (10, 5), -1.0, ghost=4),
    })


if __name__ == "__main__":
    main()
