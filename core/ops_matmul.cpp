// normlab core: matrix products on OpenBLAS sgemm, and their gradients.
//
//   matmul:  Y = A B          A [..., M, K], B [..., K, N] -> Y [..., M, N]
//            dA = dY B^T,  dB = A^T dY   (summed over the batch when a side was broadcast)
//   linear:  y = x W^T + b    x [..., in], W [out, in], b [out] -> y [..., out]
//            dX = dY W,  dW = dY^T X,  db = sum of dY over all rows
//
// sgemm reads a matrix either row-major (NoTrans) or column-major (Trans) with a leading
// dimension, so a transposed *view* (strides swapped) is passed as-is with the Trans flag
// instead of being copied. The same trick makes every backward product copy-free:
// B^T is just B's description with the flag flipped.
#include <cblas.h>
#include <omp.h>

#include <algorithm>

#include "core/autograd.hpp"
#include "core/kernels/gemm_few_rows.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"

namespace nl {

NL_SIMD_TABLES(GemmFewRowsKernels, gemm_few_rows_table)

const GemmFewRowsKernels& gemm_few_rows_kernels_for(SimdLevel level) {
  return for_simd_level(level, simd_scalar::gemm_few_rows_table, simd_avx2::gemm_few_rows_table,
                        simd_avx512::gemm_few_rows_table);
}

namespace {

// A stack of `batch` matrices, each rows x cols, as sgemm wants to see it:
// element (i, j) of matrix b is data[b * batch_stride + (trans ? j * ld + i : i * ld + j)].
struct MatView {
  Tensor holder;  // keeps the memory alive (a contiguous copy when the strides did not fit)
  const float* data = nullptr;
  int64_t batch = 1, batch_stride = 0;
  int64_t rows = 0, cols = 0, ld = 1;
  bool trans = false;

