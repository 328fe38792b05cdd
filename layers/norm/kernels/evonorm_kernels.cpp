// normlab norms: pick the EvoNorm kernel table for the current SIMD level. See evonorm_kernels.hpp.
#include "layers/norm/kernels/evonorm_kernels.hpp"

namespace nl {
namespace evonorm_scalar { extern const EvoNormKernels evonorm_table; }
namespace evonorm_avx2 { extern const EvoNormKernels evonorm_table; }
namespace evonorm_avx512 { extern const EvoNormKernels evonorm_table; }

const EvoNormKernels& evonorm_kernels_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512: return evonorm_avx512::evonorm_table;
    case SimdLevel::avx2: return evonorm_avx2::evonorm_table;
    default: return evonorm_scalar::evonorm_table;
  }
}

const EvoNormKernels& evonorm_kernels() { return evonorm_kernels_for(simd_level()); }

}  // namespace nl
