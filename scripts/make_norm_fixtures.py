#!/usr/bin/python3
"""PyTorch fixtures for normlab's non-batch norm layers (tests/test_norm_layers.cpp).

Run with Debian's torch:  /usr/bin/python3 scripts/make_norm_fixtures.py
Writes tests/fixtures/norm/<layer>.safetensors (BatchNorm-family files bn_* are written by
scripts/make_norm_fixtures_bn.py). Tests never need torch.

Each file holds cases; case "c" stores float32 tensors "c.x", "c.dout" (inputs), the layer's
parameters "c.weight", "c.bias", ... (set to non-trivial values), and the results "c.out",
"c.grad_x", "c.grad_<param>", plus running statistics where the layer has them. The case's
settings are a JSON string in the metadata under "c". Results are computed in float64
from the float32 inputs (module.double()), so they are the exact answer for those inputs.

Layers: nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d/2d (incl. track_running_stats),
torch.nn.utils.weight_norm on nn.Linear/nn.Conv2d; torch 1.13 has no RMSNorm, FRN,
Weight Standardization or EvoNorm, so those are composites of torch primitives, written
from the papers' formulas (see the matching layers/norm/*.hpp).
"""
import json
import os
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import save_safetensors  # noqa: E402  (the one safetensors writer)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "norm")


class Fixture:
    def __init__(self, name):
        self.name = name
        self.tensors = {}
        self.meta = {"_generator": f"scripts/make_norm_fixtures.py with torch {torch.__version__}, float64 reference"}
        self.gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))

    def randn(self, *shape, scale=1.0, shift=0.0):
        return (torch.randn(shape, generator=self.gen) * scale + shift).float()

    def rand(self, *shape, lo=0.0, hi=1.0):
        return (torch.rand(shape, generator=self.gen) * (hi - lo) + lo).float()

    def put(self, case, role, t):
        self.tensors[f"{case}.{role}"] = t.detach().float()

    def run(self, case, fn, x, params, settings):
        """fn(x64, params64) -> out; params: dict name -> float32 tensor (set on the layer)."""
        assert case not in self.meta
        self.put(case, "x", x)
        for k, v in params.items():
            self.put(case, k, v)
        x64 = x.double().requires_grad_()
        p64 = {k: v.double().requires_grad_() for k, v in params.items()}
        out = fn(x64, p64)
        dout = self.randn(*out.shape)
        out.backward(dout.double())
        self.put(case, "dout", dout)
        self.put(case, "out", out)
        self.put(case, "grad_x", x64.grad)
        for k, v in p64.items():
            self.put(case, f"grad_{k}", v.grad)
        self.meta[case] = json.dumps(settings, sort_keys=True)

    def write(self):
        os.makedirs(OUT_DIR, exist_ok=True)
        path = os.path.join(OUT_DIR, f"{self.name}.safetensors")
        save_safetensors(path, self.tensors, self.meta)
        print(path, len(self.tensors), "tensors")


def layer_norm():
    f = Fixture("layer_norm")
    cases = [("tokens", (4, 5, 16), [16], True, 1.0, 0.0),
             ("image", (2, 3, 4, 5), [3, 4, 5], True, 1.0, 0.0),
             ("no_affine", (6, 10), [10], False, 2.0, 0.5),
             ("batch1", (1, 7), [7], True, 1.0, 0.0),
             ("mean1e4", (3, 64), [64], True, 1.0, 1e4)]
    for name, shape, ns, affine, scale, shift in cases:
        x = f.randn(*shape, scale=scale, shift=shift)
        params = {"weight": f.randn(*ns, scale=0.5, shift=1.0), "bias": f.randn(*ns, scale=0.5)} if affine else {}
        f.run(name, lambda x, p: F.layer_norm(x, ns, p.get("weight"), p.get("bias"), 1e-5), x, params,
              {"normalized_shape": ns, "affine": affine, "eps": 1e-5})
    f.write()


def group_norm():
    f = Fixture("group_norm")
    cases = [("g3", (2, 6, 4, 4), 3, 1.0, 0.0), ("g2_1d", (3, 8, 5), 2, 1.0, 0.0), ("g1", (2, 4, 3, 3), 1, 1.0, 0.0),
             ("gC", (2, 4, 3, 3), 4, 1.0, 0.0), ("batch1", (1, 4, 3, 3), 2, 1.0, 0.0),
             ("mean1e4", (2, 4, 8, 8), 2, 1.0, 1e4)]
    for name, shape, g, scale, shift in cases:
        c = shape[1]
        x = f.randn(*shape, scale=scale, shift=shift)
        params = {"weight": f.randn(c, scale=0.5, shift=1.0), "bias": f.randn(c, scale=0.5)}
        f.run(name, lambda x, p: F.group_norm(x, g, p["weight"], p["bias"], 1e-5), x, params,
              {"groups": g, "eps": 1e-5})
    f.write()


