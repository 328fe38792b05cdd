// normlab norms: row_norm_kernels_impl.inl compiled for the scalar level (flags from the file name).
#define NL_ROWNORM_NS row_norm_scalar
#include "layers/norm/kernels/row_norm_kernels_impl.inl"
