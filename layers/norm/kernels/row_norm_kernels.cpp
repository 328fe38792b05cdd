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
#include <vector>

#include "core/parallel.hpp"

namespace nl {

void row_norm_backward_by_chunks(int64_t R, int64_t D, float* dgamma, float* dbeta,
                                 const std::function<void(int64_t, int64_t, float*, float*)>& fn) {
  const int64_t chunks =
      R * D < 2 * kMinValuesPerThread ? 1 : std::max<int64_t>(1, std::min<int64_t>(num_threads(), R));
  const int64_t block = row_norm_backward_rows(D);
  std::vector<float> dgamma_part(dgamma ? chunks * D : 0, 0.0f), dbeta_part(dbeta ? chunks * D : 0, 0.0f);
  parallel_for(chunks, 1, [&](int64_t c_begin, int64_t c_end) {
    for (int64_t c = c_begin; c < c_end; ++c) {
      float* dg = dgamma ? dgamma_part.data() + c * D : nullptr;
      float* db = dbeta ? dbeta_part.data() + c * D : nullptr;
      const int64_t r_end = R * (c + 1) / chunks;
      for (int64_t r = R * c / chunks; r < r_end; r += block) fn(r, std::min(block, r_end - r), dg, db);
    }
  });
  for (int64_t c = 0; c < chunks; ++c) {  // fixed order: deterministic
    if (dgamma) for (int64_t i = 0; i < D; ++i) dgamma[i] += dgamma_part[c * D + i];
    if (dbeta) for (int64_t i = 0; i < D; ++i) dbeta[i] += dbeta_part[c * D + i];
  }
}

}  // namespace nl
