// Tests of layers/norm/factory: every name builds weight layers and norm(+activation)
// modules at each site where it is defined, runs forward + backward with every parameter
// receiving a gradient; names/sites where it is not defined, unknown names and groups that
// do not divide the channels fail with clear nl::Errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "core/random.hpp"

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

// The sites come from the registry, so a new norm needs no edit here.
bool conv_only(const std::string& n) { return !norm_info(n).features; }
bool not_tokens(const std::string& n) { return !norm_info(n).tokens; }

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
      if (!norm_info(name).conv) {  // pn: vectors and tokens only
        CHECK_THROWS_WITH(make_norm_act(o, {8, 6, 6}, NormSite::conv, "relu"), Catch::Contains("conv site"));
      } else {
        auto na = make_norm_act(o, {8, 6, 6}, NormSite::conv, "relu");
        run_block(*conv, *na, randn({4, 3, 6, 6}, gen), "conv");
        if (name == "wn") CHECK(conv->name().find("WeightNorm") != std::string::npos);
        if (name == "ws") CHECK(conv->name().find("WSConv2d") != std::string::npos);
        na->eval();  // eval mode runs too (running statistics where there are any)
        CHECK(finite(na->forward(conv->forward(randn({2, 3, 6, 6}, gen)))));
      }
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

TEST_CASE("make_norm: identity where the method only changes weights, frn/evonorm ignore the activation",
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
  // none and wn keep their NoNorm in front of the activation: a norm layer without parameters
  // that the diagnostics observe (what the activation sees, with or without a norm).
  for (const char* name : {"none", "wn"}) {
    o.name = name;
    o.wn_mean_only_bn = false;
    CHECK(make_norm_act(o, {4, 3, 3}, NormSite::conv, "relu")->name() == "Sequential(NoNorm, ReLU)");
    CHECK(make_norm_act(o, {4, 3, 3}, NormSite::conv, "identity")->name() == "NoNorm");
  }
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

TEST_CASE("stat_batch: batch-independent norms are bit-identical with and without it", "[factory][gbn]") {
  // The sweep applies --stat-batch across norms; a norm without batch statistics must not
  // change at all (outputs, input and parameter gradients, buffers, train and eval).
  struct Site {
    Shape feature, input;
    NormSite site;
  };
  const std::vector<Site> sites{{{8, 5, 4}, {12, 8, 5, 4}, NormSite::conv}, {{8}, {12, 8}, NormSite::features}};
  for (const std::string name : {"gn", "ln", "in", "frn", "evonorm-s0", "rms", "ws", "wn", "none"}) {
    for (const Site& s : sites) {
      if (name == "in" && s.site != NormSite::conv) continue;
      NormOptions plain;
      plain.name = name;
      plain.groups = 4;
      NormOptions grouped = plain;
      grouped.stat_batch = 4;
      auto a = make_norm(plain, s.feature, s.site), b = make_norm(grouped, s.feature, s.site);
      INFO(name << " at " << a->name());
      Generator gen(5);
      auto params_a = a->parameters(), params_b = b->parameters();
      REQUIRE(params_a.size() == params_b.size());
      for (size_t i = 0; i < params_a.size(); ++i) {
        uniform_(params_a[i], 0.5f, 1.5f, gen);
        params_b[i].copy_(params_a[i]);
      }
      for (int step = 0; step < 2; ++step) {
        Tensor x0 = randn(s.input, gen) * 2.0f + 0.5f, dy = randn(s.input, gen);
        Tensor xa = x0.clone().set_requires_grad(), xb = x0.clone().set_requires_grad();
        Tensor ya = a->forward(xa), yb = b->forward(xb);
        ya.backward(dy);
        yb.backward(dy);
        CHECK(ya.to_vector() == yb.to_vector());
        CHECK(xa.grad().to_vector() == xb.grad().to_vector());
        auto pa = a->parameters(), pb = b->parameters();
        for (size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].grad().to_vector() == pb[i].grad().to_vector());
        auto ba = a->named_buffers(), bb = b->named_buffers();
        for (size_t i = 0; i < ba.size(); ++i) CHECK(ba[i].second.to_vector() == bb[i].second.to_vector());
      }
      a->eval();
      b->eval();
      const Tensor x = randn(s.input, gen);
      CHECK(a->forward(x).to_vector() == b->forward(x).to_vector());
    }
  }
}

