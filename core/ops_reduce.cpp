// normlab core: reductions along dims (sum, mean, var, max), softmax and log_softmax.
//
// A reduction over a set of dims is computed by viewing the (contiguous) input as
// [outer, reduced, inner] blocks when the reduced dims are adjacent, otherwise by permuting
// the reduced dims to the end first. Sums accumulate in double.
#include <algorithm>
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
  NL_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, ": repeated dim");
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

// Sum of x over `dims` (sorted, unique) as a contiguous tensor with keepdim shape.
static Tensor sum_forward(const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t rank = x.dim();
  // Move reduced dims to the end: [kept..., reduced...], then sum each row.
  Shape perm;
  for (int64_t i = 0; i < rank; ++i)
    if (!std::binary_search(dims.begin(), dims.end(), i)) perm.push_back(i);
  for (int64_t d : dims) perm.push_back(d);
  Tensor xp = x.detach().permute(perm).contiguous();
  int64_t row = 1;
  for (int64_t d : dims) row *= x.size(d);
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, true));
  const int64_t rows = out.numel();
  const float* px = xp.data();
  float* po = out.data();
  const auto sum_kernel = kernels().sum;
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(row, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) po[r] = static_cast<float>(sum_kernel(px + r * row, row));
  });
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
  int64_t count = 1;
  for (int64_t d : dims) count *= x.size(d);
  return mul(sum(x, dims, keepdim), 1.0f / static_cast<float>(std::max<int64_t>(count, 1)));
}

}  // namespace nl
