#!/usr/bin/python3
"""PyTorch reference fixtures for normlab's LSTM, GRU, causal self-attention and pre-LN
Transformer block (tests/test_layers.cpp compares outputs and every gradient).

Run from anywhere:   /usr/bin/python3 scripts/make_layer_fixtures.py
Writes tests/fixtures/layers/{lstm,gru,attention,block}.safetensors with the conventions of
scripts/make_fixtures.py (whose hand-written safetensors writer it reuses): for a case "c",
    c.x, c.out, c.dout, c.grad_x       input, output, upstream gradient, input gradient
    c.<param>, c.grad_<param>          every parameter under normlab's name, and its gradient
and metadata "c" -> JSON with the sizes. Inputs and parameters are float32 values; the
reference runs in float64 on those exact values (nn.LSTM / nn.GRU; the attention and the
block are layers/transformer.hpp's pre-norm Block, as in scripts/torch_models.py).
"""
import importlib.util
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "layers")
_spec = importlib.util.spec_from_file_location("make_fixtures", os.path.join(ROOT, "scripts", "make_fixtures.py"))
_mf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mf)
save_safetensors = _mf.save_safetensors


def f32(t):
    """The float32 value of each element, held in float64 for the reference computation."""
    return t.to(torch.float32).to(torch.float64)


def run_case(tensors, meta, name, module, params, x, forward, params_meta):
    """params: dict normlab_name -> torch parameter of `module` (already float64)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(f32(p))
    x = f32(x).requires_grad_(True)
    out = forward(x)
    dout = f32(torch.randn(out.shape, dtype=torch.float64))
    (out * dout).sum().backward()
    tensors[f"{name}.x"] = x
    for k, p in params.items():
        tensors[f"{name}.{k}"] = p
    tensors[f"{name}.out"] = out
    tensors[f"{name}.dout"] = dout
    tensors[f"{name}.grad_x"] = x.grad
    for k, p in params.items():
        tensors[f"{name}.grad_{k}"] = p.grad
    meta[name] = json.dumps(params_meta, sort_keys=True)


def recurrent(kind):
    tensors, meta = {}, {}
    for i, (B, T, D, H) in enumerate([(2, 5, 3, 4), (3, 1, 4, 6), (1, 7, 2, 3)]):
        cls = nn.LSTM if kind == "lstm" else nn.GRU
        m = cls(D, H, num_layers=1, batch_first=True).double()
        params = {"weight_ih": m.weight_ih_l0, "weight_hh": m.weight_hh_l0, "bias_ih": m.bias_ih_l0,
                  "bias_hh": m.bias_hh_l0}
        run_case(tensors, meta, f"case{i}", m, params, torch.randn(B, T, D, dtype=torch.float64),
                 lambda x: m(x)[0], {"B": B, "T": T, "D": D, "H": H})
    meta["_generator"] = f"scripts/make_layer_fixtures.py, torch {torch.__version__}, nn.{kind.upper()}"
    save_safetensors(os.path.join(OUT_DIR, f"{kind}.safetensors"), tensors, meta)


class Block(nn.Module):
    """The reference benchmark's pre-norm Block (LayerNorm), with attention() split out."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def attention(self, x):
        b, t, d = x.shape
        hd = d // self.heads
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.view(b, t, self.heads, hd).transpose(1, 2)
        k = k.view(b, t, self.heads, hd).transpose(1, 2)
        v = v.view(b, t, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (hd ** -0.5)
        att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(y)

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


def attention_and_block():
    for what in ["attention", "block"]:
        tensors, meta = {}, {}
        for i, (B, T, D, heads) in enumerate([(2, 5, 8, 2), (1, 6, 12, 3), (3, 4, 8, 1)]):
            m = Block(D, heads).double()
            with torch.no_grad():  # non-trivial LayerNorm affine parameters
                for norm in (m.norm1, m.norm2):
                    norm.weight.copy_(1 + 0.3 * torch.randn(D, dtype=torch.float64))
                    norm.bias.copy_(0.2 * torch.randn(D, dtype=torch.float64))
            attn = {"qkv.weight": m.qkv.weight, "qkv.bias": m.qkv.bias, "proj.weight": m.proj.weight,
                    "proj.bias": m.proj.bias}
            if what == "attention":
                params, fwd = attn, m.attention
            else:
                params = {"norm1.weight": m.norm1.weight, "norm1.bias": m.norm1.bias,
                          **{"attn." + k: v for k, v in attn.items()},
                          "norm2.weight": m.norm2.weight, "norm2.bias": m.norm2.bias,
                          "fc1.weight": m.fc1.weight, "fc1.bias": m.fc1.bias,
                          "fc2.weight": m.fc2.weight, "fc2.bias": m.fc2.bias}
                fwd = m
            run_case(tensors, meta, f"case{i}", m, params, torch.randn(B, T, D, dtype=torch.float64), fwd,
                     {"B": B, "T": T, "D": D, "heads": heads})
        meta["_generator"] = f"scripts/make_layer_fixtures.py, torch {torch.__version__}, reference Block ({what})"
        save_safetensors(os.path.join(OUT_DIR, f"{what}.safetensors"), tensors, meta)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.manual_seed(20240607)
    recurrent("lstm")
    recurrent("gru")
    attention_and_block()
    for f in sorted(os.listdir(OUT_DIR)):
        print(os.path.join(OUT_DIR, f), os.path.getsize(os.path.join(OUT_DIR, f)), "bytes")


if __name__ == "__main__":
    main()
