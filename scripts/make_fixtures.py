#!/usr/bin/python3
"""PyTorch reference fixtures for every op in core/ops.hpp (llm.c's test_gpt2 idea).

Run from anywhere:   /usr/bin/python3 scripts/make_fixtures.py
(Debian's python3-torch 1.13; the pyenv python3 on PATH has no torch.)

Writes tests/fixtures/ops/<op>.safetensors, one file per op, several cases per file.
For a case "c" the tensors are
    c.<input>        each input, float32 (e.g. c.x, c.w, c.b; c.a / c.b for binary ops)
    c.out            the op's output
    c.dout           a random upstream gradient, shaped like out
    c.grad_<input>   d(sum(dout * out)) / d(input), for every differentiable input
and the file's __metadata__ maps "c" to a JSON string with the op's parameters, e.g.
    {"dim": -1, "keepdim": true, "transpose_x": [0, 1]}
Conventions the C++ test (tests/test_fixtures_ops.cpp) relies on:
  * "transpose_<input>": [d0, d1] means the stored tensor is the input's *transpose*,
    contiguous; the op's real input is stored.transpose(d0, d1), a non-contiguous view.
    grad_<input> is in the input's (logical) shape.
  * Integer inputs (class targets "targets", embedding ids "ids") are stored as F32
    holding exact integer values; they have no gradient.
  * Metadata keys starting with "_" describe the file, not a case.

Inputs are random float32 (fixed seeds: the output is byte-for-byte deterministic); the
reference is computed in float64 from those exact float32 values and rounded to float32
once, so the fixture is the true answer and the tolerances measure only normlab's error.
The safetensors files are written by hand (struct + json), no safetensors package needed.
"""
import json
import os
import struct
import sys
import zlib

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "ops")