  MatView t() const {  // the transpose: same memory, flag flipped
    MatView v = *this;
    std::swap(v.rows, v.cols);
    v.trans = !trans;
    return v;
  }
};

// Describe t ([batch..., rows, cols]) without copying when its strides allow it: the last
// two dims row- or column-major with a valid leading dimension, and the batch dims
// collapsing into one stride. Otherwise a contiguous copy is described.
bool try_describe(const Tensor& t, MatView& v) {
  const int64_t d = t.dim();
  const Shape& sh = t.shape();
  const Shape& st = t.strides();
  v.rows = sh[d - 2];
  v.cols = sh[d - 1];
  const int64_t s0 = st[d - 2], s1 = st[d - 1];
  if ((v.cols == 1 || s1 == 1) && (v.rows == 1 || s0 >= v.cols)) {
    v.trans = false;
    v.ld = v.rows == 1 ? std::max<int64_t>(v.cols, 1) : s0;
  } else if ((v.rows == 1 || s0 == 1) && (v.cols == 1 || s1 >= v.rows)) {
    v.trans = true;
    v.ld = v.cols == 1 ? std::max<int64_t>(v.rows, 1) : s1;
  } else {
    return false;
  }
  v.ld = std::max<int64_t>(v.ld, 1);
  // Batch dims: walk from the innermost outwards; every non-trivial dim must continue the
  // previous one's stride so that one batch index and one stride reach every matrix.
  v.batch = 1;
  v.batch_stride = 0;
  for (int64_t i = d - 3; i >= 0; --i) {
    if (sh[i] == 1) continue;
    if (v.batch == 1) {
      v.batch_stride = st[i];
    } else if (st[i] != v.batch_stride * v.batch) {
      return false;
    }
    v.batch *= sh[i];
  }
  return true;
}

MatView describe(const Tensor& t) {
  MatView v;
  v.holder = t.detach();
  if (!try_describe(v.holder, v)) {
    v.holder = v.holder.contiguous();
    try_describe(v.holder, v);
  }
  v.data = v.holder.data();
  return v;
}

// Below this many multiply-adds a single sgemm is too small for OpenBLAS to thread
// usefully, so a batch of them is split across threads instead (each sgemm then runs
// single-threaded: OpenBLAS called inside an OpenMP region does not spawn threads).
constexpr int64_t kSmallGemm = 1 << 20;
// ...but a thread is only worth waking for at least this many multiply-adds.
constexpr int64_t kMinWorkPerThread = 1 << 16;

// Threading policy for one sgemm: OpenBLAS threads anything above ~256K multiply-adds, but
// on this kind of machine (2 shared cores) waking a sleeping thread costs tens of
// microseconds -- milliseconds when the other core is busy -- so a product gets one thread
// per kMacsPerThread multiply-adds. A sequence model's per-step [16, 256] x [256, 1024]
// (4M) then stays on one thread while the whole-sequence products (100M+) use them all.
// When the threads spin between regions (a quiet machine: core/parallel.hpp) a region costs
// a microsecond or two, and a thread is worth it from kMacsPerThreadSpinning: the LSTM's
// per-step products split too (LSTM training on 2 threads 1.08-1.23x; with the threads
// sleeping and the other core busy the same split lost 6%: docs/performance.md).
// The count depends only on the shape and the wait policy; the bits on neither (below).
constexpr int64_t kMacsPerThread = 1 << 24;
constexpr int64_t kMacsPerThreadSpinning = 1 << 21;

// A product given more than one thread is split here, not by OpenBLAS: C's rows (or its
// columns, when it has fewer rows than columns) in one part per thread, each part a
// single-threaded sgemm inside our own parallel region (OpenBLAS called there does not spawn
// threads). Every element of C is then the same sum of the same products, in the same order,
// as in one single-threaded sgemm: the bits do not depend on the split. OpenBLAS 0.3.21's own
// threading of the sequence models' shapes ([1024, 128..512] x [128..512, ...]) gained
// 1.05-1.9x on 2 threads and lost up to 2x on the LM head ([1024, 65]); this split gained
// 1.6-2.0x on all of them (docs/performance.md, "Splitting sgemm ourselves").
// Parts start at multiples of kSplitAlign rows or columns (whole register tiles).
// Each part (or the whole product) with 3-64 untransposed rows runs in normlab's few-row kernel
// instead of OpenBLAS, which would pack its operands on every call
// (core/kernels/gemm_few_rows.hpp: the recurrent nets' per-step products, 1.4-1.9x).
constexpr int64_t kSplitAlign = 16;

void blas_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc) {
  auto call = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {  // C[r0:r1, c0:c1]
    const float* a_part = a + (ta ? r0 : r0 * lda);
    const float* b_part = b + (tb ? c0 * ldb : c0);
    const GemmFewRowsKernels& few = gemm_few_rows_kernels();  // core/kernels/gemm_few_rows.hpp
    if (!ta && !tb && r1 - r0 >= kGemmFewRowsMin && r1 - r0 <= few.max_rows)
      return few.gemm(r1 - r0, c1 - c0, k, a_part, lda, b_part, ldb, beta, c + r0 * ldc + c0, ldc);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                static_cast<int>(r1 - r0), static_cast<int>(c1 - c0), static_cast<int>(k), 1.0f, a_part,
                static_cast<int>(lda), b_part, static_cast<int>(ldb), beta, c + r0 * ldc + c0, static_cast<int>(ldc));
  };
  const int max_threads = num_threads();
  const int64_t per_thread = threads_spin_between_regions() ? kMacsPerThreadSpinning : kMacsPerThread;
  const int64_t by_work = std::clamp<int64_t>(m * n * k / per_thread, 1, max_threads);
  const bool split_rows = m >= n;
  const int64_t parts = std::min(by_work, ((split_rows ? m : n) + kSplitAlign - 1) / kSplitAlign);
  if (omp_in_parallel() || max_threads == 1) return call(0, m, 0, n);  // OpenBLAS runs on 1 thread then
  if (parts <= 1) {
    // The OpenMP build of OpenBLAS sizes its team by omp_get_max_threads() at each call.
    omp_set_num_threads(1);
    call(0, m, 0, n);
    omp_set_num_threads(max_threads);
    return;
  }
  const int64_t extent = split_rows ? m : n;
  auto bound = [&](int64_t part) {  // start of part `part`, on a multiple of kSplitAlign
    return part == parts ? extent : extent * part / parts / kSplitAlign * kSplitAlign;
  };
  parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t part = p0; part < p1; ++part) {
      const int64_t lo = bound(part), hi = bound(part + 1);
      if (lo == hi) continue;
      if (split_rows) call(lo, hi, 0, n);
      else call(0, m, lo, hi);
    }
  });
}

