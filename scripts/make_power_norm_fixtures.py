#!/usr/bin/python3
"""PyTorch fixture for normlab's PowerNorm (tests/test_power_norm.cpp).

Run with Debian's torch:  /usr/bin/python3 scripts/make_power_norm_fixtures.py
Writes tests/fixtures/norm/power_norm.safetensors. Tests never need torch.

torch has no PowerNorm. The official one (Shen et al. 2020, github.com/sIncerass/powernorm,
fairseq/modules/norms/mask_powernorm.py: MaskPowerNorm, PowerFunction, GroupScaling1D) is
plain PyTorch with a hand-written backward; this script restates its algorithm without the
padding mask (layers/norm/power_norm.hpp gives the formulas): GroupScaling1D by autograd, the
power function as an autograd.Function whose backward is the official approximate one, and
the buffers running_phi, ema_gz and the step counter updated in the official order. Run in
float64 from float32 inputs for `steps` training steps (across the end of warm-up) and one
eval step; after each step the file holds out, grad_x, grad_weight, grad_bias, running_phi,
ema_gz. Layout as the official forward: x is [T, B, C] (normlab reads it as T*B rows).
"""
import json

import torch

from make_norm_fixtures import Fixture


class State:
    def __init__(self, c, warmup, alpha_fwd, alpha_bkw, eps):
        self.running_phi = torch.ones(c, dtype=torch.float64)
        self.ema_gz = torch.zeros(c, dtype=torch.float64)
        self.iters = 0
        self.warmup, self.alpha_fwd, self.alpha_bkw, self.eps = warmup, alpha_fwd, alpha_bkw, eps


def group_scaling(x, groups, eps):
    """x [T, B, C]: each token's features divided by the root mean square of its group."""
    t, b, c = x.shape
    xg = x.reshape(t, b, groups, c // groups)
    second_moment = (xg * xg).mean(dim=3, keepdim=True)
    return (xg / torch.sqrt(second_moment + eps)).reshape(t, b, c)


class Power(torch.autograd.Function):
    """s [R, C] -> y; forward and the official approximate backward, buffers updated in place."""

    @staticmethod
    def forward(ctx, s, weight, bias, st):
        t = st.iters
        qm = (s * s).mean(dim=0)  # the batch's quadratic mean per feature
        phi = qm if t <= st.warmup else st.running_phi.clone()
        z = s / torch.sqrt(phi + st.eps)
        ctx.save_for_backward(z, qm, weight)
        ctx.st = st
        if t < st.warmup:
            st.running_phi.copy_(st.running_phi * (t - 1) / t + qm / t)
        st.running_phi.copy_(st.alpha_fwd * st.running_phi + (1 - st.alpha_fwd) * qm)
        return z * weight + bias

    @staticmethod
    def backward(ctx, grad_out):
        z, qm, weight = ctx.saved_tensors
        st = ctx.st
        g = grad_out * weight
        g_tilde = g - (1 - st.alpha_bkw) * st.ema_gz * z
        st.ema_gz.add_((g_tilde * z).mean(dim=0))
        grad_s = g_tilde / torch.sqrt(qm + st.eps)  # the batch's scale, in every step
        return grad_s, (grad_out * z).sum(dim=0), grad_out.sum(dim=0), None


def power_norm(x, weight, bias, st, groups, training):
    t, b, c = x.shape
    s = group_scaling(x, groups, st.eps).reshape(t * b, c)
    if training:
        st.iters += 1
        y = Power.apply(s, weight, bias, st)
    else:
        y = s / torch.sqrt(st.running_phi + st.eps) * weight + bias
    return y.reshape(t, b, c)


def main():
    f = Fixture("power_norm")
    f.meta["_generator"] += " (scripts/make_power_norm_fixtures.py: the official algorithm restated)"
    cases = [("g1", 16, 1, 2, 0.9, 0.9), ("g4", 24, 4, 3, 0.8, 0.7)]
    for name, c, groups, warmup, afwd, abkw in cases:
        steps, eps = warmup + 2, 1e-5
        st = State(c, warmup, afwd, abkw, eps)
        w, b = f.randn(c, scale=0.3, shift=1.0), f.randn(c, scale=0.3)
        f.put(name, "weight", w)
        f.put(name, "bias", b)
        w64, b64 = w.double().requires_grad_(), b.double().requires_grad_()
        for t in range(1, steps + 2):  # the last step in eval
            k = f"{name}.step{t}"
            x = f.randn(5, 3, c, scale=1.5, shift=0.3)  # [T, B, C]
            dout = f.randn(5, 3, c)
            x64 = x.double().requires_grad_()
            w64.grad, b64.grad = None, None
            out = power_norm(x64, w64, b64, st, groups, training=t <= steps)
            out.backward(dout.double())
            for role, v in [("x", x), ("dout", dout), ("out", out), ("grad_x", x64.grad), ("grad_weight", w64.grad),
                            ("grad_bias", b64.grad), ("running_phi", st.running_phi), ("ema_gz", st.ema_gz)]:
                f.tensors[f"{k}.{role}"] = v.detach().float().clone()
        f.meta[name] = json.dumps({"features": c, "groups": groups, "warmup": warmup, "alpha_fwd": afwd,
                                   "alpha_bkw": abkw, "eps": eps, "steps": steps}, sort_keys=True)
    f.write()


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
