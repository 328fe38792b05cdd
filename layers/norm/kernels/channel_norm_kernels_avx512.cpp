// normlab layers: channel_norm_kernels_impl.inl compiled for the avx512 level (flags by file name, CMakeLists.txt).
#define NL_KERNEL_NS channel_norm_kernels_avx512
#include "layers/norm/kernels/channel_norm_kernels_impl.inl"
