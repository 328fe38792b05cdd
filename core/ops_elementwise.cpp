// normlab core: elementwise ops with broadcasting, and their gradients.
//
// Binary ops broadcast like NumPy/PyTorch: shapes are aligned at the right, a dim of size 1
// stretches. In backward, the gradient for a broadcast input is summed back to its shape
// (sum_to).
//
// Broadcasting without copies. Each operand is described by its strides over the output's
// dims (stride 0 where it is broadcast). Adjacent dims that are laid out the same way in
// a, b and out are merged, so the output becomes rows of length L where, along a row,
// each operand is either contiguous (stride 1) or one repeated value (stride 0):
//   [N, C] + [C]           -> N rows of  vec + vec   (b restarts every row)
//   [N, C, H, W] * [C,1,1] -> N*C rows of vec * scalar
//   same shapes            -> 1 row  of  vec + vec
// Each row is one call of a SIMD kernel (vec-vec, vec-scalar or scalar-vec form).
//
// Unary ops and their derivatives (y is the saved output, captured detached):
//   neg: -1   exp: y   log: 1/x   sqrt: 1/(2y)   rsqrt: -y^3/2   pow(x,p): p x^(p-1)
//   abs: sign(x)   clamp: 1 inside [lo, hi] (inclusive, as PyTorch), else 0
//   relu: [x > 0]   leaky_relu: 1 or slope   gelu: Phi(x) + x phi(x)
//   sigmoid: y (1 - y)   tanh: 1 - y^2
#include <algorithm>
#include <cmath>

#include "core/autograd.hpp"
#include "core/kernels/kernels.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"

namespace nl {

// Elementwise work is split across threads only above this many elements: below it the
// fork/join costs more than the loop.
constexpr int64_t kElementwiseGrain = 1 << 15;

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    NL_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b, " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < g.dim(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && g.size(i) != 1)) dims.push_back(i);
  }
  if (dims.empty()) return g.reshape(shape);  // only size-1 dims differ
  return sum(g, dims, true).reshape(shape);
}

// ---------------------------------------------------------------- binary, broadcast

// The three row forms of one binary op (see the file comment).
struct BinaryKernels {
  void (*vec_vec)(const float* a, const float* b, float* out, int64_t n);
  void (*vec_scalar)(const float* a, float s, float* out, int64_t n);  // a[i] op s
  void (*scalar_vec)(const float* b, float s, float* out, int64_t n);  // s op b[i]
};

