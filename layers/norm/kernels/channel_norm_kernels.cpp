// normlab layers: run-time choice of the channel-norm kernel table. See channel_norm_kernels.hpp.
#include "layers/norm/kernels/channel_norm_kernels.hpp"

namespace nl {
NL_SIMD_TABLES(ChannelNormKernelTable, channel_norm_table)

const ChannelNormKernelTable& channel_norm_kernels_for(SimdLevel level) {
  return for_simd_level(level, simd_scalar::channel_norm_table, simd_avx2::channel_norm_table, simd_avx512::channel_norm_table);
}

const ChannelNormKernelTable& channel_norm_kernels() { return channel_norm_kernels_for(simd_level()); }

}  // namespace nl