def instance_norm():
    f = Fixture("instance_norm")
    # Training-mode outputs with and without affine (running stats off: PyTorch's default).
    for name, shape, affine in [("in2d_affine", (2, 3, 4, 5), True), ("in1d", (3, 4, 7), False),
                                ("in2d_batch1", (1, 3, 4, 4), True)]:
        c = shape[1]
        x = f.randn(*shape)
        params = {"weight": f.randn(c, scale=0.5, shift=1.0), "bias": f.randn(c, scale=0.5)} if affine else {}
        f.run(name, lambda x, p: F.instance_norm(x, weight=p.get("weight"), bias=p.get("bias"), eps=1e-5), x,
              params, {"affine": affine, "dims": len(shape) - 2, "eps": 1e-5})
    # track_running_stats: two training steps with nn.InstanceNorm2d, then eval on a third input.
    c = 3
    layer = nn.InstanceNorm2d(c, affine=True, track_running_stats=True, momentum=0.1).double()
    w, b = f.randn(c, scale=0.5, shift=1.0), f.randn(c, scale=0.5)
    with torch.no_grad():
        layer.weight.copy_(w.double())
        layer.bias.copy_(b.double())
    case = "running"
    f.put(case, "weight", w)
    f.put(case, "bias", b)
    layer.train()
    for step in range(2):
        xs = f.randn(4, c, 5, 5, scale=2.0, shift=1.0)
        f.put(case, f"x_step{step}", xs)
        layer(xs.double())
    f.put(case, "running_mean", layer.running_mean)
    f.put(case, "running_var", layer.running_var)
    layer.eval()
    x = f.randn(2, c, 5, 5, scale=2.0, shift=1.0)
    x64 = x.double().requires_grad_()
    out = layer(x64)
    dout = f.randn(*out.shape)
    out.backward(dout.double())
    for role, t in [("x", x), ("dout", dout), ("out", out), ("grad_x", x64.grad), ("grad_weight", layer.weight.grad),
                    ("grad_bias", layer.bias.grad)]:
        f.put(case, role, t)
    f.meta[case] = json.dumps({"affine": True, "dims": 2, "eps": 1e-5, "momentum": 0.1, "steps": 2})
    f.write()


def rms_norm():
    f = Fixture("rms_norm")
    for name, shape, ns in [("tokens", (4, 5, 16), [16]), ("image", (2, 3, 4, 4), [3, 4, 4]), ("batch1", (1, 9), [9])]:
        x = f.randn(*shape)
        params = {"weight": f.randn(*ns, scale=0.5, shift=1.0)}
        dims = tuple(range(-len(ns), 0))
        f.run(name, lambda x, p: x * torch.rsqrt(x.pow(2).mean(dims, keepdim=True) + 1e-5) * p["weight"], x, params,
              {"normalized_shape": ns, "eps": 1e-5})
    f.write()


def weight_norm():
    f = Fixture("weight_norm")
    # torch.nn.utils.weight_norm(layer, dim=0): parameters weight_g [out, 1, ...], weight_v.
    lin = nn.Linear(5, 4).double()
    wn = torch.nn.utils.weight_norm(lin, dim=0)
    params = {"weight_g": f.randn(4, 1, scale=0.3, shift=1.0), "weight_v": f.randn(4, 5), "bias": f.randn(4)}

    def run_linear(x, p):
        with torch.no_grad():
            for k in p:
                getattr(wn, k).copy_(p[k])
        return wn(x)

    # The gradients are taken through torch._weight_norm on p's leaves (what the module calls),
    # after checking that it gives the weight_norm-wrapped module's output.
    def linear_fn(x, p):
        w = torch._weight_norm(p["weight_v"], p["weight_g"], 0)
        out = F.linear(x, w, p["bias"])
        assert torch.allclose(out, run_linear(x.detach(), {k: v.detach() for k, v in p.items()}))
        return out

    f.run("linear", linear_fn, f.randn(3, 5), params, {"in": 5, "out": 4})
    conv = nn.Conv2d(3, 4, 3, padding=1).double()
    cwn = torch.nn.utils.weight_norm(conv, dim=0)
    params = {"weight_g": f.randn(4, 1, 1, 1, scale=0.3, shift=1.0), "weight_v": f.randn(4, 3, 3, 3),
              "bias": f.randn(4)}

    def conv_fn(x, p):
        w = torch._weight_norm(p["weight_v"], p["weight_g"], 0)
        out = F.conv2d(x, w, p["bias"], padding=1)
        with torch.no_grad():
            for k in p:
                getattr(cwn, k).copy_(p[k])
            assert torch.allclose(out, cwn(x))
        return out

    f.run("conv", conv_fn, f.randn(2, 3, 5, 5), params, {"in": 3, "out": 4, "kernel": 3, "pad": 1})
    f.write()


