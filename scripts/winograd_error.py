#!/usr/bin/env python3
"""Rounding error of Winograd F(2x2, 3x3) and F(4x4, 3x3) in float32, simulated with numpy
on the shape of tests/test_ops_conv_direct.cpp's "Winograd ... differs from the direct kernel
only by rounding" (x [4, 64, 8, 8], w [64, 64, 3, 3], unit normal): the largest error of the
forward against an exact (float64) convolution and against a float32 direct one, both relative
to the outputs' rms. The test bounds normlab's F(2x2) at 1e-5 of the rms; F(4x4) would need 4x
fewer multiplies than the direct kernel (F(2x2): 2.25x) but uses larger transform coefficients
(points 0, +-1, +-2), and this shows whether it would stay within that bound.
    /usr/bin/python3 scripts/winograd_error.py
"""
import numpy as np

f32 = np.float32


def matrices(m):
    """B^T, G, A^T of F(m x m, 3 x 3) (Lavin & Gray 2016)."""
    if m == 2:
        bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        g = [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]]
        at = [[1, 1, 1, 0], [0, 1, -1, -1]]
    else:
        bt = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
              [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
        g = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
             [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
        at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    return np.array(bt, f32), np.array(g, f32), np.array(at, f32)


def direct(x, w, dtype):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).astype(dtype)
    y = np.zeros((n, w.shape[0], h, wd), dtype)
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,kc->nkhw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j].astype(dtype))
    return y


def winograd(x, w, m):
    """Every step rounded to float32; the sum over input channels in order, as the kernels do."""
    bt, g, at = matrices(m)
    a = m + 2
    n, c, h, wd = x.shape
    u = np.einsum("xi,kcij,yj->xykc", g, w, g).astype(f32)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1 + a), (1, 1 + a)))
    y = np.zeros((n, w.shape[0], h, wd), f32)
    for ty in range(h // m):
        for tx in range(wd // m):
            d = xp[:, :, ty * m:ty * m + a, tx * m:tx * m + a]
            v = np.einsum("xi,ncij,yj->xync", bt, d, bt).astype(f32)
            acc = np.zeros((a, a, n, w.shape[0]), f32)
            for ci in range(c):
                acc += u[:, :, None, :, ci] * v[:, :, :, ci, None]
            y[:, :, ty * m:ty * m + m, tx * m:tx * m + m] = np.einsum("ix,xynk,jy->nkij", at, acc, at)
    return y


def main():
    rng = np.random.default_rng(23)
    x = rng.standard_normal((4, 64, 8, 8)).astype(f32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(f32)
    exact, direct32 = direct(x, w, np.float64), direct(x, w, f32)
    rms = np.sqrt((exact ** 2).mean())
    print(f"outputs' rms {rms:.2f}; the test's bound on |direct - winograd|: 1e-5 of it")
    print(f"direct float32: max |error| / rms {np.abs(direct32 - exact).max() / rms:.2e}")
    for m in (2, 4):
        y = winograd(x, w, m)
        print(f"F({m}x{m}, 3x3): max |error| / rms {np.abs(y - exact).max() / rms:.2e}, "
              f"max |y - direct float32| / rms {np.abs(y - direct32).max() / rms:.2e}")


if __name__ == "__main__":
    main()
