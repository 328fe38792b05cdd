// normlab norms: evonorm_kernels_impl.inl compiled for the avx512 level (flags from the file name).
#define NL_EVONORM_NS evonorm_avx512
#include "layers/norm/kernels/evonorm_kernels_impl.inl"
