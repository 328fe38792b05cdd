// Optimizers against PyTorch trajectories (scripts/make_optim_fixtures.py): 5 steps of SGD
// (plain, momentum, Nesterov + weight decay, decay excluded for one group), Adam (+ L2) and
// AdamW with fixed gradients; every step's parameters must match. Plus gradient clipping.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/random.hpp"
#include "optim/optimizer.hpp"
#include "tests/support/fixtures.hpp"

using namespace nl;
using nl::test::require_close;

static std::unique_ptr<Optimizer> make_optimizer(const nlohmann::json& p, Tensor a, Tensor b) {
  const float wd = p.value("weight_decay", 0.0f);
  std::vector<ParamGroup> groups = {{{a}, wd}, {{b}, p.value("exclude_vector", false) ? 0.0f : wd}};
  const std::string kind = p["optimizer"];
  if (kind == "sgd") {
    SGDOptions o;
    o.lr = p["lr"];
    o.momentum = p.value("momentum", 0.0f);
    o.nesterov = p.value("nesterov", false);
    return std::make_unique<SGD>(groups, o);
  }
  AdamOptions o;
  o.lr = p["lr"];
  if (p.contains("betas")) o.beta1 = p["betas"][0], o.beta2 = p["betas"][1];
  o.eps = p.value("eps", 1e-8f);
  o.decoupled_weight_decay = kind == "adamw";
  return std::make_unique<Adam>(groups, o);
}

TEST_CASE("optimizers follow PyTorch's trajectories step by step", "[optim][fixtures]") {
  const TensorFile f = nl::test::load_fixture("optim/optimizers.safetensors");
  const auto cases = nl::test::fixture_cases(f);
  REQUIRE(cases.size() == 7);
  for (const std::string& c : cases) {
    const auto p = nl::test::case_params(f, c);
    Tensor a = f.get(c + ".p0").clone().set_requires_grad();
    Tensor b = f.get(c + ".p1").clone().set_requires_grad();
    auto opt = make_optimizer(p, a, b);
    for (int k = 0; k < p["steps"].get<int>(); ++k) {
      const std::string s = std::to_string(k);
      a.set_grad(f.get(c + ".g" + s + "_0"));
      b.set_grad(f.get(c + ".g" + s + "_1"));
      opt->step();
      // float32 updates in a different order than PyTorch's: a few ulp per step.
      require_close(a, f.get(c + ".after" + s + "_0"), 1e-6, 1e-5, c + " step " + s + " matrix");
      require_close(b, f.get(c + ".after" + s + "_1"), 1e-6, 1e-5, c + " step " + s + " vector");
    }
  }
}

// The update loops are vectorized (optim/optimizer.cpp); IEEE vector sqrt and division round
// as the scalar ones, so every element must equal the formula written out one value at a time
// here. A contraction into FMA or a reordered expression in the library breaks the equality.
TEST_CASE("Adam and AdamW give the bits of the formula evaluated one element at a time", "[optim]") {
  for (const bool decoupled : {false, true}) {
    const int64_t n = 1000 + 13;  // a vector tail after the full vectors
    Generator gen(7);
    Tensor w = randn({n}, gen).set_requires_grad();
    std::vector<float> ref = w.to_vector(), m(n, 0.0f), v(n, 0.0f);
    AdamOptions o;
    o.lr = 1e-2f;
    o.decoupled_weight_decay = decoupled;
    Adam adam({{{w}, 0.1f}}, o);
    for (int step = 1; step <= 3; ++step) {
      Tensor g = randn({n}, gen);
      const std::vector<float> gv = g.to_vector();
      w.set_grad(g);
      adam.step();
      const float bias1 = 1.0f - std::pow(o.beta1, static_cast<float>(step));
      const float bias2 = 1.0f - std::pow(o.beta2, static_cast<float>(step));
      const float step_size = o.lr / bias1, sqrt_bias2 = std::sqrt(bias2), lr_wd = o.lr * 0.1f;
      for (int64_t i = 0; i < n; ++i) {  // tests are built without FMA: one rounding per operation
        float d = gv[i];
        if (decoupled) ref[i] -= lr_wd * ref[i];
        else d += 0.1f * ref[i];
        m[i] = o.beta1 * m[i] + (1.0f - o.beta1) * d;
        v[i] = o.beta2 * v[i] + (1.0f - o.beta2) * d * d;
        ref[i] -= step_size * m[i] / (std::sqrt(v[i]) / sqrt_bias2 + o.eps);
      }
      const std::vector<float> got = w.to_vector();
      int64_t differ = 0;
      for (int64_t i = 0; i < n; ++i) differ += got[i] != ref[i];
      INFO((decoupled ? "AdamW" : "Adam") << " step " << step);
      REQUIRE(differ == 0);
    }
  }
}

TEST_CASE("parameters without a gradient are left alone", "[optim]") {
  Tensor a = Tensor::ones({3}).set_requires_grad();
  Tensor b = Tensor::ones({2}).set_requires_grad();
  SGD sgd({{{a, b}, 0.1f}}, SGDOptions{0.5f, 0.9f, false});
  a.set_grad(Tensor::full({3}, 2.0f));
  sgd.step();
  REQUIRE(a.to_vector() == std::vector<float>(3, 1.0f - 0.5f * (2.0f + 0.1f)));
  REQUIRE(b.to_vector() == std::vector<float>(2, 1.0f));
}

TEST_CASE("clip_grad_norm scales every gradient by max_norm / global norm", "[optim]") {
  Tensor a = Tensor::zeros({2}).set_requires_grad();
  Tensor b = Tensor::zeros({1}).set_requires_grad();
  a.set_grad(Tensor::from_vector({2}, {3.0f, 0.0f}));
  b.set_grad(Tensor::from_vector({1}, {4.0f}));
  const float norm = clip_grad_norm({a, b}, 1.0f);
  REQUIRE(norm == Approx(5.0f));
  REQUIRE(a.grad().at({0}) == Approx(0.6f).margin(1e-6));
  REQUIRE(b.grad().at({0}) == Approx(0.8f).margin(1e-6));
  // Below the threshold nothing changes.
  REQUIRE(clip_grad_norm({a, b}, 10.0f) == Approx(1.0f).margin(1e-5));
  REQUIRE(b.grad().at({0}) == Approx(0.8f).margin(1e-6));
}

TEST_CASE("bad optimizer settings are clear errors", "[optim]") {
  Tensor a = Tensor::zeros({2}).set_requires_grad();
  REQUIRE_THROWS_WITH(SGD({{{a}, 0.0f}}, SGDOptions{-1.0f, 0.0f, false}), Catch::Contains("learning rate"));
  REQUIRE_THROWS_WITH(SGD({{{a}, 0.0f}}, SGDOptions{0.1f, 0.0f, true}), Catch::Contains("Nesterov"));
}
