// normlab core: shape ops that build new tensors from several inputs.
//
// concat(tensors, dim): inputs agree on every dim but `dim`; the output's `dim` is the sum of
// theirs. Seen as [outer, len_i, inner], input i fills columns [start_i, start_i + len_i) of
// every one of the `outer` rows of length sum(len) * inner: one contiguous copy per row.
// Backward: input i's gradient is the slice [start_i, start_i + len_i) of the output's.
#include <algorithm>

#include "core/autograd.hpp"
#include "core/kernels/kernels.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"

namespace nl {

Tensor concat(const std::vector<Tensor>& tensors, int64_t dim_in) {
  NL_CHECK(!tensors.empty(), "concat: needs at least one tensor");
  const Shape& first = tensors[0].shape();
  NL_CHECK(!first.empty(), "concat: cannot concatenate 0-d tensors (shape [])");
  const int64_t dim = wrap_dim(dim_in, static_cast<int64_t>(first.size()), "concat");
  Shape out_shape = first;
  out_shape[dim] = 0;
  for (const Tensor& t : tensors) {
    bool same = t.dim() == static_cast<int64_t>(first.size());
    for (int64_t i = 0; same && i < t.dim(); ++i) same = i == dim || t.size(i) == first[i];
    NL_CHECK(same, "concat: shapes ", first, " and ", t.shape(), " differ outside dim ", dim);
    out_shape[dim] += t.size(dim);
  }
  Tensor out = Tensor::empty(out_shape);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= out_shape[i];
  for (int64_t i = dim + 1; i < static_cast<int64_t>(out_shape.size()); ++i) inner *= out_shape[i];
  const int64_t out_row = out_shape[dim] * inner;
  const auto copy = kernels().copy;
  std::vector<int64_t> starts;
  int64_t start = 0;
  for (const Tensor& t : tensors) {
    starts.push_back(start);
    const Tensor tc = t.detach().contiguous();
    const int64_t row = t.size(dim) * inner;
    const float* src = tc.data();
    float* dst = out.data() + start * inner;
    if (row > 0)
      parallel_for(outer, std::max<int64_t>(1, (1 << 15) / row), [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) copy(src + o * row, dst + o * out_row, row);
      });
    start += t.size(dim);
  }
  return record(out, "concat", tensors, [tensors, starts, dim](const Tensor& g) {
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!tensors[i].requires_grad()) continue;
      accumulate_grad(tensors[i], g.slice(dim, starts[i], starts[i] + tensors[i].size(dim)).contiguous());
    }
  });
}

}  // namespace nl
