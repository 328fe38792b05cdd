// Tests of the direct 3x3 convolution path of conv2d (stride 1, padding 1; core/kernels/conv3x3.hpp):
// output and all three gradients against plain-loop definitions (double accumulation), at
// every SIMD level this CPU has, with each algorithm forced (the direct kernel, Winograd
// F(2x2, 3x3) where H and W are even, the automatic choice), on awkward shapes (1x1 images,
// odd widths, channel counts that are not multiples of the kernels' blocks, more columns or
// tiles than one vector, blocks of tile rows that span samples), and the same bits for any
// thread count. Also the 2x2 stride-2 max pool's own loops (core/ops_pool.cpp)
// against the window definition, with ties, NaNs and odd sizes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <catch2/catch.hpp>

#include "core/autograd.hpp"
#include "core/kernels/kernels.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"

using namespace nl;

namespace {

Conv2dOptions same3x3() {
  Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  return o;
}

// The sums of a 3x3 "same" convolution, written as loops: y, and for a given dy the three
// gradients (dx[n,ci,i,j] = sum dy[n,co,i-kh+1,j-kw+1] w[co,ci,kh,kw]; dW, db likewise).
struct Reference {
  std::vector<double> y, dx, dw, db;
};

Reference reference(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy) {
  const int64_t n = x.size(0), cin = x.size(1), h = x.size(2), wd = x.size(3), cout = w.size(0);
  const std::vector<float> vx = x.to_vector(), vw = w.to_vector(), vb = b.to_vector(), vg = dy.to_vector();
  Reference r;
  r.y.assign(n * cout * h * wd, 0.0), r.dx.assign(vx.size(), 0.0), r.dw.assign(vw.size(), 0.0), r.db.assign(cout, 0.0);
  for (int64_t s = 0; s < n; ++s)
    for (int64_t co = 0; co < cout; ++co)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < wd; ++j) {
          const int64_t yi = ((s * cout + co) * h + i) * wd + j;
          r.y[yi] += vb[co];
          r.db[co] += vg[yi];
          for (int64_t ci = 0; ci < cin; ++ci)
            for (int64_t kh = 0; kh < 3; ++kh)
              for (int64_t kw = 0; kw < 3; ++kw) {
                const int64_t iy = i + kh - 1, ix = j + kw - 1;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                const int64_t xi = ((s * cin + ci) * h + iy) * wd + ix, wi = ((co * cin + ci) * 3 + kh) * 3 + kw;
                r.y[yi] += static_cast<double>(vx[xi]) * vw[wi];
                r.dx[xi] += static_cast<double>(vg[yi]) * vw[wi];
                r.dw[wi] += static_cast<double>(vg[yi]) * vx[xi];
              }
        }
  return r;
}

void require_close(const Tensor& actual, const std::vector<double>& expected, const char* what) {
  const std::vector<float> a = actual.to_vector();
  REQUIRE(a.size() == expected.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(what << " element " << i);
    REQUIRE(a[i] == Approx(expected[i]).margin(2e-4).epsilon(1e-4));
  }
}

struct Case {
  int64_t n, cin, cout, h, w;
};

const Conv3x3Algorithm kAlgorithms[] = {Conv3x3Algorithm::direct, Conv3x3Algorithm::winograd,
                                        Conv3x3Algorithm::automatic};

const char* name(Conv3x3Algorithm a) {
  return a == Conv3x3Algorithm::direct ? "direct" : a == Conv3x3Algorithm::winograd ? "winograd" : "automatic";
}

}  // namespace