def weight_std():
    f = Fixture("weight_std")

    def fn(x, p):
        w = p["weight"]
        d = w - w.mean(dim=(1, 2, 3), keepdim=True)
        w_hat = d / torch.sqrt(d.pow(2).mean(dim=(1, 2, 3), keepdim=True) + 1e-5)  # biased var, eps inside
        return F.conv2d(x, w_hat, p["bias"], padding=1)

    params = {"weight": f.randn(4, 3, 3, 3, scale=0.2, shift=0.05), "bias": f.randn(4)}
    f.run("conv", fn, f.randn(2, 3, 6, 6), params, {"in": 3, "out": 4, "kernel": 3, "pad": 1, "eps": 1e-5})
    f.write()


def frn():
    f = Fixture("frn")

    def fn(x, p):
        c = (1, -1, 1, 1)
        nu2 = x.pow(2).mean(dim=(2, 3), keepdim=True)
        y = p["weight"].view(c) * x * torch.rsqrt(nu2 + 1e-6) + p["bias"].view(c)
        return torch.max(y, p["tau"].view(c))

    for name, shape in [("frn", (2, 3, 4, 4)), ("batch1", (1, 4, 3, 5))]:
        c = shape[1]
        params = {"weight": f.randn(c, scale=0.5, shift=1.0), "bias": f.randn(c, scale=0.5),
                  "tau": f.randn(c, scale=0.5)}
        f.run(name, fn, f.randn(*shape), params, {"eps": 1e-6})
    f.write()


def evonorm():
    f = Fixture("evonorm")
    eps = 1e-5

    def s0(groups):
        def fn(x, p):
            n, c, h, w = x.shape
            c4 = (1, -1, 1, 1)
            xg = x.reshape(n, groups, -1)
            std = torch.sqrt(xg.var(dim=2, unbiased=False, keepdim=True) + eps)
            std = std.expand(n, groups, xg.shape[2]).reshape(x.shape)
            return x * torch.sigmoid(p["v"].view(c4) * x) / std * p["weight"].view(c4) + p["bias"].view(c4)
        return fn

    c = 4
    params = {"weight": f.randn(c, scale=0.5, shift=1.0), "bias": f.randn(c, scale=0.5), "v": f.randn(c, scale=0.5, shift=1.0)}
    f.run("s0", s0(2), f.randn(2, c, 3, 3), params, {"groups": 2, "eps": eps})

    # B0, training mode: batch variance over (N, H, W); running_var updated with the unbiased one.
    def b0(x, p):
        c4 = (1, -1, 1, 1)
        batch_var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        inst_std = torch.sqrt(x.var(dim=(2, 3), unbiased=False, keepdim=True) + eps)
        den = torch.max(torch.sqrt(batch_var + eps), p["v"].view(c4) * x + inst_std)
        return x / den * p["weight"].view(c4) + p["bias"].view(c4)

    params = {"weight": f.randn(c, scale=0.5, shift=1.0), "bias": f.randn(c, scale=0.5), "v": f.randn(c, scale=0.5, shift=1.0)}
    x = f.randn(3, c, 4, 4, scale=1.5, shift=0.5)
    f.run("b0_train", b0, x, params, {"eps": eps, "momentum": 0.1})
    m = 3 * 4 * 4
    rv = 0.9 * torch.ones(c, dtype=torch.float64) + 0.1 * x.double().var(dim=(0, 2, 3), unbiased=False) * m / (m - 1)
    f.put("b0_train", "running_var", rv)
    f.write()


if __name__ == "__main__":
    torch.manual_seed(0)
    layer_norm()
    group_norm()
    instance_norm()
    rms_norm()
    weight_norm()
    weight_std()
    frn()
    evonorm()
