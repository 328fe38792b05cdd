// normlab layers: run-time choice of the channel-norm kernel table. See channel_norm_kernels.hpp.
#include "layers/norm/kernels/channel_norm_kernels.hpp"

namespace nl {
namespace channel_norm_kernels_scalar { extern const ChannelNormKernelTable channel_norm_table; }
namespace channel_norm_kernels_avx2 { extern const ChannelNormKernelTable channel_norm_table; }
namespace channel_norm_kernels_avx512 { extern const ChannelNormKernelTable channel_norm_table; }

const ChannelNormKernelTable& channel_norm_kernels_for(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512: return channel_norm_kernels_avx512::channel_norm_table;
    case SimdLevel::avx2: return channel_norm_kernels_avx2::channel_norm_table;
    default: return channel_norm_kernels_scalar::channel_norm_table;
  }
}

const ChannelNormKernelTable& channel_norm_kernels() { return channel_norm_kernels_for(simd_level()); }

}  // namespace nl