TEST_CASE("3x3 conv2d matches the definition at every SIMD level and with each algorithm, awkward shapes",
          "[conv][simd]") {
  const std::vector<Case> cases = {
      {1, 1, 1, 1, 1},   {2, 1, 32, 28, 28},  {2, 3, 5, 7, 9},      {3, 17, 13, 5, 31},  {1, 2, 9, 3, 40},
      {2, 4, 3, 1, 17},  {1, 32, 64, 14, 14}, {2, 64, 19, 8, 8},    {1, 5, 2, 11, 1},    {1, 3, 7, 4, 40},
      {7, 9, 11, 4, 6},  {2, 33, 17, 2, 2},   {3, 16, 40, 16, 16},  {1, 40, 33, 2, 70},  {4, 64, 64, 8, 8},
      // Winograd packs 4 tile rows into a vector where kVec is 4 rows' tiles and 2 where two
      // rows fit (7 tiles of a 14x14 map above, 3, 5, 6 here): odd counts of tile rows leave a
      // partial group (9 rows of 4 tiles, 5 of 8, 3 of 2, 15 of 5, 7 of 7).
      {3, 17, 20, 6, 8}, {1, 20, 24, 10, 16}, {2, 18, 16, 6, 4}, {2, 16, 8, 6, 6}, {3, 16, 12, 10, 10},
      {1, 17, 9, 12, 12},
  };
  const SimdLevel saved = simd_level();
  for (const Case& c : cases) {
    Generator gen(c.n * 1000 + c.cin * 100 + c.cout * 10 + c.w);
    Tensor x = randn({c.n, c.cin, c.h, c.w}, gen).set_requires_grad();
    Tensor w = randn({c.cout, c.cin, 3, 3}, gen).set_requires_grad();
    Tensor b = randn({c.cout}, gen).set_requires_grad();
    Tensor dy = randn({c.n, c.cout, c.h, c.w}, gen);
    const Reference r = reference(x, w, b, dy);
    for (int l = 0; l <= static_cast<int>(best_simd_level()); ++l)
      for (Conv3x3Algorithm algorithm : kAlgorithms) {
        set_simd_level(static_cast<SimdLevel>(l));
        set_conv3x3_algorithm(algorithm);
        INFO("level " << simd_level_name(simd_level()) << ", " << name(algorithm) << ", x [" << c.n << ", " << c.cin
                      << ", " << c.h << ", " << c.w << "], cout " << c.cout);
        x.zero_grad(), w.zero_grad(), b.zero_grad();
        Tensor y = conv2d(x, w, b, same3x3());
        y.backward(dy);
        require_close(y, r.y, "y");
        require_close(x.grad(), r.dx, "dx");
        require_close(w.grad(), r.dw, "dw");
        require_close(b.grad(), r.db, "db");
      }
  }
  set_simd_level(saved);
  set_conv3x3_algorithm(Conv3x3Algorithm::automatic);
}

TEST_CASE("Winograd 3x3 conv2d differs from the direct kernel only by rounding", "[conv]") {
  // Forward and both gradients of both algorithms on a ResNet-20 shape, compared elementwise
  // against the outputs' scale: Winograd's transforms cost a few ulps more, no more (a wrong
  // transform coefficient shows as errors of the outputs' own size).
  Generator gen(23);
  Tensor x = randn({4, 64, 8, 8}, gen).set_requires_grad(), w = randn({64, 64, 3, 3}, gen).set_requires_grad();
  Tensor dy = randn({4, 64, 8, 8}, gen);
  auto run = [&](Conv3x3Algorithm algorithm) {
    set_conv3x3_algorithm(algorithm);
    x.zero_grad(), w.zero_grad();
    Tensor y = conv2d(x, w, Tensor(), same3x3());
    y.backward(dy);
    return std::vector<std::vector<float>>{y.to_vector(), x.grad().to_vector(), w.grad().to_vector()};
  };
  const auto direct = run(Conv3x3Algorithm::direct), winograd = run(Conv3x3Algorithm::winograd);
  set_conv3x3_algorithm(Conv3x3Algorithm::automatic);
  for (int i = 0; i < 3; ++i) {
    const std::vector<float>&a = direct[i], &b = winograd[i];
    double max_diff = 0.0, sum_sq = 0.0;
    for (size_t j = 0; j < a.size(); ++j) {
      max_diff = std::max(max_diff, std::abs(static_cast<double>(a[j]) - b[j]));
      sum_sq += static_cast<double>(a[j]) * a[j];
    }
    // y, dx: sums of 576 unit-variance terms (rms ~20); dw: of 256 (rms ~16)
    const double rms = std::sqrt(sum_sq / a.size());
    INFO((i == 0 ? "y" : i == 1 ? "dx" : "dw") << ": max |direct - winograd| " << max_diff << ", rms " << rms);
    REQUIRE(max_diff > 0.0);         // two different computations, not one called twice
    REQUIRE(max_diff < 1e-5 * rms);  // fp32 rounding
  }
}

