// Tests of conv2d and pooling: hand-computed outputs, gradchecks on input, weight and bias
// (stride, padding, dilation, groups, depthwise, 1x1; overlapping and padded pooling windows),
// a direct-loop reference convolution, thread-count determinism, and shape errors.
#include <catch2/catch.hpp>

#include "core/autograd.hpp"
#include "core/gradcheck.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "tests/support/require_gradcheck.hpp"

using namespace nl;
using nl::test::require_gradcheck;

namespace {

Tensor leaf(const Shape& shape, Generator& gen) { return randn(shape, gen).set_requires_grad(); }

// The definition of a convolution, written as plain loops (double accumulation).
Tensor reference_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  const int64_t n = x.size(0), cin = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t cout = w.size(0), cg = w.size(1), kh = w.size(2), kw = w.size(3);
  const int64_t oh = (h + 2 * o.pad_h - o.dilation_h * (kh - 1) - 1) / o.stride_h + 1;
  const int64_t ow = (wd + 2 * o.pad_w - o.dilation_w * (kw - 1) - 1) / o.stride_w + 1;
  const int64_t cog = cout / o.groups;
  (void)cin;
  std::vector<float> out;
  for (int64_t s = 0; s < n; ++s)
    for (int64_t co = 0; co < cout; ++co)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t xo = 0; xo < ow; ++xo) {
          double acc = b.defined() ? b.at({co}) : 0.0;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t iy = y * o.stride_h - o.pad_h + i * o.dilation_h;
                const int64_t ix = xo * o.stride_w - o.pad_w + j * o.dilation_w;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += static_cast<double>(x.at({s, (co / cog) * cg + c, iy, ix})) * w.at({co, c, i, j});
              }
          out.push_back(static_cast<float>(acc));
        }
  return Tensor::from_vector({n, cout, oh, ow}, out);
}

void require_close(const Tensor& a, const Tensor& b, float tol = 1e-4f) {
  REQUIRE(a.shape() == b.shape());
  std::vector<float> va = a.to_vector(), vb = b.to_vector();
  for (size_t i = 0; i < va.size(); ++i) {
    INFO("element " << i);
    REQUIRE(va[i] == Approx(vb[i]).margin(tol));
  }
}

Conv2dOptions opts(int64_t stride, int64_t pad, int64_t dilation = 1, int64_t groups = 1) {
  Conv2dOptions o;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = pad;
  o.dilation_h = o.dilation_w = dilation;
  o.groups = groups;
  return o;
}

}  // namespace

TEST_CASE("conv2d of a small image matches a hand computation", "[conv]") {
  // 3x3 image 1..9, 2x2 kernel [1 0; 0 -1] (x[i,j] - x[i+1,j+1] = -4 everywhere), bias 1.
  Tensor x = Tensor::from_vector({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = Tensor::from_vector({1, 1, 2, 2}, {1, 0, 0, -1});
  Tensor b = Tensor::from_vector({1}, {1});
  REQUIRE(conv2d(x, w, b).to_vector() == std::vector<float>{-3, -3, -3, -3});
  // Padding 1, stride 2: outputs at (-1,-1), (-1,1), (1,-1), (1,1) of the padded image.
  REQUIRE(conv2d(x, w, Tensor(), opts(2, 1)).to_vector() == std::vector<float>{-1, -3, -7, -4});
  // Gradient of sum(y) w.r.t. the kernel: each tap sums the pixels it saw.
  Tensor wl = w.clone().set_requires_grad();
  sum(conv2d(x, wl, Tensor())).backward();
  REQUIRE(wl.grad().to_vector() == std::vector<float>{12, 16, 24, 28});
}

TEST_CASE("conv2d agrees with a direct-loop reference for every option", "[conv]") {
  Generator gen(11);
  struct Case {
    Shape x, w;
    Conv2dOptions o;
  };
  std::vector<Case> cases = {
      {{2, 3, 9, 8}, {4, 3, 3, 3}, opts(1, 1)},        {{2, 3, 9, 8}, {4, 3, 3, 3}, opts(2, 1)},
      {{2, 4, 9, 9}, {6, 2, 3, 3}, opts(1, 2, 2, 2)},  {{3, 4, 7, 7}, {4, 1, 3, 3}, opts(1, 1, 1, 4)},
      {{2, 4, 5, 6}, {3, 4, 1, 1}, opts(1, 0)},        {{2, 3, 8, 8}, {2, 3, 2, 3}, opts(3, 0)},
  };
  Conv2dOptions asym;  // different stride/padding per axis
  asym.stride_h = 2, asym.pad_w = 2, asym.dilation_h = 2;
  cases.push_back({{1, 2, 9, 6}, {3, 2, 3, 2}, asym});
  for (const auto& c : cases) {
    Tensor x = randn(c.x, gen), w = randn(c.w, gen), b = randn({c.w[0]}, gen);
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w));
    require_close(conv2d(x, w, b, c.o), reference_conv2d(x, w, b, c.o));
  }
}

