"""normlab's benchmark models in PyTorch, written from normlab's own definitions
(layers/models/cnn.cpp and char_lm.cpp, layers/transformer.hpp, layers/attention.hpp), so the
speed comparisons (scripts/bench_torch_train.py) train the same networks on both sides.

  cnn(in_channels, norm):  block(cin->32) block(32->64) [block(64->128) if in_channels > 1]
                           flatten - linear(flat -> 128) - ReLU - linear(128 -> 10)
                           block = conv3x3(pad 1, bias) - NORM - ReLU - maxpool2
                           NORM: none | bn (BatchNorm2d) | gn (GroupNorm, 8 groups) |
                                 in (InstanceNorm2d, affine) | ln (LayerNorm over C, H, W)
  resnet20(norm):          layers/models/resnet.cpp: conv3x3(3->16) - NORM - ReLU, 3 stages x 3 basic
                           blocks (16, 32, 64 channels; stride 2 at the first block of stages 2, 3),
                           option-A shortcuts (subsample + zero channels), global average pool,
                           linear(64 -> 10); convs without bias when a norm follows them.
                           269,722 parameters with bn.
  transformer(norm):       token + learned position embedding (V 65, context 64, d 128),
                           2 pre-norm blocks (4 heads, MLP 4x with GELU), final norm, linear head;
                           norm: ln (LayerNorm) | rms (x / sqrt(mean x^2 + eps) * weight, written
                           out: torch 1.13 has no nn.RMSNorm). 421,697 parameters with ln.
  char_rnn("lstm"|"gru"):  embedding(65 -> 128) - LSTM/GRU(128 -> 256) - linear(256 -> 65);
                           420,289 parameters for the LSTM.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_norm(norm, channels, height, width):
    if norm == "none":
        return nn.Identity()
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    if norm == "gn":
        return nn.GroupNorm(8, channels)
    if norm == "in":
        return nn.InstanceNorm2d(channels, affine=True)
    if norm == "ln":
        return nn.LayerNorm([channels, height, width])
    raise ValueError(f"unknown norm {norm!r} (none, bn, gn, in, ln)")


def cnn(in_channels, norm, size, classes=10):
    """The cnn model of layers/models/cnn.cpp for [in_channels, size, size] images."""
    widths = [32, 64] if in_channels == 1 else [32, 64, 128]
    layers, cin, side = [], in_channels, size
    for cout in widths:
        layers += [nn.Conv2d(cin, cout, 3, padding=1), conv_norm(norm, cout, side, side), nn.ReLU(), nn.MaxPool2d(2)]
        cin, side = cout, side // 2
    layers += [nn.Flatten(), nn.Linear(cin * side * side, 128), nn.ReLU(), nn.Linear(128, classes)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """resnet.cpp's BasicBlock: relu(norm2(conv2(relu(norm1(conv1(x))))) + shortcut(x))."""

    def __init__(self, norm, cin, cout, stride, side):
        super().__init__()
        bias = norm == "none"
        self.cin, self.cout, self.stride = cin, cout, stride
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)
        self.norm1 = conv_norm(norm, cout, side, side)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=bias)
        self.norm2 = conv_norm(norm, cout, side, side)

    def shortcut(self, x):
        if self.stride == 1 and self.cin == self.cout:
            return x
        sub = x[:, :, ::self.stride, ::self.stride] if self.stride != 1 else x
        extra = self.cout - self.cin
        return F.pad(sub, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def forward(self, x):
        y = self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self, norm, in_channels=3, size=32, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=norm == "none")
        self.norm1 = conv_norm(norm, 16, size, size)
        blocks, cin, side = [], 16, size
        for stage, width in enumerate((16, 32, 64)):
            for b in range(3):
                stride = 2 if stage > 0 and b == 0 else 1
                side //= stride
                blocks.append(BasicBlock(norm, cin, width, stride, side))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        y = self.blocks(F.relu(self.norm1(self.conv1(x))))
        return self.fc(y.mean(dim=(2, 3)))


def resnet20(norm, in_channels=3, size=32, classes=10):
    return ResNet20(norm, in_channels, size, classes)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def token_norm(norm, dim):
    if norm == "ln":
        return nn.LayerNorm(dim)
    if norm == "rms":
        return RMSNorm(dim)
    raise ValueError(f"unknown norm {norm!r} (ln, rms)")


class CausalSelfAttention(nn.Module):
    """layers/attention.hpp: one fused qkv projection (rows q, k, v), causal softmax, projection."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        hd = D // self.heads
        q, k, v = self.qkv(x).split(D, dim=2)
        q, k, v = (t.view(B, T, self.heads, hd).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(hd)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = scores.masked_fill(mask, float("-inf")).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, D))


class PreNormBlock(nn.Module):
    """layers/transformer.hpp, pre-LN: x = x + attn(norm1(x)); x = x + mlp(norm2(x))."""

    def __init__(self, dim, heads, norm):
        super().__init__()
        self.norm1, self.norm2 = token_norm(norm, dim), token_norm(norm, dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class CharTransformer(nn.Module):
    def __init__(self, norm, vocab=65, context=64, dim=128, heads=4, layers=2):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(PreNormBlock(dim, heads, norm) for _ in range(layers))
        self.norm = token_norm(norm, dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids):  # [B, T] -> [B, T, vocab]
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


class CharRNN(nn.Module):
    def __init__(self, kind, vocab=65, embed=128, hidden=256):
        super().__init__()
        self.emb = nn.Embedding(vocab, embed)
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids):
        return self.head(self.rnn(self.emb(ids))[0])


def transformer(norm):
    return CharTransformer(norm)


def char_rnn(kind):
    return CharRNN(kind)
