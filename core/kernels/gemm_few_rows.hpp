// normlab core: C = A B + beta C for products with few rows (kGemmFewRowsMin <= m <= max_rows)
// and both operands row-major as stored (no transposition), without packing.
//
// Why. OpenBLAS copies ("packs") both operands into its panel layout on every call. That pays
// off when each packed value is used many times; with m = 16 rows (one step of a recurrent
// net at batch 16: h_{t-1} W_hh^T) each value of the large operand B is used only 16 times,
// and packing it cost as much as a third of the product (1 thread, Zen 4: 16 x 1024 x 256 in
// 124-174 us by OpenBLAS, 74-80 us here; 64 x 1024 x 256 1.3x, a CNN's fc dX at batch 32,
// 32 x 2048 x 128, 1.36x, 128 rows 1.2x; small products such as 64 x 32 x 64 within 6%:
// docs/performance.md). This kernel reads B in place instead: for a block of kMR rows of C and
// kNV vectors of columns it keeps kMR x kNV accumulators in registers and walks k, loading kNV
// vectors of B's row p and broadcasting A[i][p] for each row i.
//
//   C[i][j] = sum_p A[i][p] B[p][j]   (p = 0, 1, ..., k-1 in order)  then  + beta C[i][j]
//
// Every element is one sum in that order, so the result does not depend on how the columns
// are split across threads. Written with GCC vector types and compiled once per SIMD level
// like conv3x3 (normlab_simd_kernel in CMakeLists.txt); block sizes differ per level, and so
// may the last bits (an FMA at AVX2/AVX-512, a multiply and an add at the SSE2 level).
#pragma once

#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace nl {

struct GemmFewRowsKernels {
  int vec;  // floats per vector: column splits at multiples of it keep every column block whole
  // The largest m for which core/ops_matmul.cpp uses this kernel instead of OpenBLAS; 0 at the
  // levels where OpenBLAS's own kernels were as fast or faster (docs/performance.md).
  int64_t max_rows;
  // Row-major C[m, n] = A[m, k] B[k, n] + beta C (beta == 0: C is only written), m >= 1.
  void (*gemm)(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
               float* c, int64_t ldc);
};
// ... and from this many rows: OpenBLAS 0.3.21 has a fast path of its own for one and two rows
// (2 x 2048 x 128: 24 us against 37 here, 1 thread; with 3 rows 83 against 33).
constexpr int64_t kGemmFewRowsMin = 3;

const GemmFewRowsKernels& gemm_few_rows_kernels_for(SimdLevel level);
inline const GemmFewRowsKernels& gemm_few_rows_kernels() { return gemm_few_rows_kernels_for(simd_level()); }

}  // namespace nl
