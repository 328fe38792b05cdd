// normlab norms: the ReLU that a norm kernel applies inside its own pass (BN, GN, IN and LN +
// ReLU fused; make_norm_act builds them). Written exactly as core's relu and relu_backward
// (v > 0 ? v : 0, so a NaN becomes 0 in both): fused and run as two ops give the same bits. The
// backward masks dy by the sign of the pre-ReLU value v, recomputed from x by the forward's own
// expression (the same bits, so the same sign as the output's) instead of reading the saved
// output: one stream less in each backward pass.
//
// Included inside nl::NL_SIMD_NS by channel_norm_kernels_impl.inl and row_norm_kernels_impl.inl,
// so each SIMD level's translation unit has its own copy.
static inline float relu_of(float v) { return v > 0.0f ? v : 0.0f; }
static inline float relu_grad(float v, float g) { return v > 0.0f ? g : 0.0f; }
