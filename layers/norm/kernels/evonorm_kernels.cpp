// normlab norms: pick the EvoNorm kernel table for the current SIMD level. See evonorm_kernels.hpp.
#include "layers/norm/kernels/evonorm_kernels.hpp"

namespace nl {
NL_SIMD_TABLES(EvoNormKernels, evonorm_table)

const EvoNormKernels& evonorm_kernels_for(SimdLevel level) {
  return for_simd_level(level, simd_scalar::evonorm_table, simd_avx2::evonorm_table, simd_avx512::evonorm_table);
}

const EvoNormKernels& evonorm_kernels() { return evonorm_kernels_for(simd_level()); }

}  // namespace nl
