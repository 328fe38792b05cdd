// normlab core: the few-rows GEMM kernel (see gemm_few_rows.hpp), written once with GCC vector
// types and compiled once per SIMD level (normlab_simd_kernel in CMakeLists.txt).
//
// Expects: NL_SIMD_NS, this level's namespace (simd_scalar | simd_avx2 | simd_avx512), defined by
// the translation unit normlab_simd_kernel (CMakeLists.txt) generates for each level.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "core/kernels/gemm_few_rows.hpp"

namespace nl::NL_SIMD_NS {
namespace {

#include "core/kernels/vector_impl.inl"

// Accumulators kMR x kNV plus kNV loads and a broadcast must fit the register file (32 zmm for
// AVX-512, 16 ymm / xmm otherwise).
// The AVX-512 block was chosen by measurement (normlab_bench lm_gemm, 1 thread, Zen 4): 4 x 4
// vectors ran 16 x 1024 x 256 in 74 us, 8 x 2 in 83, 4 x 3 in 80, 8 x 3 in 95-112 (GCC spills
// there), 5 x 4 in 97. At AVX2 the best tried (6 x 2) was 0.95-1.1x OpenBLAS, and SSE2 is
// slower still, so those levels keep OpenBLAS (max_rows 0) and this code for tests only.
#if defined(__AVX512F__)
constexpr int kMR = 4, kNV = 4;
constexpr int64_t kMaxRows = 64;
#elif defined(__AVX2__)
constexpr int kMR = 6, kNV = 2;
constexpr int64_t kMaxRows = 0;
#else
constexpr int kMR = 4, kNV = 2;
constexpr int64_t kMaxRows = 0;
#endif

// C[MR rows, NV vectors] = A[MR, k] B[k, NV vectors] + beta C.
template <int MR, int NV>
inline void block(const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                  int64_t k) {
  vf acc[MR][NV] = {};
  for (int64_t p = 0; p < k; ++p) {
    vf bp[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bp[j] = load(b + p * ldb + j * kVec);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const float aip = a[i * lda + p];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] += aip * bp[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) {
      float* out = c + i * ldc + j * kVec;
      store(out, beta == 0.0f ? acc[i][j] : acc[i][j] + beta * load(out));
    }
}

// MR rows of C, all n columns: blocks of kNV vectors, then single vectors, then the last
// n % kVec columns through a zero-padded copy of B's last columns (so they are vector code too).
template <int MR>
void rows(int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc, const float* tail_b) {
  int64_t j = 0;
  for (; j + kNV * kVec <= n; j += kNV * kVec) block<MR, kNV>(a, lda, b + j, ldb, beta, c + j, ldc, k);
  for (; j + kVec <= n; j += kVec) block<MR, 1>(a, lda, b + j, ldb, beta, c + j, ldc, k);
  if (j == n) return;
  const int64_t rest = n - j;
  float tail_c[MR * kVec] = {};
  for (int i = 0; i < MR; ++i)
    for (int64_t q = 0; q < rest; ++q) tail_c[i * kVec + q] = c[i * ldc + j + q];
  block<MR, 1>(a, lda, tail_b, kVec, beta, tail_c, kVec, k);
  for (int i = 0; i < MR; ++i)
    for (int64_t q = 0; q < rest; ++q) c[i * ldc + j + q] = tail_c[i * kVec + q];
}

// The m % kMR last rows, one instantiation per count.
template <int MR>
void last_rows(int64_t r, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
               float* c, int64_t ldc, const float* tail_b) {
  if constexpr (MR > 0) {
    if (r == MR) return rows<MR>(n, k, a, lda, b, ldb, beta, c, ldc, tail_b);
    last_rows<MR - 1>(r, n, k, a, lda, b, ldb, beta, c, ldc, tail_b);
  }
}

void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
          float* c, int64_t ldc) {
  const int64_t rest = n % kVec;
  std::vector<float> tail_b;  // B's last `rest` columns, zero-padded to one vector per row
  if (rest) {
    tail_b.assign(k * kVec, 0.0f);
    for (int64_t p = 0; p < k; ++p)
      for (int64_t q = 0; q < rest; ++q) tail_b[p * kVec + q] = b[p * ldb + n - rest + q];
  }
  int64_t i = 0;
  for (; i + kMR <= m; i += kMR) rows<kMR>(n, k, a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc, tail_b.data());
  if (i < m) last_rows<kMR - 1>(m - i, n, k, a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc, tail_b.data());
}

}  // namespace

extern const GemmFewRowsKernels gemm_few_rows_table;
const GemmFewRowsKernels gemm_few_rows_table = {kVec, kMaxRows, gemm};

}  // namespace nl::NL_SIMD_NS