// out = a op b. Reads a and b in place when contiguous; only non-contiguous inputs are copied.
static Tensor binary_forward(const Tensor& a_in, const Tensor& b_in, const BinaryKernels& k, const char* op) {
  const Shape out_shape = broadcast_shapes(a_in.shape(), b_in.shape(), op);
  Tensor out = Tensor::empty(out_shape);
  if (out.numel() == 0) return out;
  const Tensor a = a_in.detach().contiguous(), b = b_in.detach().contiguous();
  const Shape sa_full = a.expand(out_shape).strides(), sb_full = b.expand(out_shape).strides();

  // Merge dims (outer to inner); size-1 dims are dropped.
  Shape sizes, sa, sb;
  for (size_t i = 0; i < out_shape.size(); ++i) {
    if (out_shape[i] == 1) continue;
    if (!sizes.empty() && sa.back() == sa_full[i] * out_shape[i] && sb.back() == sb_full[i] * out_shape[i]) {
      sizes.back() *= out_shape[i];
      sa.back() = sa_full[i];
      sb.back() = sb_full[i];
    } else {
      sizes.push_back(out_shape[i]);
      sa.push_back(sa_full[i]);
      sb.push_back(sb_full[i]);
    }
  }
  if (sizes.empty()) sizes = sa = sb = Shape{1};  // a single element

  const int64_t len = sizes.back(), rows = out.numel() / len;
  const bool a_vec = sa.back() != 0, b_vec = sb.back() != 0;  // both 0 is impossible
  const float *pa = a.data(), *pb = b.data();
  float* po = out.data();
  const int64_t outer_rank = static_cast<int64_t>(sizes.size()) - 1;

  // Row r of the output starts at r*len in out; its start in a and b comes from r's index
  // over the outer dims.
  auto run_row = [&](int64_t r, int64_t begin, int64_t end) {
    int64_t oa = 0, ob = 0, rem = r;
    for (int64_t d = outer_rank - 1; d >= 0; --d) {
      const int64_t idx = rem % sizes[d];
      rem /= sizes[d];
      oa += idx * sa[d];
      ob += idx * sb[d];
    }
    const float* ra = pa + oa + (a_vec ? begin : 0);
    const float* rb = pb + ob + (b_vec ? begin : 0);
    float* ro = po + r * len + begin;
    const int64_t n = end - begin;
    if (a_vec && b_vec) k.vec_vec(ra, rb, ro, n);
    else if (a_vec) k.vec_scalar(ra, *rb, ro, n);
    else k.scalar_vec(rb, *ra, ro, n);
  };
  if (rows == 1) {
    parallel_for(len, kElementwiseGrain, [&](int64_t begin, int64_t end) { run_row(0, begin, end); });
  } else {
    parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / len), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) run_row(r, 0, len);
    });
  }
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  const auto& kt = kernels();
  Tensor out = binary_forward(a, b, {kt.add, kt.add_scalar, kt.add_scalar}, "add");
  return record(out, "add", {a, b}, [a, b](const Tensor& g) {
    // g itself where no sum is needed: a's gradient can then adopt g's buffer (accumulate_grad)
    if (a.shape() == g.shape()) accumulate_grad(a, g);
    else accumulate_grad(a, sum_to(g, a.shape()));
    accumulate_grad(b, sum_to(g, b.shape()));
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  const auto& kt = kernels();
  Tensor out = binary_forward(a, b, {kt.sub, kt.sub_scalar, kt.rsub_scalar}, "sub");
  return record(out, "sub", {a, b}, [a, b](const Tensor& g) {
    accumulate_grad(a, sum_to(g, a.shape()));
    if (b.requires_grad()) accumulate_grad(b, sum_to(neg(g), b.shape()));
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  const auto& kt = kernels();
  Tensor out = binary_forward(a, b, {kt.mul, kt.mul_scalar, kt.mul_scalar}, "mul");
  return record(out, "mul", {a, b}, [a, b](const Tensor& g) {
    if (a.requires_grad()) accumulate_grad(a, sum_to(mul(g, b.detach()), a.shape()));
    if (b.requires_grad()) accumulate_grad(b, sum_to(mul(g, a.detach()), b.shape()));
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  const auto& kt = kernels();
  Tensor out = binary_forward(a, b, {kt.div, kt.div_scalar, kt.rdiv_scalar}, "div");
  return record(out, "div", {a, b}, [a, b](const Tensor& g) {
    // d(a/b)/da = 1/b,  d(a/b)/db = -a/b^2
    if (a.requires_grad()) accumulate_grad(a, sum_to(div(g, b.detach()), a.shape()));
    if (b.requires_grad()) {
      Tensor bd = b.detach();
      accumulate_grad(b, sum_to(neg(div(mul(g, a.detach()), mul(bd, bd))), b.shape()));
    }
  });
}

// ---------------------------------------------------------------- with a scalar

using ScalarKernel = void (*)(const float*, float, float*, int64_t);

static Tensor scalar_forward(const Tensor& a, float s, ScalarKernel kernel) {
  Tensor ac = a.detach().contiguous();
  Tensor out = Tensor::empty(a.shape());
  const float* pa = ac.data();
  float* po = out.data();
  parallel_for(out.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    kernel(pa + begin, s, po + begin, end - begin);
  });
  return out;
}

Tensor add(const Tensor& a, float b) {
  Tensor out = scalar_forward(a, b, kernels().add_scalar);
  return record(out, "add_scalar", {a}, [a](const Tensor& g) { accumulate_grad(a, g); });
}

Tensor mul(const Tensor& a, float b) {
  Tensor out = scalar_forward(a, b, kernels().mul_scalar);
  return record(out, "mul_scalar", {a}, [a, b](const Tensor& g) { accumulate_grad(a, mul(g, b)); });
}

// ---------------------------------------------------------------- unary

using UnaryKernel = void (*)(const float*, float*, int64_t);

static Tensor unary_forward(const Tensor& x, UnaryKernel kernel) {
  Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::empty(x.shape());
  const float* px = xc.data();
  float* po = out.data();
  parallel_for(out.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    kernel(px + begin, po + begin, end - begin);
  });
  return out;
}

// out[i] = f(x[i]) for ops without a table kernel (they are not on hot paths).
template <typename F>
static Tensor map_unary(const Tensor& x, F f) {
  Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::empty(x.shape());
  const float* px = xc.data();
  float* po = out.data();
  parallel_for(out.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) po[i] = f(px[i]);
  });
  return out;
}

// out[i] = f(g[i], s[i]): a gradient g and a saved same-shape tensor s (input or output).
template <typename F>
static Tensor map_grad(const Tensor& g, const Tensor& saved, F f) {
  Tensor gc = g.contiguous(), sc = saved.contiguous();
  Tensor out = Tensor::empty(g.shape());
  const float *pg = gc.data(), *ps = sc.data();
  float* po = out.data();
  parallel_for(out.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) po[i] = f(pg[i], ps[i]);
  });
  return out;
}

