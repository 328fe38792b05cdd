// Tests of the model zoo (layers/models): every model builds with every norm it supports,
// runs forward + backward with a finite loss and a gradient for every parameter, has
// PyTorch's parameter count for the reference definitions, switches its norms between
// train and eval, exposes running statistics as buffers, and can fit a small batch.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "layers/models/model.hpp"

using namespace nl;

namespace {

NormOptions norm_named(const std::string& name) {
  NormOptions n;
  n.name = name;
  n.ghost_batch = 2;  // gbn: the tiny test batches hold 2 ghost batches
  n.groups = 8;
  return n;
}

ModelOptions image_model(const std::string& name, Shape input_shape) {
  ModelOptions o;
  o.name = name;
  o.input_shape = std::move(input_shape);
  o.seed = 7;
  return o;
}

ModelOptions lm_model(const std::string& name) {
  ModelOptions o;
  o.name = name;
  o.seed = 7;
  return o;
}

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, Generator& gen) {
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(gen.below(vocab));
  return ids;
}

// Mean cross-entropy of a forward pass (images: [N, C, H, W], labels 0..classes-1).
Tensor image_loss(Model& model, const Tensor& x, const std::vector<int32_t>& labels) {
  return cross_entropy(model.forward(x), labels);
}

Tensor lm_loss(Model& model, const std::vector<int32_t>& ids, const std::vector<int32_t>& targets, int64_t B,
               int64_t T) {
  Tensor logits = model.forward_ids(ids, {B, T});
  REQUIRE(logits.shape() == Shape{B, T, model.options().vocab_size});
  return cross_entropy(logits.reshape({B * T, model.options().vocab_size}), targets);
}

