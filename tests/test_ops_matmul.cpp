// Tests of matmul and linear: hand-computed products, gradchecks on every input (including
// transposed views that take sgemm's Trans path and broadcast batches whose gradient is a
// sum), agreement between the copy-free and the copied paths, and shape errors.
#include <catch2/catch.hpp>

#include "core/autograd.hpp"
#include "core/gradcheck.hpp"
#include "core/kernels/gemm_few_rows.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "tests/support/require_gradcheck.hpp"

using namespace nl;
using nl::test::require_gradcheck;

namespace {

void require_close(const Tensor& a, const Tensor& b, float tol = 1e-5f) {
  REQUIRE(a.shape() == b.shape());
  std::vector<float> va = a.to_vector(), vb = b.to_vector();
  for (size_t i = 0; i < va.size(); ++i) {
    INFO("element " << i);
    REQUIRE(va[i] == Approx(vb[i]).margin(tol));
  }
}

Tensor leaf(const Shape& shape, Generator& gen) { return randn(shape, gen).set_requires_grad(); }

}  // namespace

TEST_CASE("matmul of small matrices matches a hand computation", "[matmul]") {
  Tensor a = Tensor::from_vector({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector({3, 2}, {7, 8, 9, 10, 11, 12});
  // [1 2 3; 4 5 6] [7 8; 9 10; 11 12] = [58 64; 139 154]
  REQUIRE(matmul(a, b).to_vector() == std::vector<float>{58, 64, 139, 154});
  // Transposed views go to sgemm with the Trans flag: a^T a = [17 22 27; 22 29 36; 27 36 45]
  REQUIRE(matmul(a.transpose(0, 1), a).to_vector() == std::vector<float>{17, 22, 27, 22, 29, 36, 27, 36, 45});
  // Vectors: [1 2 3] a^T = [14 32]
  Tensor v = Tensor::from_vector({3}, {1, 2, 3});
  REQUIRE(matmul(v, a.transpose(0, 1)).shape() == Shape{2});
  REQUIRE(matmul(v, a.transpose(0, 1)).to_vector() == std::vector<float>{14, 32});
  REQUIRE(matmul(a, v).to_vector() == std::vector<float>{14, 32});
}

TEST_CASE("matmul gradient by hand: dA = dY B^T, dB = A^T dY", "[matmul]") {
  Tensor a = Tensor::from_vector({1, 2}, {1, 2}).set_requires_grad();
  Tensor b = Tensor::from_vector({2, 1}, {3, 4}).set_requires_grad();
  matmul(a, b).backward(Tensor::from_vector({1, 1}, {2}));
  REQUIRE(a.grad().to_vector() == std::vector<float>{6, 8});
  REQUIRE(b.grad().to_vector() == std::vector<float>{2, 4});
}

TEST_CASE("matmul gradcheck: 2-D, transposed views, vectors", "[matmul][gradcheck]") {
  Generator gen(1);
  Tensor a = leaf({4, 5}, gen), b = leaf({5, 3}, gen), at = leaf({5, 4}, gen), bt = leaf({3, 5}, gen);
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b});
  // Both operands transposed views (Trans/Trans), and each alone.
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return matmul(in[0].transpose(0, 1), in[1].transpose(0, 1)); }, {at, bt});
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0].transpose(0, 1), in[1]); }, {at, b});
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1].transpose(0, 1)); }, {a, bt});
  // A strided slice (neither row- nor column-major) is copied first, and still differentiates.
  Tensor wide = leaf({4, 10}, gen);
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0].slice(1, 0, 10, 2), in[1]); }, {wide, b});
  Tensor v = leaf({5}, gen);
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, v});
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[1], in[0]); }, {b, v});
}

TEST_CASE("batched matmul gradcheck: equal batches, broadcast sides, transposed batches", "[matmul][gradcheck]") {
  Generator gen(2);
  Tensor a = leaf({2, 3, 4, 5}, gen), b = leaf({2, 3, 5, 2}, gen), b2 = leaf({5, 2}, gen), a2 = leaf({4, 5}, gen);
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b});
  // One side 2-D: its gradient is the sum over the other side's batch.
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b2});
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a2, b});
  // Attention-style q k^T with k a transposed batch view.
  Tensor q = leaf({3, 6, 4}, gen), k = leaf({3, 7, 4}, gen);
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1].transpose(-2, -1)); }, {q, k});
  // Batched A transposed with a shared B: A's batches are not tightly stacked rows.
  Tensor qt = leaf({3, 4, 6}, gen), w = leaf({4, 2}, gen);
  require_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0].transpose(-2, -1), in[1]); }, {qt, w});
}