# ---------------------------------------------------------------- safetensors writer
def save_safetensors(path, tensors, metadata):
    """tensors: dict name -> float32 tensor (in data order); metadata: dict str -> str."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)  # data section 8-byte aligned, as the spec pads
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---------------------------------------------------------------- case builder
class Fixture:
    """Collects the cases of one op and writes them to <op>.safetensors."""

    def __init__(self, op):
        self.op = op
        self.tensors = {}
        self.meta = {"_generator": f"scripts/make_fixtures.py with torch {torch.__version__}, float64 reference"}
        # One seed per op, so adding a case to one op does not change the others' data.
        self.gen = torch.Generator().manual_seed(zlib.crc32(op.encode()))

    def randn(self, *shape, scale=1.0, shift=0.0):
        return torch.randn(shape, generator=self.gen) * scale + shift

    def rand(self, *shape, lo=0.0, hi=1.0):
        return torch.rand(shape, generator=self.gen) * (hi - lo) + lo

    def case(self, name, fn, inputs, params=None, ints=None, transpose=None):
        """fn(inputs: dict of float64 tensors, ints: dict of int64 tensors, params) -> output.

        inputs: differentiable float inputs in their logical shape.
        ints: integer inputs (stored as F32, passed to fn as int64).
        transpose: {input: (d0, d1)} to feed that input as a non-contiguous transposed view.
        """
        params = dict(params or {})
        ints = ints or {}
        transpose = transpose or {}
        assert name not in self.meta, name
        args = {}
        for k, v in inputs.items():
            v = v.to(torch.float32)  # the fixture's values are exactly these float32 numbers
            if k in transpose:
                d0, d1 = transpose[k]
                stored = v.transpose(d0, d1).contiguous()
                leaf = stored.double().requires_grad_()
                args[k] = leaf.transpose(d0, d1)  # non-contiguous, like the C++ side
                assert not args[k].is_contiguous() or v.dim() < 2, (self.op, name, k)
                params[f"transpose_{k}"] = [d0, d1]
                self.tensors[f"{name}.{k}"] = stored
                args[k].retain_grad()
            else:
                stored = v.contiguous()
                args[k] = stored.double().requires_grad_()
                self.tensors[f"{name}.{k}"] = stored
        int_args = {}
        for k, v in ints.items():
            self.tensors[f"{name}.{k}"] = v.to(torch.float32)
            int_args[k] = v.to(torch.int64)
        out = fn(args, int_args, params)
        dout = self.randn(*out.shape).double()
        out.backward(dout)
        self.tensors[f"{name}.out"] = out.detach()
        self.tensors[f"{name}.dout"] = dout
        for k, v in args.items():
            self.tensors[f"{name}.grad_{k}"] = v.grad
        self.meta[name] = json.dumps(params, sort_keys=True)

    def write(self):
        path = os.path.join(OUT_DIR, f"{self.op}.safetensors")
        save_safetensors(path, self.tensors, self.meta)
        return path


# ---------------------------------------------------------------- the ops
def binary_op(op, torch_fn, positive_b=False):
    fx = Fixture(op)
    # b away from zero for div: the reference would otherwise be dominated by 1/b^2.
    rb = (lambda *s: fx.randn(*s).sign() * fx.rand(*s, lo=0.5, hi=2.0)) if positive_b else fx.randn
    f = lambda a, i, p: torch_fn(a["a"], a["b"])
    fx.case("same_shape", f, {"a": fx.randn(3, 4), "b": rb(3, 4)})
    fx.case("bcast_row", f, {"a": fx.randn(3, 4), "b": rb(4)})
    fx.case("bcast_both", f, {"a": fx.randn(2, 1, 4), "b": rb(3, 1)})
    fx.case("bcast_left", f, {"a": fx.randn(1), "b": rb(2, 3)})
    fx.case("scalar_0d", f, {"a": fx.randn(2, 3), "b": rb()})
    fx.case("size1_dims", f, {"a": fx.randn(1, 5), "b": rb(4, 1)})
    fx.case("transposed", f, {"a": fx.randn(3, 4), "b": rb(3, 4)}, transpose={"a": (0, 1)})
    fx.case("transposed_bcast", f, {"a": fx.randn(2, 3, 4), "b": rb(3, 1)}, transpose={"a": (0, 2)})
    return fx


def scalar_op(op, torch_fn):
    fx = Fixture(op)
    f = lambda a, i, p: torch_fn(a["x"], p["b"])
    fx.case("positive", f, {"x": fx.randn(3, 4)}, {"b": 2.5})
    fx.case("negative", f, {"x": fx.randn(2, 3, 2)}, {"b": -0.75})
    fx.case("zero_d", f, {"x": fx.randn()}, {"b": 3.0})
    fx.case("transposed", f, {"x": fx.randn(3, 4)}, {"b": 1.5}, transpose={"x": (0, 1)})
    return fx


def unary_op(op, torch_fn, make_x, extra=()):
    """make_x(fx, *shape) draws a valid input; extra: (name, x, params) special cases."""
    fx = Fixture(op)
    f = lambda a, i, p: torch_fn(a["x"], p)
    fx.case("basic", f, {"x": make_x(fx, 3, 4)})
    fx.case("size1_dims", f, {"x": make_x(fx, 1, 5, 1)})
    fx.case("zero_d", f, {"x": make_x(fx)})
    fx.case("transposed", f, {"x": make_x(fx, 4, 3)}, transpose={"x": (0, 1)})
    for name, x, params in extra:
        fx.case(name, f, {"x": x}, params)
    return fx


def with_zeros(x):
    """x with a few exact zeros, where abs/relu/leaky_relu have their kinks."""
    x = x.clone()
    x.view(-1)[::5] = 0.0
    return x


def reduction_ops():
    fixtures = []
    for op, fn in (("sum", torch.sum), ("mean", torch.mean)):
        fx = Fixture(op)

        def f(a, i, p, fn=fn):
            return fn(a["x"]) if not p["dims"] else fn(a["x"], dim=p["dims"], keepdim=p["keepdim"])

        fx.case("all", f, {"x": fx.randn(3, 4, 5)}, {"dims": [], "keepdim": False})
        fx.case("dim0", f, {"x": fx.randn(3, 4)}, {"dims": [0], "keepdim": False})
        fx.case("dims02_keepdim", f, {"x": fx.randn(3, 4, 5)}, {"dims": [0, 2], "keepdim": True})
        fx.case("neg_dim", f, {"x": fx.randn(2, 3, 4)}, {"dims": [-1], "keepdim": False})
        fx.case("dims_neg_mixed", f, {"x": fx.randn(2, 3, 4, 2)}, {"dims": [1, -1], "keepdim": False})
        fx.case("size1_dim", f, {"x": fx.randn(3, 1, 4)}, {"dims": [1], "keepdim": True})
        fx.case("zero_d", f, {"x": fx.randn()}, {"dims": [], "keepdim": False})
        fx.case("transposed", f, {"x": fx.randn(4, 3, 5)}, {"dims": [1], "keepdim": False}, transpose={"x": (0, 2)})
        fx.case("many_elements", f, {"x": fx.randn(8, 500)}, {"dims": [1], "keepdim": False})
        fixtures.append(fx)

    fx = Fixture("var")

    def fvar(a, i, p):
        if not p["dims"]:
            return torch.var(a["x"], unbiased=p["unbiased"])
        return torch.var(a["x"], dim=p["dims"], unbiased=p["unbiased"], keepdim=p["keepdim"])

    fx.case("all_unbiased", fvar, {"x": fx.randn(3, 4)}, {"dims": [], "unbiased": True, "keepdim": False})
    fx.case("all_biased", fvar, {"x": fx.randn(3, 4)}, {"dims": [], "unbiased": False, "keepdim": False})
    fx.case("dim1_biased_keepdim", fvar, {"x": fx.randn(3, 5)}, {"dims": [1], "unbiased": False, "keepdim": True})
    fx.case("dim1_unbiased_keepdim", fvar, {"x": fx.randn(3, 5)}, {"dims": [1], "unbiased": True, "keepdim": True})
    fx.case("dims02_unbiased", fvar, {"x": fx.randn(2, 3, 4)}, {"dims": [0, 2], "unbiased": True, "keepdim": False})
    fx.case("neg_dim_biased", fvar, {"x": fx.randn(2, 3, 4)}, {"dims": [-1], "unbiased": False, "keepdim": False})
    # Mean 2000, std 1: the naive E[x^2] - E[x]^2 in float32 loses every digit here.
    fx.case("large_mean", fvar, {"x": fx.randn(4, 64, shift=2000.0)}, {"dims": [1], "unbiased": True, "keepdim": False})
    fx.case("transposed", fvar, {"x": fx.randn(4, 3)}, {"dims": [0], "unbiased": True, "keepdim": False},
            transpose={"x": (0, 1)})
    fixtures.append(fx)

    fx = Fixture("max")
    fmax = lambda a, i, p: torch.max(a["x"], dim=p["dim"], keepdim=p["keepdim"]).values
    fx.case("dim1", fmax, {"x": fx.randn(3, 5)}, {"dim": 1, "keepdim": False})
    fx.case("dim_neg_keepdim", fmax, {"x": fx.randn(2, 3, 4)}, {"dim": -1, "keepdim": True})
    fx.case("dim0_3d", fmax, {"x": fx.randn(4, 2, 3)}, {"dim": 0, "keepdim": False})
    fx.case("size1_dim", fmax, {"x": fx.randn(3, 1)}, {"dim": 1, "keepdim": False})
    fx.case("transposed", fmax, {"x": fx.randn(3, 4)}, {"dim": 1, "keepdim": False}, transpose={"x": (0, 1)})
    # Ties: ops.hpp sends the gradient to the first maximum; check torch does the same here.
    ties = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0], [-5.0, -5.0, -5.0, -5.0]])
    assert torch.equal(torch.max(ties, dim=1).indices, torch.tensor([1, 0, 0])), "torch picks another tie"
    fx.case("ties_first_argmax", fmax, {"x": ties}, {"dim": 1, "keepdim": False})
    fixtures.append(fx)

    for op, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        fx = Fixture(op)
        f = lambda a, i, p, fn=fn: fn(a["x"], dim=p["dim"])
        fx.case("last_dim", f, {"x": fx.randn(3, 5)}, {"dim": -1})
        fx.case("dim0", f, {"x": fx.randn(4, 3)}, {"dim": 0})
        fx.case("middle_dim_3d", f, {"x": fx.randn(2, 4, 3)}, {"dim": 1})
        # exp(1000) overflows float32: the max must be subtracted first.
        fx.case("large_magnitude", f, {"x": fx.randn(3, 6, scale=50.0, shift=1000.0)}, {"dim": -1})
        fx.case("large_negative", f, {"x": fx.randn(2, 6, scale=30.0, shift=-500.0)}, {"dim": 1})
        fx.case("size1_dim", f, {"x": fx.randn(3, 1)}, {"dim": 1})
        fx.case("transposed", f, {"x": fx.randn(5, 3)}, {"dim": -1}, transpose={"x": (0, 1)})
        fixtures.append(fx)
    return fixtures


def concat_op():
    fx = Fixture("concat")
    f = lambda a, i, p: torch.cat([a[f"x{k}"] for k in range(p["n"])], dim=p["dim"])
    fx.case("dim0", f, {"x0": fx.randn(2, 3), "x1": fx.randn(1, 3), "x2": fx.randn(3, 3)}, {"n": 3, "dim": 0})
    fx.case("dim1", f, {"x0": fx.randn(2, 3), "x1": fx.randn(2, 1)}, {"n": 2, "dim": 1})
    fx.case("neg_dim_3d", f, {"x0": fx.randn(2, 2, 3), "x1": fx.randn(2, 2, 2)}, {"n": 2, "dim": -1})
    fx.case("single", f, {"x0": fx.randn(2, 3)}, {"n": 1, "dim": 0})
    fx.case("transposed", f, {"x0": fx.randn(3, 4), "x1": fx.randn(2, 4)}, {"n": 2, "dim": 0},
            transpose={"x0": (0, 1)})
    return fx


def matmul_ops():
    fx = Fixture("matmul")
    f = lambda a, i, p: torch.matmul(a["a"], a["b"])
    fx.case("mm_2d", f, {"a": fx.randn(3, 4), "b": fx.randn(4, 5)})
    fx.case("batched_3d", f, {"a": fx.randn(2, 3, 4), "b": fx.randn(2, 4, 5)})
    fx.case("batched_4d_bcast_2d", f, {"a": fx.randn(2, 2, 3, 4), "b": fx.randn(4, 5)})
    fx.case("bcast_2d_left", f, {"a": fx.randn(3, 4), "b": fx.randn(2, 4, 5)})
    fx.case("vec_mat", f, {"a": fx.randn(4), "b": fx.randn(4, 5)})
    fx.case("mat_vec", f, {"a": fx.randn(3, 4), "b": fx.randn(4)})
    fx.case("vec_vec", f, {"a": fx.randn(4), "b": fx.randn(4)})
    fx.case("batched_vec", f, {"a": fx.randn(2, 3, 4), "b": fx.randn(4)})
    fx.case("size1_dims", f, {"a": fx.randn(1, 4), "b": fx.randn(4, 1)})
    fx.case("transposed_a", f, {"a": fx.randn(3, 4), "b": fx.randn(4, 5)}, transpose={"a": (0, 1)})
    fx.case("transposed_b_batched", f, {"a": fx.randn(2, 3, 4), "b": fx.randn(2, 4, 5)}, transpose={"b": (1, 2)})
    fx.case("long_k", f, {"a": fx.randn(4, 300), "b": fx.randn(300, 3)})

    lin = Fixture("linear")
    fl = lambda a, i, p: F.linear(a["x"], a["w"], a.get("b"))
    lin.case("bias", fl, {"x": lin.randn(4, 3), "w": lin.randn(5, 3), "b": lin.randn(5)})
    lin.case("no_bias", fl, {"x": lin.randn(4, 3), "w": lin.randn(5, 3)})
    lin.case("batched_3d", fl, {"x": lin.randn(2, 3, 4), "w": lin.randn(6, 4), "b": lin.randn(6)})
    lin.case("vector_x", fl, {"x": lin.randn(3), "w": lin.randn(2, 3), "b": lin.randn(2)})
    lin.case("transposed_w", fl, {"x": lin.randn(4, 3), "w": lin.randn(5, 3), "b": lin.randn(5)},
             transpose={"w": (0, 1)})
    lin.case("transposed_x", fl, {"x": lin.randn(4, 3), "w": lin.randn(5, 3)}, transpose={"x": (0, 1)})
    return [fx, lin]


def conv_ops():
    fx = Fixture("conv2d")

    def f(a, i, p):
        return F.conv2d(a["x"], a["w"], a.get("b"), stride=(p["stride_h"], p["stride_w"]), padding=(p["pad_h"], p["pad_w"]),
                        dilation=(p["dilation_h"], p["dilation_w"]), groups=p["groups"])

    def opts(stride=(1, 1), pad=(0, 0), dilation=(1, 1), groups=1):
        return {"stride_h": stride[0], "stride_w": stride[1], "pad_h": pad[0], "pad_w": pad[1],
                "dilation_h": dilation[0], "dilation_w": dilation[1], "groups": groups}

    r = fx.randn
    fx.case("basic_bias", f, {"x": r(2, 4, 6, 6), "w": r(3, 4, 3, 3), "b": r(3)}, opts())
    fx.case("stride2_pad1", f, {"x": r(2, 4, 7, 7), "w": r(4, 4, 3, 3), "b": r(4)}, opts((2, 2), (1, 1)))
    fx.case("dilation2_no_bias", f, {"x": r(2, 4, 7, 7), "w": r(2, 4, 3, 3)}, opts(pad=(2, 2), dilation=(2, 2)))
    fx.case("groups2", f, {"x": r(2, 4, 5, 5), "w": r(6, 2, 3, 3), "b": r(6)}, opts(pad=(1, 1), groups=2))
    fx.case("depthwise", f, {"x": r(2, 4, 5, 5), "w": r(8, 1, 3, 3), "b": r(8)}, opts(pad=(1, 1), groups=4))
    fx.case("rect_kernel_stride", f, {"x": r(1, 3, 6, 7), "w": r(2, 3, 2, 3)}, opts((2, 1), (0, 1)))
    fx.case("kernel_1x1", f, {"x": r(2, 4, 3, 3), "w": r(5, 4, 1, 1), "b": r(5)}, opts())
    fx.case("transposed_x", f, {"x": r(2, 3, 5, 6), "w": r(2, 3, 3, 3), "b": r(2)}, opts(pad=(1, 1)),
            transpose={"x": (2, 3)})
    fixtures = [fx]

    for op, fn in (("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d)):
        fx = Fixture(op)
        # stride 0 means "= kernel", normlab's default (PyTorch's None).
        f = lambda a, i, p, fn=fn: fn(a["x"], p["kernel"], p["stride"] or p["kernel"], p["padding"])
        fx.case("k2", f, {"x": fx.randn(2, 3, 6, 6)}, {"kernel": 2, "stride": 0, "padding": 0})
        fx.case("k3_s2_p1", f, {"x": fx.randn(2, 3, 7, 7)}, {"kernel": 3, "stride": 2, "padding": 1})
        fx.case("k3_s1_overlap", f, {"x": fx.randn(1, 2, 5, 5)}, {"kernel": 3, "stride": 1, "padding": 0})
        fx.case("k2_s1_p1", f, {"x": fx.randn(1, 2, 4, 5)}, {"kernel": 2, "stride": 1, "padding": 1})
        fx.case("odd_size_floor", f, {"x": fx.randn(2, 2, 7, 5)}, {"kernel": 2, "stride": 2, "padding": 0})
        fx.case("transposed", f, {"x": fx.randn(2, 3, 6, 6)}, {"kernel": 2, "stride": 2, "padding": 0},
                transpose={"x": (2, 3)})
        fixtures.append(fx)

    fx = Fixture("global_avg_pool2d")
    f = lambda a, i, p: a["x"].mean(dim=(2, 3))
    fx.case("basic", f, {"x": fx.randn(2, 3, 4, 5)})
    fx.case("size1", f, {"x": fx.randn(1, 1, 1, 1)})
    fx.case("transposed", f, {"x": fx.randn(2, 3, 4, 5)}, transpose={"x": (1, 3)})
    fixtures.append(fx)
    return fixtures


def nn_ops():
    fx = Fixture("embedding")
    f = lambda a, i, p: F.embedding(i["ids"], a["w"])
    fx.case("repeated_ids_2d", f, {"w": fx.randn(10, 4)}, ints={"ids": torch.tensor([[1, 3, 3, 9, 0], [3, 1, 7, 7, 7]])})
    fx.case("ids_1d", f, {"w": fx.randn(6, 3)}, ints={"ids": torch.tensor([5, 0, 5, 2, 5, 1, 0])})
    fx.case("single_row", f, {"w": fx.randn(1, 5)}, ints={"ids": torch.tensor([0, 0, 0])})
    fx.case("transposed_w", f, {"w": fx.randn(8, 4)}, ints={"ids": torch.tensor([[2, 7], [2, 0]])},
            transpose={"w": (0, 1)})
    fixtures = [fx]

    # Dropout is random: only the deterministic identities are fixtures (p = 0 in training,
    # any p in eval). The C++ test checks the random case statistically.
    fx = Fixture("dropout")
    f = lambda a, i, p: F.dropout(a["x"], p["p"], training=p["training"])
    fx.case("p0_training", f, {"x": fx.randn(3, 4)}, {"p": 0.0, "training": True})
    fx.case("eval_p05", f, {"x": fx.randn(2, 3, 2)}, {"p": 0.5, "training": False})
    fixtures.append(fx)

    fx = Fixture("cross_entropy")
    f = lambda a, i, p: F.cross_entropy(a["x"], i["targets"], ignore_index=p["ignore_index"],
                                        label_smoothing=p["label_smoothing"])
    plain = {"ignore_index": -100, "label_smoothing": 0.0}
    fx.case("basic", f, {"x": fx.randn(5, 4)}, plain, ints={"targets": torch.tensor([0, 3, 1, 1, 2])})
    fx.case("ignore_default", f, {"x": fx.randn(6, 3)}, plain, ints={"targets": torch.tensor([2, -100, 0, -100, 1, 1])})
    fx.case("ignore_custom", f, {"x": fx.randn(5, 4)}, {"ignore_index": 1, "label_smoothing": 0.0},
            ints={"targets": torch.tensor([1, 3, 1, 0, 2])})
    fx.case("label_smoothing", f, {"x": fx.randn(5, 4)}, {"ignore_index": -100, "label_smoothing": 0.1},
            ints={"targets": torch.tensor([0, 3, 1, 1, 2])})
    fx.case("smoothing_and_ignore", f, {"x": fx.randn(5, 6)}, {"ignore_index": -100, "label_smoothing": 0.25},
            ints={"targets": torch.tensor([5, -100, 0, 2, -100])})
    fx.case("large_logits", f, {"x": fx.randn(4, 5, scale=60.0, shift=300.0)}, plain,
            ints={"targets": torch.tensor([4, 0, 2, 2])})
    fx.case("batch_of_one", f, {"x": fx.randn(1, 3)}, plain, ints={"targets": torch.tensor([2])})
    fx.case("transposed", f, {"x": fx.randn(3, 4)}, plain, ints={"targets": torch.tensor([3, 0, 1])},
            transpose={"x": (0, 1)})
    # Logits far from 0 with an O(1) spread: the probabilities are ordinary, but a log-sum-exp
    # rounded to float (ulp 6e-5 at 1000, 1e-2 at 1e5) would shift every one of them.
    for name, shift in [("logits_near_1000", 1e3), ("logits_near_minus_1000", -1e3), ("logits_near_1e4", 1e4),
                        ("logits_near_1e5", 1e5)]:
        fx.case(name, f, {"x": fx.randn(4, 5, shift=shift)}, plain, ints={"targets": torch.tensor([1, 4, 0, 2])})
    fixtures.append(fx)

    fx = Fixture("mse_loss")
    f = lambda a, i, p: F.mse_loss(a["x"], a["target"])
    fx.case("basic", f, {"x": fx.randn(3, 4), "target": fx.randn(3, 4)})
    fx.case("3d", f, {"x": fx.randn(2, 3, 4), "target": fx.randn(2, 3, 4)})
    fx.case("zero_d", f, {"x": fx.randn(), "target": fx.randn()})
    fx.case("transposed", f, {"x": fx.randn(3, 5), "target": fx.randn(3, 5)}, transpose={"x": (0, 1)})
    fixtures.append(fx)
    return fixtures


def all_fixtures():
    fx = []
    fx.append(binary_op("add", torch.add))
    fx.append(binary_op("sub", torch.sub))
    fx.append(binary_op("mul", torch.mul))
    fx.append(binary_op("div", torch.div, positive_b=True))
    fx.append(scalar_op("add_scalar", lambda x, b: x + b))
    fx.append(scalar_op("mul_scalar", lambda x, b: x * b))

    normal = lambda fx_, *s: fx_.randn(*s)
    positive = lambda fx_, *s: fx_.rand(*s, lo=0.2, hi=3.0)
    zeros = lambda fx_, *s: with_zeros(fx_.randn(*s))
    fx.append(unary_op("neg", lambda x, p: -x, normal))
    fx.append(unary_op("exp", lambda x, p: torch.exp(x), normal))
    fx.append(unary_op("log", lambda x, p: torch.log(x), positive))
    fx.append(unary_op("sqrt", lambda x, p: torch.sqrt(x), positive))
    fx.append(unary_op("rsqrt", lambda x, p: torch.rsqrt(x), positive))
    pw = Fixture("pow")
    fpow = lambda a, i, p: torch.pow(a["x"], p["exponent"])
    pw.case("square_negatives", fpow, {"x": pw.randn(3, 4)}, {"exponent": 2.0})
    pw.case("cube_negatives", fpow, {"x": pw.randn(2, 3)}, {"exponent": 3.0})
    pw.case("sqrt_positive", fpow, {"x": pw.rand(3, 4, lo=0.2, hi=3.0)}, {"exponent": 0.5})
    pw.case("neg_fractional", fpow, {"x": pw.rand(3, 4, lo=0.2, hi=3.0)}, {"exponent": -1.5})
    pw.case("identity", fpow, {"x": pw.randn(4)}, {"exponent": 1.0})
    pw.case("transposed", fpow, {"x": pw.randn(3, 4)}, {"exponent": 2.0}, transpose={"x": (0, 1)})
    fx.append(pw)
    fx.append(unary_op("abs", lambda x, p: torch.abs(x), zeros))
    cl = Fixture("clamp")
    fcl = lambda a, i, p: torch.clamp(a["x"], p["lo"], p["hi"])
    cl.case("symmetric", fcl, {"x": cl.randn(4, 5)}, {"lo": -0.5, "hi": 0.5})
    cl.case("asymmetric", fcl, {"x": cl.randn(3, 4, scale=2.0)}, {"lo": -1.0, "hi": 0.25})
    cl.case("no_op_range", fcl, {"x": cl.randn(3, 2)}, {"lo": -100.0, "hi": 100.0})
    cl.case("transposed", fcl, {"x": cl.randn(3, 4)}, {"lo": -0.3, "hi": 0.6}, transpose={"x": (0, 1)})
    fx.append(cl)
    fx.append(unary_op("relu", lambda x, p: torch.relu(x), zeros))
    fx.append(unary_op("leaky_relu", lambda x, p: F.leaky_relu(x, p.get("negative_slope", 0.01)), zeros,
                       extra=[("slope_0_2", with_zeros(torch.linspace(-3, 3, 11)), {"negative_slope": 0.2})]))
    fx.append(unary_op("gelu", lambda x, p: F.gelu(x), normal,
                       extra=[("wide_range", torch.linspace(-8, 8, 17), {})]))
    fx.append(unary_op("sigmoid", lambda x, p: torch.sigmoid(x), normal,
                       extra=[("saturated", torch.tensor([-40.0, -20.0, -5.0, 5.0, 20.0, 40.0]), {})]))
    fx.append(unary_op("tanh", lambda x, p: torch.tanh(x), normal,
                       extra=[("saturated", torch.tensor([-40.0, -10.0, -3.0, 3.0, 10.0, 40.0]), {})]))
    fx += reduction_ops()
    fx.append(concat_op())
    fx += matmul_ops()
    fx += conv_ops()
    fx += nn_ops()
    return fx


def main():
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    for fx in all_fixtures():
        path = fx.write()
        size = os.path.getsize(path)
        total += size
        print(f"{os.path.relpath(path, ROOT)}: {len(fx.meta) - 1} cases, {size} bytes")
    print(f"total {total} bytes")
    assert total < 1_000_000, "fixtures must stay well under 1 MB"


if __name__ == "__main__":
    sys.exit(main())
