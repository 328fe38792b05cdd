// normlab core: conv3x3_impl.inl compiled for the avx2 level (flags set in CMakeLists.txt).
#define NL_KERNEL_NS kernels_avx2
#include "core/kernels/conv3x3_impl.inl"