void sgemm(const MatView& a, int64_t ia, const MatView& b, int64_t ib, float* c, int64_t m, int64_t n, int64_t k,
           float beta) {
  blas_sgemm(a.trans, b.trans, m, n, k, a.data + ia * a.batch_stride, a.ld, b.data + ib * b.batch_stride, b.ld, beta,
             c, n);
}

// C_i = A_i B_i for i < batch, C contiguous [batch, M, N]. A side with batch 1 is reused
// for every i. With sum_over_batch, C = sum_i A_i B_i instead ([M, N]); that is the
// backward of a broadcast side.
void gemm(const MatView& a, const MatView& b, float* c, int64_t batch, bool sum_over_batch) {
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  const int64_t ia = a.batch > 1 ? 1 : 0, ib = b.batch > 1 ? 1 : 0;
  if (m == 0 || n == 0) return;
  if (k == 0 || batch == 0) {
    std::fill(c, c + (sum_over_batch ? 1 : batch) * m * n, 0.0f);
    return;
  }
  // Fold the batch into one big sgemm when memory already lines up:
  //  - B shared, A row-major and tightly stacked: [batch*M, K] x [K, N];
  //  - summing, A^T and B both tightly stacked along K: [M, batch*K] x [batch*K, N].
  if (!sum_over_batch && ib == 0 && !a.trans && (batch == 1 || a.batch_stride == m * a.ld)) {
    sgemm(a, 0, b, 0, c, batch * m, n, k, 0.0f);
    return;
  }
  if (sum_over_batch && a.trans && !b.trans && ia && ib && a.batch_stride == k * a.ld &&
      b.batch_stride == k * b.ld) {
    sgemm(a, 0, b, 0, c, m, n, batch * k, 0.0f);
    return;
  }
  if (sum_over_batch) {
    for (int64_t i = 0; i < batch; ++i) sgemm(a, i * ia, b, i * ib, c, m, n, k, i == 0 ? 0.0f : 1.0f);
    return;
  }
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) sgemm(a, i * ia, b, i * ib, c + i * m * n, m, n, k, 0.0f);
  };
  if (m * n * k < kSmallGemm) {
    parallel_for(batch, std::max<int64_t>(1, kMinWorkPerThread / (m * n * k)), run);
  } else {
    run(0, batch);
  }
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  NL_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: needs tensors of at least 1 dim, got a ", a.shape(), " and b ",
           b.shape());
  // Vectors as in PyTorch: a 1-D left side is a row [1, K], a 1-D right side a column [K, 1];
  // the added dim is dropped again (views, so autograd flows through them).
  // A vector on the left is a one-row matrix; drop that row again (for vector . vector the
  // result of the recursion is [1], and the dot product is a 0-d tensor as in PyTorch).
  if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(b.dim() == 1 ? 0 : -2);
  if (b.dim() == 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);
  NL_CHECK(a.size(-1) == b.size(-2), "matmul: inner dimensions differ: a ", a.shape(), " x b ", b.shape(), " (",
           a.size(-1), " != ", b.size(-2), ")");
  const Shape a_batch(a.shape().begin(), a.shape().end() - 2);
  const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  NL_CHECK(a_batch == b_batch || a.dim() == 2 || b.dim() == 2, "matmul: batch dims must be equal or one side 2-D: a ",
           a.shape(), " x b ", b.shape());
  Shape out_shape = a.dim() >= b.dim() ? a_batch : b_batch;
  const int64_t batch = shape_numel(out_shape);
  out_shape.push_back(a.size(-2));
  out_shape.push_back(b.size(-1));

  Tensor out = Tensor::empty(out_shape);
  gemm(describe(a), describe(b), out.data(), batch, false);

  const bool a_shared = a.dim() == 2 && batch > 1, b_shared = b.dim() == 2 && batch > 1;
  return record(out, "matmul", {a, b}, [a, b, batch, a_shared, b_shared](const Tensor& gy) {
    const MatView g = describe(gy);
    if (a.requires_grad()) {  // dA = dY B^T
      Tensor da = Tensor::empty(a.shape());
      gemm(g, describe(b).t(), da.data(), batch, a_shared);
      accumulate_grad(a, da);
    }
    if (b.requires_grad()) {  // dB = A^T dY
      Tensor db = Tensor::empty(b.shape());
      gemm(describe(a).t(), g, db.data(), batch, b_shared);
      accumulate_grad(b, db);
    }
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  NL_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out, in], got ", weight.shape(), " (input ", x.shape(), ")");
  NL_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ", x.shape(),
           " does not match weight [out, in] = ", weight.shape(), " (last dim must be ", weight.size(1), ")");
  NL_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "linear: bias ",
           bias.defined() ? bias.shape() : Shape{}, " does not match weight ", weight.shape(), " (need [",
           weight.size(0), "])");
  const int64_t in = weight.size(1), out_features = weight.size(0);
  const int64_t rows = x.numel() / std::max<int64_t>(in, 1);
  Shape out_shape = x.shape();
  out_shape.back() = out_features;

  // x as one [rows, in] matrix (a 2-D transposed view is used in place).
  Tensor x2 = x.detach();
  x2 = x2.dim() == 2 ? x2 : x2.contiguous().view({rows, in});
  const MatView xv = describe(x2), wt = describe(weight).t();

  Tensor y = Tensor::empty(out_shape);
  float* py = y.data();
  if (bias.defined()) {
    // Start from the bias in every row and let sgemm add X W^T (beta = 1).
    Tensor bc = bias.detach().contiguous();
    for (int64_t r = 0; r < rows; ++r) std::copy(bc.data(), bc.data() + out_features, py + r * out_features);
    if (in > 0) sgemm(xv, 0, wt, 0, py, rows, out_features, in, 1.0f);
  } else {
    gemm(xv, wt, py, 1, false);
  }

  return record(y, "linear", {x, weight, bias}, [x, weight, bias, x2, rows, in, out_features](const Tensor& gy) {
    const MatView g = describe(gy.contiguous().view({rows, out_features}));
    if (x.requires_grad()) {  // dX = dY W
      Tensor dx = Tensor::empty(x.shape());
      gemm(g, describe(weight), dx.data(), 1, false);
      accumulate_grad(x, dx);
    }
    if (weight.requires_grad()) {  // dW = dY^T X
      Tensor dw = Tensor::empty(weight.shape());
      gemm(g.t(), describe(x2), dw.data(), 1, false);
      accumulate_grad(weight, dw);
    }
    if (bias.defined() && bias.requires_grad()) {  // db = column sums of dY
      Tensor db = Tensor::zeros(bias.shape());
      float* pdb = db.data();
      for (int64_t r = 0; r < rows; ++r) {
        const float* row = g.data + r * out_features;
        for (int64_t j = 0; j < out_features; ++j) pdb[j] += row[j];
      }
      accumulate_grad(bias, db);
    }
  });
}

void gemm_raw(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // an empty sum: C = beta C
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  blas_sgemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace nl