TEST_CASE("batched matmul equals a loop of 2-D products, at 1 and 2 threads", "[matmul]") {
  Generator gen(3);
  Tensor a = randn({16, 8, 12}, gen), b = randn({16, 12, 5}, gen), w = randn({12, 5}, gen);
  const int saved = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Tensor y = matmul(a, b), yw = matmul(a, w);
    for (int64_t i = 0; i < 16; ++i) {
      require_close(y.select(0, i), matmul(a.select(0, i), b.select(0, i)));
      require_close(yw.select(0, i), matmul(a.select(0, i), w));
    }
    // Copy-free transposed views agree with explicit copies.
    Tensor bt = randn({16, 5, 12}, gen);
    require_close(matmul(a, bt.transpose(1, 2)), matmul(a, bt.transpose(1, 2).contiguous()));
  }
  set_num_threads(saved);
}

TEST_CASE("a product split across threads has the bits of one single-threaded sgemm", "[matmul]") {
  // Products large enough for several threads are split into one sgemm per thread by C's rows, or
  // by its columns when it has fewer rows (core/ops_matmul.cpp): each element is the same sum
  // in the same order, so 1, 2 and 3 threads agree bit for bit, for every transposition.
  Generator gen(11);
  struct Case {
    int64_t m, k, n;
  };
  const Case cases[] = {{1000, 200, 200}, {1024, 512, 128}, {16, 512, 4100}, {37, 1024, 1100}};
  const int saved = num_threads();
  for (const Case& c : cases) {
    const Tensor a = randn({c.m, c.k}, gen), b = randn({c.k, c.n}, gen);
    const Tensor a_t = a.transpose(0, 1).contiguous(), b_t = b.transpose(0, 1).contiguous();
    auto products = [&] {
      return std::vector<Tensor>{matmul(a, b), matmul(a_t.transpose(0, 1), b), matmul(a, b_t.transpose(0, 1)),
                                 matmul(a_t.transpose(0, 1), b_t.transpose(0, 1))};
    };
    set_num_threads(1);
    const std::vector<Tensor> one = products();
    for (int threads : {2, 3}) {
      set_num_threads(threads);
      const std::vector<Tensor> many = products();
      for (size_t i = 0; i < one.size(); ++i) {
        INFO("m " << c.m << " k " << c.k << " n " << c.n << ", product " << i << ", " << threads << " threads");
        CHECK(many[i].to_vector() == one[i].to_vector());
      }
    }
    require_close(one[0], one[3], 1e-3f);  // and the four readings are the same product
  }
  set_num_threads(saved);
}

TEST_CASE("the few-rows kernel computes A B + beta C at every SIMD level and leaves the rest alone",
          "[matmul][simd]") {
  // core/kernels/gemm_few_rows.hpp: row counts around its row block, column counts around its
  // vector and block widths (including the zero-padded tail), strided rows, three betas,
  // against a double-precision sum; C's padding past column n must not be touched.
  Generator gen(5);
  const SimdLevel saved = simd_level();
  for (int l = 0; l <= static_cast<int>(best_simd_level()); ++l) {
    const GemmFewRowsKernels& kt = gemm_few_rows_kernels_for(static_cast<SimdLevel>(l));
    for (int64_t m : {1, 3, 7, 8, 9, 17, 64})
      for (int64_t n : {1, 5, 16, 17, 48, 49, 100})
        for (int64_t k : {1, 7, 130})
          for (float beta : {0.0f, 1.0f, 0.5f}) {
            const int64_t lda = k + 3, ldb = n + 2, ldc = n + 5;
            const std::vector<float> a = randn({m, lda}, gen).to_vector(), b = randn({k, ldb}, gen).to_vector();
            std::vector<float> c = randn({m, ldc}, gen).to_vector();
            const std::vector<float> c0 = c;
            kt.gemm(m, n, k, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
            double worst = 0.0;
            int64_t padding_changed = 0;
            for (int64_t i = 0; i < m; ++i) {
              for (int64_t j = 0; j < n; ++j) {
                double sum = 0.0, scale = 0.0;
                for (int64_t p = 0; p < k; ++p) {
                  sum += static_cast<double>(a[i * lda + p]) * b[p * ldb + j];
                  scale += std::fabs(static_cast<double>(a[i * lda + p]) * b[p * ldb + j]);
                }
                if (beta != 0.0f) sum += static_cast<double>(beta) * c0[i * ldc + j];
                worst = std::max(worst, std::fabs(c[i * ldc + j] - sum) / (scale + 1.0));
              }
              for (int64_t j = n; j < ldc; ++j) padding_changed += c[i * ldc + j] != c0[i * ldc + j];
            }
            INFO(simd_level_name(static_cast<SimdLevel>(l)) << " m " << m << " n " << n << " k " << k << " beta "
                                                            << beta);
            REQUIRE(worst < 1e-6);
            REQUIRE(padding_changed == 0);
          }
  }
  set_simd_level(saved);
}

TEST_CASE("few-row products give the same bits however their columns are split", "[matmul]") {
  // What lets ops_matmul.cpp split a few-row product across threads by columns: each element
  // is the same sum in the same order whether its columns are computed in one call or in
  // parts starting at multiples of the kernel's vector, and whichever block width covers them.
  Generator gen(9);
  const GemmFewRowsKernels& kt = gemm_few_rows_kernels();
  const int64_t m = 16, n = 1000, k = 256;
  const std::vector<float> a = randn({m, k}, gen).to_vector(), b = randn({k, n}, gen).to_vector();
  std::vector<float> whole(m * n), parts(m * n);
  kt.gemm(m, n, k, a.data(), k, b.data(), n, 0.0f, whole.data(), n);
  for (int64_t j0 = 0; j0 < n;) {
    const int64_t j1 = std::min(n, j0 + kt.vec * (1 + j0 % 5));  // parts of 1..5 vectors
    kt.gemm(m, j1 - j0, k, a.data(), k, b.data() + j0, n, 0.0f, parts.data() + j0, n);
    j0 = j1;
  }
  REQUIRE(parts == whole);
  // and matmul takes this path at the levels that use it (kGemmFewRowsMin <= m <= max_rows)
  const Tensor c = matmul(Tensor::from_vector({m, k}, a), Tensor::from_vector({k, n}, b));
  if (m >= kGemmFewRowsMin && m <= kt.max_rows) REQUIRE(c.to_vector() == whole);
}

TEST_CASE("matmul rejects mismatched shapes naming both", "[matmul][errors]") {
  REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                      Catch::Contains("matmul") && Catch::Contains("[2, 3]") && Catch::Contains("[4, 5]"));
  REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})),
                      Catch::Contains("batch") && Catch::Contains("[2, 2, 3]") && Catch::Contains("[3, 3, 4]"));
  REQUIRE_THROWS_AS(matmul(Tensor::scalar(1), Tensor::zeros({2})), Error);
}