TEST_CASE("stat_batch: validated, gbn is bn with stat_batch = ghost_batch, tokens group whole sequences",
          "[factory][gbn]") {
  NormOptions o;
  o.name = "bn";
  o.stat_batch = 1;
  CHECK_THROWS_WITH(validate_norm_options(o), Catch::Contains("stat_batch") && Catch::Contains(">= 2"));
  o.stat_batch = 2;
  CHECK_NOTHROW(validate_norm_options(o));
  o.name = "gbn";
  CHECK_THROWS_WITH(validate_norm_options(o), Catch::Contains("gbn") && Catch::Contains("ghost_batch"));
  o.name = "evonorm-b0";
  CHECK_THROWS_WITH(validate_norm_options(o), Catch::Contains("evonorm-b0"));
  o.stat_batch = 0;
  o.name = "gbn";
  o.ghost_batch = 1;
  CHECK_THROWS_WITH(validate_norm_options(o), Catch::Contains("ghost_batch must be >= 2"));
  o.ghost_batch = 3;
  CHECK(make_norm(o, {4, 2, 2}, NormSite::conv)->name() == "BatchNorm2d(4, stat_batch=3)");

  // tokens [B, T, D] with stat_batch 2: the statistics of sequences {0, 1} and {2, 3}, each
  // over its 2*T tokens per feature (the groups are sequences, not rows of [B*T, D])
  Generator gen(8);
  Tensor x = randn({4, 5, 3}, gen) * 2.0f + 1.0f;
  o.name = "bn";
  o.stat_batch = 2;
  Tensor y = make_norm(o, {3}, NormSite::tokens)->forward(x);
  REQUIRE(y.shape() == Shape{4, 5, 3});
  for (int64_t g = 0; g < 2; ++g) {
    Tensor yg = y.slice(0, 2 * g, 2 * g + 2).contiguous();
    for (float v : mean(yg, {0, 1}).to_vector()) CHECK(std::abs(v) < 1e-5f);
    Tensor d = yg - mean(yg, {0, 1}, true);
    for (float v : mean(d * d, {0, 1}).to_vector()) CHECK(v == Approx(1.0f).epsilon(1e-3));
  }
}

TEST_CASE("the README's norm table is the registry's, row for row", "[factory][docs]") {
  // README.md "The normalization methods": one row per registry line, in order, generated as
  // below (on a mismatch the expected table is printed, to paste into the README).
  std::string expected;
  for (const NormInfo& n : norm_registry()) {
    std::string what = n.method;
    if (*n.paper) what += std::string(" (") + n.paper + ")";
    std::string flags = n.flags, shown;
    for (size_t at = 0; !flags.empty() && at != std::string::npos;) {
      const size_t comma = flags.find(", ", at);
      shown += (shown.empty() ? "" : " ") + ("`" + flags.substr(at, comma - at) + "`");
      at = comma == std::string::npos ? comma : comma + 2;
    }
    if (!shown.empty()) what += ", " + shown;
    expected += std::string("| `") + n.name + "` | " + what + " | " + (*n.file ? std::string("`") + n.file + "`" : "") +
                " |\n";
  }
  std::ifstream in(std::string(NORMLAB_FIXTURE_DIR) + "/../../README.md");
  REQUIRE(in);
  std::string line, actual;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## The normalization methods";
    if (in_section && line.rfind("| `", 0) == 0) actual += line + "\n";  // rows naming a method
  }
  INFO("expected README rows:\n" << expected);
  CHECK(actual == expected);
}