// A kernel of the form out = g * f'(x) (relu_backward).
using GradKernel = void (*)(const float* x, const float* g, float* out, int64_t n);
static Tensor grad_kernel(const Tensor& x, const Tensor& g, GradKernel kernel) {
  Tensor xc = x.contiguous(), gc = g.contiguous();
  Tensor out = Tensor::empty(x.shape());
  const float *px = xc.data(), *pg = gc.data();
  float* po = out.data();
  parallel_for(out.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    kernel(px + begin, pg + begin, po + begin, end - begin);
  });
  return out;
}

Tensor neg(const Tensor& x) {
  Tensor out = scalar_forward(x, -1.0f, kernels().mul_scalar);
  return record(out, "neg", {x}, [x](const Tensor& g) { accumulate_grad(x, neg(g)); });
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_forward(x, kernels().exp);
  Tensor y = out.detach();
  return record(out, "exp", {x}, [x, y](const Tensor& g) { accumulate_grad(x, mul(g, y)); });
}

Tensor log(const Tensor& x) {
  Tensor out = unary_forward(x, kernels().log);
  return record(out, "log", {x}, [x](const Tensor& g) { accumulate_grad(x, div(g, x.detach())); });
}

Tensor sqrt(const Tensor& x) {
  Tensor out = map_unary(x, [](float v) { return std::sqrt(v); });
  Tensor y = out.detach();
  return record(out, "sqrt", {x}, [x, y](const Tensor& g) {
    accumulate_grad(x, map_grad(g, y, [](float gi, float yi) { return gi * 0.5f / yi; }));
  });
}

Tensor rsqrt(const Tensor& x) {
  Tensor out = map_unary(x, [](float v) { return 1.0f / std::sqrt(v); });
  Tensor y = out.detach();
  return record(out, "rsqrt", {x}, [x, y](const Tensor& g) {
    accumulate_grad(x, map_grad(g, y, [](float gi, float yi) { return -0.5f * gi * yi * yi * yi; }));
  });
}

Tensor pow(const Tensor& x, float p) {
  Tensor out = p == 2.0f ? map_unary(x, [](float v) { return v * v; })
                         : map_unary(x, [p](float v) { return std::pow(v, p); });
  return record(out, "pow", {x}, [x, p](const Tensor& g) {
    // p x^(p-1); p == 0 gives 0 (not 0 * x^-1, which is NaN at x = 0), as in PyTorch.
    accumulate_grad(x, map_grad(g, x.detach(), [p](float gi, float xi) {
      return p == 0.0f ? 0.0f : gi * p * std::pow(xi, p - 1.0f);
    }));
  });
}