TEST_CASE("direct 3x3 conv2d without bias, and with an input that needs no gradient", "[conv]") {
  Generator gen(5);
  Tensor x = randn({2, 3, 6, 10}, gen), w = randn({7, 3, 3, 3}, gen).set_requires_grad();
  Tensor dy = randn({2, 7, 6, 10}, gen);
  const Reference r = reference(x, w, Tensor::zeros({7}), dy);
  Tensor y = conv2d(x, w, Tensor(), same3x3());
  y.backward(dy);
  require_close(y, r.y, "y");
  require_close(w.grad(), r.dw, "dw");
  REQUIRE_FALSE(x.grad().defined());
}

TEST_CASE("3x3 conv2d gives the same bits for 1 and 2 threads, with each algorithm", "[conv]") {
  Generator gen(17);
  // Even H and W, so that Winograd applies; 5 samples of 5 tile rows split into uneven blocks.
  Tensor x = randn({5, 6, 10, 12}, gen).set_requires_grad(), w = randn({10, 6, 3, 3}, gen).set_requires_grad();
  Tensor b = randn({10}, gen).set_requires_grad();
  Tensor dy = randn({5, 10, 10, 12}, gen);
  auto run = [&](int threads) {
    set_num_threads(threads);
    x.zero_grad(), w.zero_grad(), b.zero_grad();
    Tensor y = conv2d(x, w, b, same3x3());
    y.backward(dy);
    return std::vector<std::vector<float>>{y.to_vector(), x.grad().to_vector(), w.grad().to_vector(),
                                           b.grad().to_vector()};
  };
  const int saved = num_threads();
  for (Conv3x3Algorithm algorithm : kAlgorithms) {
    INFO(name(algorithm));
    set_conv3x3_algorithm(algorithm);
    auto one = run(1), two = run(2);
    for (int i = 0; i < 4; ++i) REQUIRE(one[i] == two[i]);
  }
  set_num_threads(saved);
  set_conv3x3_algorithm(Conv3x3Algorithm::automatic);
}

TEST_CASE("2x2 stride-2 max_pool2d matches the window definition with ties, NaNs and odd sizes, every SIMD level",
          "[pool][simd]") {
  // Rows of outputs shorter than, as long as, and longer than a vector at each level (7, 14,
  // 16, 32, 33 windows), odd last rows and columns.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{4, 4},   {5, 7},  {28, 28}, {3, 2},  {2, 33},
                                                           {14, 14}, {4, 32}, {3, 64},  {2, 66}, {5, 67}};
  const SimdLevel saved = simd_level();
  for (int level = 0; level <= static_cast<int>(best_simd_level()); ++level) for (const auto& [h, w] : shapes) {
    set_simd_level(static_cast<SimdLevel>(level));
    INFO("level " << simd_level_name(simd_level()) << ", plane " << h << " x " << w);
    Generator gen(h * 100 + w);
    std::vector<float> v = randn({2, 3, h, w}, gen).to_vector();
    for (size_t i = 0; i < v.size(); i += 7) v[i] = std::round(v[i]);  // ties
    for (size_t i = 5; i < v.size(); i += 23) v[i] = std::numeric_limits<float>::quiet_NaN();
    Tensor x = Tensor::from_vector({2, 3, h, w}, v).set_requires_grad();
    Tensor gy = randn({2, 3, h / 2, w / 2}, gen);
    Tensor y = max_pool2d(x, 2);
    y.backward(gy);
    const std::vector<float> vy = y.to_vector(), vg = gy.to_vector(), dx = x.grad().to_vector();
    std::vector<float> ref_dx(v.size(), 0.0f);
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t i = 0; i < h / 2; ++i)
        for (int64_t j = 0; j < w / 2; ++j) {
          float best = -std::numeric_limits<float>::infinity();
          int64_t at = p * h * w + 2 * i * w + 2 * j;
          for (int64_t a = 0; a < 2; ++a)
            for (int64_t b = 0; b < 2; ++b) {
              const int64_t k = p * h * w + (2 * i + a) * w + 2 * j + b;
              if (v[k] > best || std::isnan(v[k])) best = v[k], at = k;
            }
          const int64_t o = (p * (h / 2) + i) * (w / 2) + j;
          INFO("plane " << p << " output " << i << ", " << j);
          REQUIRE((std::isnan(best) ? std::isnan(vy[o]) : vy[o] == best));
          ref_dx[at] += vg[o];
        }
    REQUIRE(dx == ref_dx);
  }
  set_simd_level(saved);
}
