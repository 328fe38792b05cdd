// normlab core: reductions along dims (sum, mean, var, max), softmax and log_softmax.
//
// Sums read the input in place, without permuting it. After dropping size-1 dims and
// merging neighbours, the (contiguous) input is a list of groups, each either reduced or
// kept, e.g. sum over {0, 2, 3} of [N, C, H, W] is [N red][C kept][H*W red]. Then:
//   last group reduced (rows):    out[o] = sum over reduced offsets r of  sum(x + o's offset + r, L)
//   last group kept   (columns):  out[o, :] += x[o's offset + r, :] for every reduced offset r
// (a vector accumulate per row, so a bias gradient [N, C] -> [C] streams through memory once).
// Sums accumulate in double and are split into fixed chunks, combined in a fixed order:
// the same bits for any thread count.
//
//   mean = sum / n
//   var  = sum (x - mean)^2 / (n - 1 if unbiased else n)   two passes: the mean first, so no
//          cancellation as in E[x^2] - E[x]^2.     d var/dx = 2 (x - mean) / (n - ddof)
//   max  along a dim: values; the gradient goes to the first index of the maximum.
//   softmax:     y = exp(x - m) / sum exp(x - m), m = max (so exp never overflows)
//                dx = y * (g - sum(g * y))
//   log_softmax: y = (x - m) - log sum exp(x - m)
//                dx = g - exp(y) * sum(g)
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "core/autograd.hpp"
#include "core/kernels/kernels.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"

namespace nl {

static std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t rank, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    out.resize(rank);
    std::iota(out.begin(), out.end(), 0);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, rank, op));
  std::sort(out.begin(), out.end());
  const auto repeated = std::adjacent_find(out.begin(), out.end());
  NL_CHECK(repeated == out.end(), op, ": dim ", repeated == out.end() ? 0 : *repeated, " is listed twice (input rank ",
           rank, ")");
  return out;
}

static Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    bool reduced = std::binary_search(dims.begin(), dims.end(), i);
    if (!reduced) out.push_back(shape[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

static int64_t reduced_count(const Shape& shape, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= shape[d];
  return n;
}

namespace {
struct Group {
  int64_t size, stride;
  bool reduced;
};

// Offsets of every index combination of the chosen groups, in row-major order.
std::vector<int64_t> group_offsets(const std::vector<Group>& groups) {
  std::vector<int64_t> offsets{0};
  for (const Group& g : groups) {
    std::vector<int64_t> next;
    next.reserve(offsets.size() * g.size);
    for (int64_t base : offsets)
      for (int64_t i = 0; i < g.size; ++i) next.push_back(base + i * g.stride);
    offsets = std::move(next);
  }
  return offsets;
}
}  // namespace

// Elements per parallel work item: enough to amortize the fork.
constexpr int64_t kSumChunk = 1 << 15;

// Sum of x over `dims` (sorted, unique) as a contiguous tensor with keepdim shape.
static Tensor sum_forward(const Tensor& x_in, const std::vector<int64_t>& dims) {
  const Tensor x = x_in.detach().contiguous();
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, true));
  if (out.numel() == 0) return out;
  if (x.numel() == 0) return out.fill_(0.0f);

  // Group the dims (see the file comment).
  std::vector<Group> groups;
  const Shape strides = x.strides();
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (x.size(i) == 1) continue;
    const bool red = std::binary_search(dims.begin(), dims.end(), i);
    if (!groups.empty() && groups.back().reduced == red) {
      groups.back().size *= x.size(i);
      groups.back().stride = strides[i];
    } else {
      groups.push_back({x.size(i), strides[i], red});
    }
  }
  const float* px = x.data();
  float* po = out.data();
  const auto& k = kernels();
  if (groups.empty() || std::none_of(groups.begin(), groups.end(), [](const Group& g) { return g.reduced; })) {
    k.copy(px, po, x.numel());  // nothing of size > 1 is reduced
    return out;
  }

  std::vector<Group> kept, reduced;
  for (const Group& g : groups) (g.reduced ? reduced : kept).push_back(g);
  const int64_t outputs = out.numel();

  if (groups.back().reduced) {
    // Rows: out[o] = sum over reduced offsets r of the contiguous run x[o + r .. + L).
    const int64_t len = reduced.back().size;
    reduced.pop_back();
    const std::vector<int64_t> kept_off = group_offsets(kept), red_off = group_offsets(reduced);
    const int64_t chunks = (len + kSumChunk - 1) / kSumChunk;  // long rows split too
    std::vector<double> partial(outputs * chunks);
    const int64_t work = static_cast<int64_t>(red_off.size()) * std::min(len, kSumChunk);
    parallel_for(outputs * chunks, std::max<int64_t>(1, kSumChunk / work), [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t o = item / chunks, c0 = item % chunks * kSumChunk, n = std::min(len - c0, kSumChunk);
        double s = 0.0;
        for (int64_t r : red_off) s += k.sum(px + kept_off[o] + r + c0, n);
        partial[item] = s;
      }
    });
    for (int64_t o = 0; o < outputs; ++o) {
      double s = 0.0;
      for (int64_t c = 0; c < chunks; ++c) s += partial[o * chunks + c];
      po[o] = static_cast<float>(s);
    }
  } else {
    // Columns: out[o, :] = sum over reduced offsets r of x[o + r, :], in blocks of columns.
    const int64_t cols = kept.back().size;
    kept.pop_back();
    const std::vector<int64_t> kept_off = group_offsets(kept), red_off = group_offsets(reduced);
    constexpr int64_t kBlock = 1024;
    const int64_t blocks = (cols + kBlock - 1) / kBlock;
    const int64_t work = static_cast<int64_t>(red_off.size()) * std::min(cols, kBlock);
    parallel_for(static_cast<int64_t>(kept_off.size()) * blocks, std::max<int64_t>(1, kSumChunk / work),
                 [&](int64_t begin, int64_t end) {
                   double acc[kBlock];
                   for (int64_t item = begin; item < end; ++item) {
                     const int64_t o = item / blocks, c0 = item % blocks * kBlock, n = std::min(cols - c0, kBlock);
                     std::fill(acc, acc + n, 0.0);
                     for (int64_t r : red_off) k.accumulate(px + kept_off[o] + r + c0, acc, n);
                     for (int64_t c = 0; c < n; ++c) po[o * cols + c0 + c] = static_cast<float>(acc[c]);
                   }
                 });
  }
  return out;
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const auto dims = normalize_dims(dims_in, x.dim(), "sum");
  Tensor out = sum_forward(x, dims).view(reduced_shape(x.shape(), dims, keepdim));
  const Shape keep_shape = reduced_shape(x.shape(), dims, true);
  return record(out, "sum", {x}, [x, keep_shape](const Tensor& g) {
    accumulate_grad(x, g.reshape(keep_shape).expand(x.shape()).contiguous());
  });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const auto dims = normalize_dims(dims_in, x.dim(), "mean");
  const int64_t count = reduced_count(x.shape(), dims);
  return mul(sum(x, dims, keepdim), 1.0f / static_cast<float>(std::max<int64_t>(count, 1)));
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims_in, bool unbiased, bool keepdim) {
  const auto dims = normalize_dims(dims_in, x.dim(), "var");
  const int64_t count = reduced_count(x.shape(), dims);
  const float denom = static_cast<float>(count - (unbiased ? 1 : 0));  // 0 gives inf/NaN, as PyTorch
  const Shape keep_shape = reduced_shape(x.shape(), dims, true);
  Tensor mu, out;
  {
    NoGradGuard no_grad;
    const Tensor xd = x.detach();
    // Pass 1: the mean. Pass 2: squared deviations from it.
    mu = mul(sum_forward(xd, dims), 1.0f / static_cast<float>(count));
    const Tensor dev = sub(xd, mu);
    out = mul(sum_forward(mul(dev, dev), dims), 1.0f / denom);
  }
  out = out.view(reduced_shape(x.shape(), dims, keepdim));
  return record(out, "var", {x}, [x, mu, keep_shape, denom](const Tensor& g) {
    accumulate_grad(x, mul(sub(x.detach(), mu), mul(g.reshape(keep_shape), 2.0f / denom)));
  });
}

// A contiguous tensor seen as [outer, len, inner] around dim d.
struct AroundDim {
  int64_t outer = 1, len = 1, inner = 1;
  AroundDim(const Shape& shape, int64_t d) {
    for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
      if (i < d) outer *= shape[i];
      else if (i == d) len = shape[i];
      else inner *= shape[i];
    }
  }
};

Tensor max(const Tensor& x, int64_t dim_in, bool keepdim) {
  const int64_t dim = wrap_dim(dim_in, std::max<int64_t>(x.dim(), 1), "max");
  const Shape shape = x.dim() == 0 ? Shape{1} : x.shape();
  NL_CHECK(shape[dim] > 0, "max: dim ", dim, " of shape ", x.shape(), " is empty");
  const AroundDim v(shape, dim);
  const Tensor xc = x.detach().contiguous();
  const std::vector<int64_t> dims{dim};
  Tensor out = Tensor::empty(reduced_shape(shape, dims, true));
  auto argmax = std::make_shared<std::vector<int64_t>>(v.outer * v.inner);
  const float* px = xc.data();
  float* po = out.data();
  parallel_for(v.outer * v.inner, std::max<int64_t>(1, kSumChunk / v.len), [&](int64_t begin, int64_t end) {
    for (int64_t oi = begin; oi < end; ++oi) {
      const float* p = px + (oi / v.inner) * v.len * v.inner + oi % v.inner;
      int64_t best = 0;
      for (int64_t j = 1; j < v.len; ++j) {
        const float a = p[j * v.inner], b = p[best * v.inner];
        // Strictly greater keeps the first maximum; a NaN wins and stays (as in PyTorch).
        if (a > b || (a != a && b == b)) best = j;
      }
      po[oi] = p[best * v.inner];
      (*argmax)[oi] = best;
    }
  });
  out = out.view(x.dim() == 0 ? Shape{} : reduced_shape(x.shape(), dims, keepdim));
  return record(out, "max", {x}, [x, v, argmax](const Tensor& g) {
    Tensor gx = Tensor::zeros(x.shape());
    const Tensor gc = g.contiguous();
    float* pgx = gx.data();
    const float* pg = gc.data();
    for (int64_t oi = 0; oi < v.outer * v.inner; ++oi)
      pgx[(oi / v.inner) * v.len * v.inner + (*argmax)[oi] * v.inner + oi % v.inner] = pg[oi];
    accumulate_grad(x, gx);
  });
}

