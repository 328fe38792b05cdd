#!/usr/bin/python3
"""Conv and linear FLOPs per training image of the benchmark models (scripts/torch_models.py,
the same networks as normlab's), the count docs/performance.md divides by to get GFLOP/s and
the fraction of sgemm's peak:

  forward        2 x MACs of every Conv2d and Linear
  backward       2 x MACs for the weight gradient of every layer, and 2 x MACs for the input
                 gradient of every layer but the first (the images need no gradient)

Norms, activations, pooling and the optimizer are not counted (they are memory-bound and small
in FLOPs).   /usr/bin/python3 scripts/model_flops.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def macs_per_layer(model, shape):
    macs = []

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            macs.append(out[0].numel() * k)
        elif isinstance(m, torch.nn.Linear):
            macs.append(m.in_features * m.out_features)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return macs


def main():
    rows = [("MNIST CNN", torch_models.cnn(1, "bn", 28), (1, 28, 28)),
            ("CIFAR CNN", torch_models.cnn(3, "bn", 32), (3, 32, 32)),
            ("ResNet-20", torch_models.resnet20("bn"), (3, 32, 32))]
    print(f"{'model':10s} {'fwd MMAC':>9s} {'train MFLOP/image':>18s}")
    for name, model, shape in rows:
        macs = macs_per_layer(model, shape)
        train = 2 * (3 * sum(macs) - macs[0])
        print(f"{name:10s} {sum(macs) / 1e6:9.3f} {train / 1e6:18.2f}")


if __name__ == "__main__":
    main()
