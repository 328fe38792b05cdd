// normlab norms: evonorm_kernels_impl.inl compiled for the scalar level (flags from the file name).
#define NL_EVONORM_NS evonorm_scalar
#include "layers/norm/kernels/evonorm_kernels_impl.inl"