// softmax or log_softmax of contiguous x along a dim, as [outer, len, inner].
static Tensor softmax_forward(const Tensor& x_in, int64_t dim, bool log) {
  const Tensor x = x_in.detach().contiguous();
  Tensor out = Tensor::empty(x.shape());
  if (x.numel() == 0) return out;
  const AroundDim v(x.dim() == 0 ? Shape{1} : x.shape(), dim);
  const float* px = x.data();
  float* po = out.data();
  const auto& k = kernels();
  if (v.inner == 1) {
    // Each row is contiguous: max, exp and sum in one fused pass, then scale or shift.
    parallel_for(v.outer, std::max<int64_t>(1, kSumChunk / v.len), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* xr = px + r * v.len;
        float* yr = po + r * v.len;
        const float m = k.max(xr, v.len);
        const double s = k.exp_shift_sum(xr, m, yr, v.len);
        if (log) {
          // (x - m) - log s, not x - (m + log s): x - m is exact near the max.
          k.sub_scalar(xr, m, yr, v.len);
          k.sub_scalar(yr, static_cast<float>(std::log(s)), yr, v.len);
        } else {
          k.mul_scalar(yr, static_cast<float>(1.0 / s), yr, v.len);
        }
      }
    });
    return out;
  }
  // Strided along dim: work on blocks of up to kCols adjacent columns, each a whole vector op.
  constexpr int64_t kCols = 256;
  const int64_t blocks = (v.inner + kCols - 1) / kCols;
  parallel_for(v.outer * blocks, std::max<int64_t>(1, kSumChunk / (v.len * std::min(v.inner, kCols))),
               [&](int64_t begin, int64_t end) {
                 float m[kCols], s[kCols];
                 for (int64_t item = begin; item < end; ++item) {
                   const int64_t o = item / blocks, c0 = item % blocks * kCols, n = std::min(v.inner - c0, kCols);
                   const float* xb = px + o * v.len * v.inner + c0;
                   float* yb = po + o * v.len * v.inner + c0;
                   k.copy(xb, m, n);
                   for (int64_t j = 1; j < v.len; ++j) k.maximum(m, xb + j * v.inner, m, n);
                   k.fill(s, 0.0f, n);
                   for (int64_t j = 0; j < v.len; ++j) {
                     k.sub(xb + j * v.inner, m, yb + j * v.inner, n);
                     k.exp(yb + j * v.inner, yb + j * v.inner, n);
                     k.add(s, yb + j * v.inner, s, n);
                   }
                   if (log) {
                     k.log(s, s, n);
                     for (int64_t j = 0; j < v.len; ++j) {
                       k.sub(xb + j * v.inner, m, yb + j * v.inner, n);
                       k.sub(yb + j * v.inner, s, yb + j * v.inner, n);
                     }
                   } else {
                     k.rdiv_scalar(s, 1.0f, s, n);
                     for (int64_t j = 0; j < v.len; ++j) k.mul(yb + j * v.inner, s, yb + j * v.inner, n);
                   }
                 }
               });
  return out;
}

Tensor softmax(const Tensor& x, int64_t dim_in) {
  const int64_t dim = wrap_dim(dim_in, std::max<int64_t>(x.dim(), 1), "softmax");
  Tensor out = softmax_forward(x, dim, false);
  const Tensor y = out.detach();
  return record(out, "softmax", {x}, [x, y, dim](const Tensor& g) {
    if (x.dim() == 0) return accumulate_grad(x, Tensor::zeros({}));  // softmax of one value is 1
    accumulate_grad(x, mul(y, sub(g, sum(mul(g, y), {dim}, true))));
  });
}

Tensor log_softmax(const Tensor& x, int64_t dim_in) {
  const int64_t dim = wrap_dim(dim_in, std::max<int64_t>(x.dim(), 1), "log_softmax");
  Tensor out = softmax_forward(x, dim, true);
  const Tensor y = out.detach();
  return record(out, "log_softmax", {x}, [x, y, dim](const Tensor& g) {
    if (x.dim() == 0) return accumulate_grad(x, Tensor::zeros({}));
    accumulate_grad(x, sub(g, mul(exp(y), sum(g, {dim}, true))));
  });
}

}  // namespace nl
