// normlab norms: row_norm_kernels_impl.inl compiled for the avx2 level (flags from the file name).
#define NL_ROWNORM_NS row_norm_avx2
#include "layers/norm/kernels/row_norm_kernels_impl.inl"