Tensor abs(const Tensor& x) {
  Tensor out = map_unary(x, [](float v) { return std::fabs(v); });
  return record(out, "abs", {x}, [x](const Tensor& g) {
    // sign(x), with sign(0) = 0 as in PyTorch
    accumulate_grad(x, map_grad(g, x.detach(), [](float gi, float xi) {
      return xi > 0.0f ? gi : (xi < 0.0f ? -gi : 0.0f);
    }));
  });
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  NL_CHECK(!(lo > hi), "clamp: lo (", lo, ") must not exceed hi (", hi, ") for input of shape ", x.shape());
  // Written so NaN passes through (both comparisons are false), as in PyTorch.
  Tensor out = map_unary(x, [lo, hi](float v) { return v < lo ? lo : (v > hi ? hi : v); });
  return record(out, "clamp", {x}, [x, lo, hi](const Tensor& g) {
    accumulate_grad(x, map_grad(g, x.detach(), [lo, hi](float gi, float xi) {
      return xi >= lo && xi <= hi ? gi : 0.0f;
    }));
  });
}

Tensor relu(const Tensor& x) {
  Tensor out = unary_forward(x, kernels().relu);
  return record(out, "relu", {x}, [x](const Tensor& g) {
    accumulate_grad(x, grad_kernel(x.detach(), g, kernels().relu_backward));
  });
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  NL_CHECK(a.shape() == b.shape(), "add_relu: shapes ", a.shape(), " and ", b.shape(),
           " differ (it does not broadcast; use relu(a + b))");
  Tensor ac = a.detach().contiguous(), bc = b.detach().contiguous();
  Tensor out = Tensor::empty(a.shape());
  const float *pa = ac.data(), *pb = bc.data();
  float* po = out.data();
  const auto& kt = kernels();
  // In pieces of 16 KB: relu reads each piece of the sum while it is still in L1.
  constexpr int64_t kPiece = 4096;
  parallel_for(out.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i += kPiece) {
      const int64_t n = std::min(kPiece, end - i);
      kt.add(pa + i, pb + i, po + i, n);
      kt.relu(po + i, po + i, n);
    }
  });
  Tensor y = out.detach();  // [y > 0] is [a + b > 0]: the output serves as relu's saved input
  return record(out, "add_relu", {a, b}, [a, b, y](const Tensor& g) {
    Tensor masked = grad_kernel(y, g, kernels().relu_backward);
    accumulate_grad(a, masked);
    accumulate_grad(b, masked);
  });
}

Tensor leaky_relu(const Tensor& x, float slope) {
  Tensor out = map_unary(x, [slope](float v) { return v > 0.0f ? v : v * slope; });
  return record(out, "leaky_relu", {x}, [x, slope](const Tensor& g) {
    accumulate_grad(x, map_grad(g, x.detach(), [slope](float gi, float xi) { return xi > 0.0f ? gi : gi * slope; }));
  });
}

Tensor gelu(const Tensor& x) {
  Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::empty(x.shape());
  // Phi(x), kept when a backward will run: gelu' = Phi(x) + x phi(x) would otherwise evaluate
  // the erfc polynomial and its exp a second time (3/4 of the backward's cost).
  Tensor cdf = grad_enabled() && x.requires_grad() ? Tensor::empty(x.shape()) : Tensor();
  const float* px = xc.data();
  float *po = out.data(), *pc = cdf.defined() ? cdf.data() : nullptr;
  parallel_for(out.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    kernels().gelu(px + begin, po + begin, pc ? pc + begin : nullptr, end - begin);
  });
  return record(out, "gelu", {x}, [xc, x, cdf](const Tensor& g) {
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(x.shape());
    const float *pxs = xc.data(), *pcs = cdf.data(), *pg = gc.data();
    float* pd = dx.data();
    parallel_for(dx.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
      kernels().gelu_backward(pxs + begin, pcs + begin, pg + begin, pd + begin, end - begin);
    });
    accumulate_grad(x, dx);
  });
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = unary_forward(x, kernels().sigmoid);
  Tensor y = out.detach();
  return record(out, "sigmoid", {x}, [x, y](const Tensor& g) {
    accumulate_grad(x, map_grad(g, y, [](float gi, float yi) { return gi * yi * (1.0f - yi); }));
  });
}

Tensor tanh(const Tensor& x) {
  Tensor out = unary_forward(x, kernels().tanh);
  Tensor y = out.detach();
  return record(out, "tanh", {x}, [x, y](const Tensor& g) {
    accumulate_grad(x, map_grad(g, y, [](float gi, float yi) { return gi * (1.0f - yi * yi); }));
  });
}

}  // namespace nl