TEST_CASE("linear by hand, with and without bias", "[linear]") {
  Tensor x = Tensor::from_vector({2, 2}, {1, 2, 3, 4});
  Tensor w = Tensor::from_vector({3, 2}, {1, 0, 0, 1, 1, 1});
  Tensor b = Tensor::from_vector({3}, {10, 20, 30});
  REQUIRE(linear(x, w, b).to_vector() == std::vector<float>{11, 22, 33, 13, 24, 37});
  REQUIRE(linear(x, w).to_vector() == std::vector<float>{1, 2, 3, 3, 4, 7});
}

TEST_CASE("linear gradcheck on input, weight and bias", "[linear][gradcheck]") {
  Generator gen(4);
  Tensor x = leaf({2, 3, 6}, gen), w = leaf({4, 6}, gen), b = leaf({4}, gen);
  require_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b});
  require_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {x, w});
  // A transposed 2-D input and a transposed weight view (tied weights), both copy-free.
  Tensor xt = leaf({6, 5}, gen), wt = leaf({6, 4}, gen);
  require_gradcheck(
      [](const std::vector<Tensor>& in) { return linear(in[0].transpose(0, 1), in[1].transpose(0, 1), in[2]); },
      {xt, wt, b});
  // A 1-D input is one row.
  Tensor v = leaf({6}, gen);
  require_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {v, w, b});
}

TEST_CASE("linear gradients accumulate into existing .grad", "[linear]") {
  Tensor x = Tensor::from_vector({1, 2}, {1, 2});
  Tensor w = Tensor::from_vector({1, 2}, {3, 4}).set_requires_grad();
  Tensor b = Tensor::from_vector({1}, {0}).set_requires_grad();
  sum(linear(x, w, b)).backward();
  sum(linear(x, w, b)).backward();
  REQUIRE(w.grad().to_vector() == std::vector<float>{2, 4});
  REQUIRE(b.grad().to_vector() == std::vector<float>{2});
}

TEST_CASE("linear rejects mismatched shapes naming both", "[linear][errors]") {
  REQUIRE_THROWS_WITH(linear(Tensor::zeros({2, 5}), Tensor::zeros({3, 4})),
                      Catch::Contains("linear") && Catch::Contains("[2, 5]") && Catch::Contains("[3, 4]"));
  REQUIRE_THROWS_WITH(linear(Tensor::zeros({2, 4}), Tensor::zeros({3, 4}), Tensor::zeros({2})),
                      Catch::Contains("bias") && Catch::Contains("[2]") && Catch::Contains("[3, 4]"));
}
