// Tests of layers/norm/factory: every name builds weight layers and norm(+activation)
// modules at each site where it is defined, runs forward + backward with every parameter
// receiving a gradient; names/sites where it is not defined, unknown names and groups that
// do not divide the channels fail with clear nl::Errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "layers/activation.hpp"
#include "layers/norm/factory.hpp"

using namespace nl;

namespace {

bool finite(const Tensor& t) {
  for (float v : t.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

// forward + backward through weight -> norm_act; every parameter must get a finite gradient.
void run_block(Module& weight, Module& norm_act, const Tensor& x, const std::string& what) {
  Generator gen(3);
  Tensor y = norm_act.forward(weight.forward(x));
  y.backward(randn(y.shape(), gen));
  INFO(what << ": " << weight.name() << " -> " << norm_act.name());
  CHECK(finite(y));
  for (auto& [name, p] : weight.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    CHECK(finite(p.grad()));
  }
  for (auto& [name, p] : norm_act.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    CHECK(finite(p.grad()));
  }
}

bool conv_only(const std::string& n) { return n == "in"; }
bool not_tokens(const std::string& n) { return n == "in" || n == "frn" || n == "evonorm-s0" || n == "evonorm-b0"; }

}  // namespace

TEST_CASE("every norm name builds and runs forward+backward at each site where it is defined", "[factory]") {
  Generator gen(1);
  for (const std::string& name : norm_names()) {
    NormOptions o;
    o.name = name;
    o.groups = 4;
    o.ghost_batch = 2;
    o.wn_mean_only_bn = name == "wn";
    SECTION("conv " + name) {
      auto conv = make_conv2d(o, 3, 8, 3, {.pad_h = 1, .pad_w = 1}, true, gen);
      auto na = make_norm_act(o, {8, 6, 6}, NormSite::conv, "relu");
      run_block(*conv, *na, randn({4, 3, 6, 6}, gen), "conv");
      if (name == "wn") CHECK(conv->name().find("WeightNorm") != std::string::npos);
      if (name == "ws") CHECK(conv->name().find("WSConv2d") != std::string::npos);
      na->eval();  // eval mode runs too (running statistics where there are any)
      CHECK(finite(na->forward(conv->forward(randn({2, 3, 6, 6}, gen)))));
    }
    SECTION("features " + name) {
      auto lin = make_linear(o, 5, 8, true, gen);
      if (conv_only(name)) {
        CHECK_THROWS_WITH(make_norm_act(o, {8}, NormSite::features, "relu"), Catch::Contains("features"));
      } else {
        auto na = make_norm_act(o, {8}, NormSite::features, "tanh");
        run_block(*lin, *na, randn({6, 5}, gen), "features");
      }
    }
    SECTION("tokens " + name) {
      auto lin = make_linear(o, 5, 8, true, gen);
      if (not_tokens(name)) {
        CHECK_THROWS_WITH(make_norm_act(o, {8}, NormSite::tokens, "gelu"), Catch::Contains("tokens"));
      } else {
        auto na = make_norm_act(o, {8}, NormSite::tokens, "gelu");
        Tensor x = randn({3, 4, 5}, gen);
        run_block(*lin, *na, x, "tokens");
        CHECK(na->forward(lin->forward(x)).shape() == Shape{3, 4, 8});
      }
    }
  }
}

TEST_CASE("tokens: ln/rms normalize each token over D, bn over (B, T) per feature", "[factory]") {
  Generator gen(2);
  Tensor x = randn({3, 4, 8}, gen) * 3.0f + 2.0f;
  NormOptions o;
  o.name = "ln";
  Tensor y = make_norm(o, {8}, NormSite::tokens)->forward(x);
  Tensor m = mean(y, {2});  // per token
  for (float v : m.to_vector()) CHECK(std::abs(v) < 1e-5f);
  o.name = "bn";
  Tensor yb = make_norm(o, {8}, NormSite::tokens)->forward(x);
  Tensor mb = mean(yb, {0, 1});  // per feature over B*T
  for (float v : mb.to_vector()) CHECK(std::abs(v) < 1e-5f);
  Tensor d = yb - mean(yb, {0, 1}, true);
  for (float v : mean(d * d, {0, 1}).to_vector()) CHECK(v == Approx(1.0f).epsilon(1e-3));
}

TEST_CASE("make_norm: identity where the method only changes weights; frn/evonorm ignore the activation",
          "[factory]") {
  NormOptions o;
  o.name = "none";
  CHECK(dynamic_cast<Identity*>(make_norm(o, {4, 3, 3}, NormSite::conv).get()) != nullptr);
  o.name = "wn";
  CHECK(dynamic_cast<Identity*>(make_norm(o, {4, 3, 3}, NormSite::conv).get()) != nullptr);
  o.wn_mean_only_bn = true;
  CHECK(make_norm(o, {4, 3, 3}, NormSite::conv)->name().find("MeanOnly") != std::string::npos);
  o.name = "frn";
  CHECK(make_norm_act(o, {4, 3, 3}, NormSite::conv, "relu")->name().find("FilterResponseNorm") == 0);
  o.name = "none";
  CHECK(make_norm_act(o, {4, 3, 3}, NormSite::conv, "relu")->name() == "ReLU");
}

TEST_CASE("unknown names, bad groups and bad shapes fail clearly", "[factory][errors]") {
  NormOptions o;
  o.name = "batchnorm";
  CHECK_THROWS_WITH(validate_norm_options(o), Catch::Contains("unknown norm 'batchnorm'") &&
                                                  Catch::Contains("evonorm-b0") && Catch::Contains("gn"));
  CHECK_THROWS_AS(make_norm(o, {4, 3, 3}, NormSite::conv), nl::Error);
  CHECK_THROWS_AS(make_conv2d(o, 3, 4, 3), nl::Error);
  o.name = "gn";
  o.groups = 3;
  CHECK_THROWS_WITH(make_norm(o, {8, 3, 3}, NormSite::conv), Catch::Contains("groups=3") && Catch::Contains("8"));
  o.name = "ws";
  CHECK_THROWS_WITH(make_norm(o, {8, 3, 3}, NormSite::conv), Catch::Contains("groups=3"));
  o.name = "evonorm-s0";
  CHECK_THROWS_WITH(make_norm(o, {8, 3, 3}, NormSite::conv), Catch::Contains("groups=3"));
  o.name = "ln";
  CHECK_THROWS_WITH(make_norm(o, {8}, NormSite::conv), Catch::Contains("[C, H, W]"));
  CHECK_THROWS_WITH(make_norm_act(o, {8}, NormSite::features, "swish"), Catch::Contains("swish"));
}