bool all_finite(const Tensor& t) {
  for (float v : t.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

// After backward: the loss is finite and every parameter has a finite gradient.
void require_finite_loss_and_grads(const Model& model, const Tensor& loss) {
  INFO(model.name());
  REQUIRE(std::isfinite(loss.item()));
  for (const auto& [name, p] : model.named_parameters()) {
    INFO("parameter " << name);
    REQUIRE(p.grad().defined());
    REQUIRE(all_finite(p.grad()));
  }
}

int64_t count(const std::shared_ptr<Model>& m) { return m->num_parameters(); }

}  // namespace

TEST_CASE("parameter counts match PyTorch's for the reference models", "[models]") {
  // PyTorch counts printed by /usr/bin/python3 with scripts/torch_models.py's
  // definitions (cnn, transformer, lstm), nn.GRU for gru, and He et al.'s ResNet-20 with
  // BatchNorm2d and bias-free convs (the well-known 0.27M).
  CHECK(count(make_model(image_model("cnn", {1, 28, 28}), norm_named("none"))) == 421642);
  CHECK(count(make_model(image_model("cnn", {3, 32, 32}), norm_named("none"))) == 356810);
  CHECK(count(make_model(image_model("cnn", {1, 28, 28}), norm_named("bn"))) == 421834);
  CHECK(count(make_model(image_model("mlp", {1, 28, 28}), norm_named("none"))) == 99710);
  CHECK(count(make_model(image_model("resnet20", {3, 32, 32}), norm_named("bn"))) == 269722);
  CHECK(count(make_model(lm_model("transformer"), norm_named("ln"))) == 421697);
  CHECK(count(make_model(lm_model("transformer"), norm_named("rms"))) == 421057);
  CHECK(count(make_model(lm_model("lstm"), norm_named("none"))) == 420289);
  CHECK(count(make_model(lm_model("gru"), norm_named("none"))) == 321473);
}

TEST_CASE("make_model rejects unknown names and norms a model cannot use", "[models]") {
  REQUIRE_THROWS_WITH(make_model(lm_model("vgg"), norm_named("none")),
                      Catch::Contains("vgg") && Catch::Contains("resnet20"));
  REQUIRE_THROWS_WITH(make_model(lm_model("lstm"), norm_named("gn")), Catch::Contains("lstm") && Catch::Contains("gn"));
  REQUIRE_THROWS_WITH(make_model(image_model("cnn", {1, 27, 27}), norm_named("none")),
                      Catch::Contains("cnn") && Catch::Contains("[1, 27, 27]"));
  auto cnn = make_model(image_model("cnn", {1, 28, 28}), norm_named("none"));
  REQUIRE_THROWS_WITH(cnn->forward(Tensor::zeros({2, 3, 28, 28})), Catch::Contains("[2, 3, 28, 28]"));
  REQUIRE_THROWS_WITH(cnn->forward_ids({1, 2}, {1, 2}), Catch::Contains("forward(x)"));
  auto lm = make_model(lm_model("transformer"), norm_named("ln"));
  REQUIRE_THROWS_WITH(lm->forward(Tensor::zeros({2, 3})), Catch::Contains("forward_ids"));
  REQUIRE_THROWS_WITH(lm->forward_ids(std::vector<int32_t>(65, 0), {1, 65}), Catch::Contains("context 64"));
  auto names = model_names();
  for (const char* n : {"mlp", "cnn", "resnet20", "lstm", "gru", "transformer"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
}

TEST_CASE("image models: every norm builds, trains a step and gives finite gradients", "[models]") {
  const std::vector<std::string> mlp_norms = {"none", "bn", "mobn", "ln", "rms", "wn", "brn", "gbn", "pn"};
  std::vector<std::string> conv_norms;  // the registry's norms defined for conv maps (not pn)
  for (const NormInfo& info : norm_registry())
    if (info.conv) conv_norms.push_back(info.name);
  struct Case {
    std::string model;
    Shape input;
    std::vector<std::string> norms;
  };
  const std::vector<Case> cases = {
      {"mlp", {1, 28, 28}, mlp_norms},
      {"cnn", {1, 28, 28}, conv_norms},
      {"cnn", {3, 32, 32}, {"none", "bn", "gn", "ln"}},
      {"resnet20", {3, 16, 16}, conv_norms},
  };
  Generator gen(1);
  for (const auto& c : cases) {
    for (const auto& norm : c.norms) {
      INFO(c.model << " " << shape_str(c.input) << " norm " << norm);
      auto model = make_model(image_model(c.model, c.input), norm_named(norm));
      Shape xs = {4};
      xs.insert(xs.end(), c.input.begin(), c.input.end());
      Tensor x = randn(xs, gen);
      Tensor loss = image_loss(*model, x, {0, 1, 2, 3});
      loss.backward();
      require_finite_loss_and_grads(*model, loss);
      model->eval();
      NoGradGuard no_grad;
      Tensor logits = model->forward(x);
      REQUIRE(logits.shape() == Shape{4, 10});
      REQUIRE(all_finite(logits));
    }
  }
}

TEST_CASE("language models: every cell/block norm builds, trains a step and gives finite gradients", "[models]") {
  Generator gen(2);
  for (const std::string name : {"lstm", "gru", "transformer"}) {
    for (const std::string norm : {"none", "ln", "rms", "bn", "pn"}) {
      for (bool pre_ln : {true, false}) {
        if (name != "transformer" && (!pre_ln || norm == "pn")) continue;  // pn: a block norm, not a cell's
        INFO(name << " norm " << norm << (pre_ln ? " pre-LN" : " post-LN"));
        ModelOptions o = lm_model(name);
        o.vocab_size = 11, o.context = 8, o.embed_dim = 6, o.hidden_size = 5, o.d_model = 8, o.heads = 2;
        o.pre_ln = pre_ln;
        o.dropout = 0.1f;
        auto model = make_model(o, norm_named(norm));
        REQUIRE(model->is_language_model());
        const int64_t B = 3, T = 8;
        Tensor loss = lm_loss(*model, random_ids(B * T, 11, gen), random_ids(B * T, 11, gen), B, T);
        loss.backward();
        require_finite_loss_and_grads(*model, loss);
      }
    }
  }
}

TEST_CASE("norm layers inside models follow train/eval, and running statistics are buffers", "[models]") {
  Generator gen(3);
  SECTION("cnn with bn") {
    auto model = make_model(image_model("cnn", {1, 28, 28}), norm_named("bn"));
    auto buffers = model->named_buffers();
    REQUIRE(!buffers.empty());
    bool has_running_mean = false;
    for (auto& [name, t] : buffers) has_running_mean |= name.find("running_mean") != std::string::npos;
    REQUIRE(has_running_mean);
    Tensor x = randn({4, 1, 28, 28}, gen);
    auto snapshot = [&] {
      std::vector<float> all;
      for (auto& [name, t] : model->named_buffers()) {
        auto v = t.to_vector();
        all.insert(all.end(), v.begin(), v.end());
      }
      return all;
    };
    auto before = snapshot();
    {
      NoGradGuard g;
      model->forward(x);
    }
    auto after_train = snapshot();
    REQUIRE(after_train != before);  // training updated the running statistics
    model->eval();
    REQUIRE(!model->is_training());
    NoGradGuard g;
    Tensor batched = model->forward(x);
    REQUIRE(snapshot() == after_train);  // eval changed no buffer
    // In eval an image's logits do not depend on the rest of the batch.
    Tensor alone = model->forward(x.slice(0, 0, 1).contiguous());
    auto a = alone.to_vector(), b = batched.slice(0, 0, 1).contiguous().to_vector();
    for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(b[i]).margin(1e-5));
  }
  SECTION("lstm with recurrent bn keeps per-step statistics as buffers") {
    ModelOptions o = lm_model("lstm");
    o.vocab_size = 7, o.embed_dim = 4, o.hidden_size = 3, o.max_steps = 5;
    auto model = make_model(o, norm_named("bn"));
    int n_running = 0;
    for (auto& [name, t] : model->named_buffers())
      if (name.find("running_mean") != std::string::npos) {
        ++n_running;
        REQUIRE(t.size(0) == 5);  // one row per time step
      }
    REQUIRE(n_running == 3);  // W_x x, W_h h and the cell state
  }
}

TEST_CASE("the same seed builds the same model", "[models]") {
  auto a = make_model(image_model("cnn", {1, 28, 28}), norm_named("bn"));
  auto b = make_model(image_model("cnn", {1, 28, 28}), norm_named("bn"));
  auto pa = a->named_parameters(), pb = b->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    REQUIRE(pa[i].first == pb[i].first);
    REQUIRE(pa[i].second.to_vector() == pb[i].second.to_vector());
  }
  ModelOptions o = image_model("cnn", {1, 28, 28});
  o.seed = 8;
  auto c = make_model(o, norm_named("bn"));
  REQUIRE(c->parameters()[0].to_vector() != pa[0].second.to_vector());
}

namespace {
// Plain SGD steps on a fixed batch; returns the first and last loss.
template <typename LossFn>
std::pair<float, float> fit(Model& model, LossFn loss_fn, int steps, float lr) {
  float first = 0, last = 0;
  for (int s = 0; s < steps; ++s) {
    model.zero_grad();
    Tensor loss = loss_fn();
    loss.backward();
    if (s == 0) first = loss.item();
    last = loss.item();
    NoGradGuard g;
    for (auto& p : model.parameters())
      if (p.grad().defined()) p.add_(p.grad(), -lr);
  }
  return {first, last};
}
}  // namespace

TEST_CASE("small models overfit a small synthetic batch (the engine learns)", "[models][train]") {
  Generator gen(4);
  const std::vector<int32_t> labels = {0, 1, 2, 3, 0, 1, 2, 3};
  SECTION("mlp with bn") {
    ModelOptions o = image_model("mlp", {1, 8, 8});
    o.width = 32, o.depth = 2, o.num_classes = 4, o.activation = "relu";
    auto model = make_model(o, norm_named("bn"));
    Tensor x = randn({8, 1, 8, 8}, gen);
    auto [first, last] = fit(*model, [&] { return image_loss(*model, x, labels); }, 150, 0.1f);
    INFO("loss " << first << " -> " << last);
    REQUIRE(first > 1.0f);  // ~ln 4 at the start
    REQUIRE(last < 0.05f);
  }
  SECTION("cnn without norm") {
    ModelOptions o = image_model("cnn", {1, 8, 8});
    o.num_classes = 4;
    auto model = make_model(o, norm_named("none"));
    Tensor x = randn({8, 1, 8, 8}, gen);
    auto [first, last] = fit(*model, [&] { return image_loss(*model, x, labels); }, 150, 0.05f);
    INFO("loss " << first << " -> " << last);
    REQUIRE(first > 1.0f);
    REQUIRE(last < 0.05f);
  }
  SECTION("char lstm with ln memorizes a sequence") {
    ModelOptions o = lm_model("lstm");
    o.vocab_size = 6, o.embed_dim = 8, o.hidden_size = 16;
    auto model = make_model(o, norm_named("ln"));
    // Targets are the input shifted by one: a deterministic next-token task.
    std::vector<int32_t> seq = random_ids(2 * 11, 6, gen), ids, targets;
    for (int b = 0; b < 2; ++b)
      for (int t = 0; t < 10; ++t) ids.push_back(seq[b * 11 + t]), targets.push_back(seq[b * 11 + t + 1]);
    auto [first, last] = fit(*model, [&] { return lm_loss(*model, ids, targets, 2, 10); }, 300, 0.5f);
    INFO("loss " << first << " -> " << last);
    REQUIRE(first > 1.2f);  // ~ln 6 at the start
    REQUIRE(last < 0.1f);
  }
}