TEST_CASE("conv2d gradcheck on input, weight and bias", "[conv][gradcheck]") {
  Generator gen(12);
  struct Case {
    const char* name;
    Shape x, w;
    Conv2dOptions o;
  };
  const std::vector<Case> cases = {
      {"3x3 pad 1", {2, 3, 6, 6}, {4, 3, 3, 3}, opts(1, 1)},
      {"stride 2 pad 1", {2, 3, 7, 7}, {4, 3, 3, 3}, opts(2, 1)},
      {"stride 3 pad 1", {1, 2, 8, 8}, {2, 2, 3, 3}, opts(3, 1)},  // im2col's run-time stride
      {"dilation 2", {2, 2, 7, 7}, {3, 2, 3, 3}, opts(1, 2, 2)},
      {"groups 2", {3, 4, 5, 5}, {6, 2, 3, 3}, opts(1, 1, 1, 2)},
      {"depthwise", {2, 3, 5, 5}, {3, 1, 3, 3}, opts(1, 1, 1, 3)},
      {"1x1", {2, 4, 3, 3}, {5, 4, 1, 1}, opts(1, 0)},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    Tensor x = leaf(c.x, gen), w = leaf(c.w, gen), b = leaf({c.w[0]}, gen);
    const Conv2dOptions o = c.o;
    require_gradcheck([o](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], o); }, {x, w, b});
  }
  // Without bias, and with a layer in front so the input gradient is really used.
  Tensor x = leaf({2, 2, 5, 5}, gen), w = leaf({3, 2, 3, 3}, gen);
  require_gradcheck([](const std::vector<Tensor>& in) { return conv2d(mul(in[0], in[0]), in[1], Tensor(), opts(1, 1)); },
                    {x, w});
}

TEST_CASE("conv2d gives the same bits at a fixed thread count and close results across counts", "[conv]") {
  Generator gen(13);
  Tensor x = randn({5, 3, 8, 8}, gen).set_requires_grad(), w = randn({4, 3, 3, 3}, gen).set_requires_grad();
  Tensor b = randn({4}, gen).set_requires_grad();
  Tensor gy = randn({5, 4, 8, 8}, gen);
  auto run = [&](int threads) {
    set_num_threads(threads);
    x.zero_grad(), w.zero_grad(), b.zero_grad();
    Tensor y = conv2d(x, w, b, opts(1, 1));
    y.backward(gy);
    return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), b.grad()};
  };
  const int saved = num_threads();
  auto a1 = run(2), a2 = run(2), s1 = run(1);
  set_num_threads(saved);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(a1[i].to_vector() == a2[i].to_vector());
    require_close(a1[i], s1[i], 1e-3f);
  }
}

TEST_CASE("conv2d rejects bad shapes naming both", "[conv][errors]") {
  Tensor x = Tensor::zeros({1, 3, 5, 5});
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor()),
                      Catch::Contains("conv2d") && Catch::Contains("[1, 3, 5, 5]") && Catch::Contains("[4, 2, 3, 3]"));
  REQUIRE_THROWS_WITH(conv2d(Tensor::zeros({3, 5, 5}), Tensor::zeros({4, 3, 3, 3}), Tensor()),
                      Catch::Contains("[3, 5, 5]") && Catch::Contains("[4, 3, 3, 3]"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({3})),
                      Catch::Contains("bias") && Catch::Contains("[3]") && Catch::Contains("[4, 3, 3, 3]"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 7, 7}), Tensor()),
                      Catch::Contains("[1, 3, 5, 5]") && Catch::Contains("[4, 3, 7, 7]"));
  REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 1, 3, 3}), Tensor(), opts(1, 0, 1, 2)),
                      Catch::Contains("groups=2"));
}

