// normlab core: conv3x3_impl.inl compiled for the scalar level (flags set in CMakeLists.txt).
#define NL_KERNEL_NS kernels_scalar
#include "core/kernels/conv3x3_impl.inl"
