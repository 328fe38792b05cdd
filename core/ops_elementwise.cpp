// normlab core: elementwise ops with broadcasting, and their gradients.
//
// Binary ops broadcast like NumPy/PyTorch: shapes are aligned at the right, a dim of size 1
// stretches. In backward, the gradient for a broadcast input is summed back to its shape
// (sum_to). Same-shape contiguous inputs take the fast path straight into a SIMD kernel.
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
  return sum(g, dims, true).reshape(shape);
}

using BinaryKernel = void (*)(const float*, const float*, float*, int64_t);

// out = kernel(a, b) with broadcasting; both sides are materialised to the output shape
// only when they differ from it (the common same-shape case copies nothing).
static Tensor binary_forward(const Tensor& a, const Tensor& b, BinaryKernel kernel, const char* op) {
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor ac = (a.shape() == out_shape ? a.detach() : a.detach().expand(out_shape)).contiguous();
  Tensor bc = (b.shape() == out_shape ? b.detach() : b.detach().expand(out_shape)).contiguous();
  Tensor out = Tensor::empty(out_shape);
  const float *pa = ac.data(), *pb = bc.data();
  float* po = out.data();
  parallel_for(out.numel(), kElementwiseGrain, [&](int64_t begin, int64_t end) {
    kernel(pa + begin, pb + begin, po + begin, end - begin);
  });
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, kernels().add, "add");
  return record(out, "add", {a, b}, [a, b](const Tensor& g) {
    accumulate_grad(a, sum_to(g, a.shape()));
    accumulate_grad(b, sum_to(g, b.shape()));
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, kernels().sub, "sub");
  return record(out, "sub", {a, b}, [a, b](const Tensor& g) {
    accumulate_grad(a, sum_to(g, a.shape()));
    if (b.requires_grad()) accumulate_grad(b, sum_to(neg(g), b.shape()));
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, kernels().mul, "mul");
  return record(out, "mul", {a, b}, [a, b](const Tensor& g) {
    if (a.requires_grad()) accumulate_grad(a, sum_to(mul(g, b.detach()), a.shape()));
    if (b.requires_grad()) accumulate_grad(b, sum_to(mul(g, a.detach()), b.shape()));
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, kernels().div, "div");
  return record(out, "div", {a, b}, [a, b](const Tensor& g) {
    // d(a/b)/da = 1/b,  d(a/b)/db = -a/b^2
    if (a.requires_grad()) accumulate_grad(a, sum_to(div(g, b.detach()), a.shape()));
    if (b.requires_grad()) {
      Tensor bd = b.detach();
      accumulate_grad(b, sum_to(neg(div(mul(g, a.detach()), mul(bd, bd))), b.shape()));
    }
  });
}

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

Tensor neg(const Tensor& x) {
  Tensor out = scalar_forward(x, -1.0f, kernels().mul_scalar);
  return record(out, "neg", {x}, [x](const Tensor& g) { accumulate_grad(x, neg(g)); });
}

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

Tensor exp(const Tensor& x) {
  Tensor out = unary_forward(x, kernels().exp);
  Tensor y = out.detach();  // saved output: d exp(x) = exp(x) dx
  return record(out, "exp", {x}, [x, y](const Tensor& g) { accumulate_grad(x, mul(g, y)); });
}

}  // namespace nl