TEST_CASE("max_pool2d picks window maxima and routes the gradient to the argmax", "[pool]") {
  Tensor x = Tensor::from_vector({1, 1, 4, 4}, {1, 2, 3, 4,  //
                                                8, 7, 6, 5,  //
                                                9, 1, 1, 9,  //
                                                1, 1, 9, 1})
                 .set_requires_grad();
  Tensor y = max_pool2d(x, 2);
  REQUIRE(y.to_vector() == std::vector<float>{8, 6, 9, 9});
  y.backward(Tensor::from_vector({1, 1, 2, 2}, {1, 2, 3, 4}));
  // Ties (9 and 9 in the bottom-right window) go to the first maximum in row-major order.
  REQUIRE(x.grad().to_vector() == std::vector<float>{0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 0, 4, 0, 0, 0, 0});
  // Padding 1, kernel 3, stride 1: the padded border never wins even for negative inputs.
  Tensor neg = Tensor::from_vector({1, 1, 2, 2}, {-1, -2, -3, -4});
  REQUIRE(max_pool2d(neg, 3, 1, 1).to_vector() == std::vector<float>{-1, -1, -1, -1});
}

TEST_CASE("avg_pool2d counts padding in the divisor like PyTorch", "[pool]") {
  Tensor x = Tensor::from_vector({1, 1, 2, 2}, {1, 2, 3, 4});
  REQUIRE(avg_pool2d(x, 2).to_vector() == std::vector<float>{2.5f});
  // kernel 2, stride 1, padding 1: 3x3 outputs, each window sum / 4.
  REQUIRE(avg_pool2d(x, 2, 1, 1).to_vector() ==
          std::vector<float>{0.25f, 0.75f, 0.5f, 1.0f, 2.5f, 1.5f, 0.75f, 1.75f, 1.0f});
  Tensor g = Tensor::from_vector({1, 1, 2, 2}, {1, 2, 3, 4}).set_requires_grad();
  global_avg_pool2d(g).backward(Tensor::from_vector({1, 1}, {4}));
  REQUIRE(global_avg_pool2d(g).to_vector() == std::vector<float>{2.5f});
  REQUIRE(g.grad().to_vector() == std::vector<float>{1, 1, 1, 1});
}

TEST_CASE("pooling gradcheck: overlapping windows, padding, strides", "[pool][gradcheck]") {
  Generator gen(14);
  // Distinct values keep max_pool's argmax away from ties that finite differences would cross.
  std::vector<float> v(2 * 3 * 7 * 6);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 37) % v.size()) * 0.01f;
  Tensor x = Tensor::from_vector({2, 3, 7, 6}, v).set_requires_grad();
  for (auto [k, s, p] : std::vector<std::tuple<int, int, int>>{{2, 0, 0}, {3, 2, 1}, {3, 1, 1}, {2, 1, 0}, {3, 3, 0}}) {
    INFO("kernel " << k << " stride " << s << " padding " << p);
    require_gradcheck([k, s, p](const std::vector<Tensor>& in) { return max_pool2d(in[0], k, s, p); }, {x});
    require_gradcheck([k, s, p](const std::vector<Tensor>& in) { return avg_pool2d(in[0], k, s, p); }, {x});
  }
  Tensor r = leaf({2, 3, 4, 5}, gen);
  require_gradcheck([](const std::vector<Tensor>& in) { return global_avg_pool2d(mul(in[0], in[0])); }, {r});
}

TEST_CASE("pooling rejects bad arguments naming the op and shape", "[pool][errors]") {
  Tensor x = Tensor::zeros({1, 1, 4, 4});
  REQUIRE_THROWS_WITH(max_pool2d(Tensor::zeros({4, 4}), 2), Catch::Contains("max_pool2d") && Catch::Contains("[4, 4]"));
  REQUIRE_THROWS_WITH(avg_pool2d(x, 2, 1, 2), Catch::Contains("avg_pool2d") && Catch::Contains("padding"));
  REQUIRE_THROWS_WITH(max_pool2d(x, 5), Catch::Contains("[1, 1, 4, 4]") && Catch::Contains("kernel 5"));
  REQUIRE_THROWS_WITH(global_avg_pool2d(Tensor::zeros({2, 3})), Catch::Contains("global_avg_pool2d"));
}
