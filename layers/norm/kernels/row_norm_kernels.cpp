// normlab norms: pick the row-kernel table for the current SIMD level. See row_norm_kernels.hpp.
#include "layers/norm/kernels/row_norm_kernels.hpp"

namespace nl {
NL_SIMD_TABLES(RowNormKernels, row_norm_table)

const RowNormKernels& row_norm_kernels_for(SimdLevel level) {
  return for_simd_level(level, simd_scalar::row_norm_table, simd_avx2::row_norm_table, simd_avx512::row_norm_table);
}

const RowNormKernels& row_norm_kernels() { return row_norm_kernels_for(simd_level()); }

}  // namespace nl

#include <algorithm>

#include "core/parallel.hpp"

namespace nl {

int64_t row_norm_chunks(int64_t rows, int64_t row_len) {
  if (rows * row_len < 2 * kMinValuesPerThread) return 1;
  return std::max<int64_t>(1, std::min<int64_t>(num_threads(), rows));
}

}  // namespace nl
