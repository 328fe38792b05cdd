// Tests of the BatchNorm family: BatchNorm1d/2d, MeanOnlyBatchNorm, BatchRenorm,
// Ghost BatchNorm (BatchNorm with a statistics batch), RecurrentBatchNorm and Precise BN.
//  * PyTorch fixtures (scripts/make_norm_fixtures_bn.py): output, every gradient, running
//    stats after 3 training steps, eval output; for the fused kernel and the composite.
//  * fused == composite reference; gradcheck with a layer in front; sentinel-filled grads.
//  * edge cases: batch of one, constant channel, non-contiguous input, mean 1e4.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>

#include "core/autograd.hpp"
#include "core/gradcheck.hpp"
#include "core/kernels/kernels.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "layers/activation.hpp"
#include "layers/diagnostics.hpp"
#include "layers/linear.hpp"
#include "layers/norm/batch_norm.hpp"
#include "layers/norm/batch_renorm.hpp"
#include "layers/norm/factory.hpp"
#include "layers/norm/mean_only_batch_norm.hpp"
#include "layers/norm/precise_bn.hpp"
#include "layers/norm/recurrent_batch_norm.hpp"
#include "layers/norm/sync_batch_norm.hpp"
#include "tests/support/fixtures.hpp"

using namespace nl;
using nl::test::require_close;

namespace {

constexpr float kSentinel = 8.0f;

// The layer a fixture case describes, with its fused forward and its composite reference.
struct AnyBn {
  std::shared_ptr<BatchStatNorm> layer;
  Tensor weight, bias;
  std::function<Tensor(const Tensor&, bool reference)> run;
};

AnyBn make_layer(const nlohmann::json& p) {
  const std::string kind = p["kind"];
  const std::vector<int64_t> shape = p["shape"];
  const int64_t C = shape[1];
  const int dims = shape.size() == 4 ? 2 : 1;
  BatchNormOptions o;
  o.eps = p["eps"];
  o.momentum = p["momentum"];
  AnyBn a;
  if (kind == "bn") {
    auto m = std::make_shared<BatchNorm>(C, dims, o);
    a = {m, m->weight, m->bias, [m](const Tensor& x, bool ref) { return ref ? m->reference_forward(x) : m->forward(x); }};
  } else if (kind == "mobn") {
    auto m = std::make_shared<MeanOnlyBatchNorm>(C, dims, o);
    a = {m, Tensor(), m->bias, [m](const Tensor& x, bool ref) { return ref ? m->reference_forward(x) : m->forward(x); }};
  } else if (kind == "brn") {
    BatchRenormOptions ro;
    static_cast<BatchNormOptions&>(ro) = o;
    ro.r_max = p["r_max"];
    ro.d_max = p["d_max"];
    ro.warmup_steps = p["warmup"];
    auto m = std::make_shared<BatchRenorm>(C, dims, ro);
    a = {m, m->weight, m->bias, [m](const Tensor& x, bool ref) { return ref ? m->reference_forward(x) : m->forward(x); }};
  } else if (kind == "gbn") {  // Ghost BatchNorm is BatchNorm with stat_batch = ghost size
    o.stat_batch = p["ghost"].get<int64_t>();
    auto m = std::make_shared<BatchNorm>(C, dims, o);
    a = {m, m->weight, m->bias, [m](const Tensor& x, bool ref) { return ref ? m->reference_forward(x) : m->forward(x); }};
  }
  REQUIRE(a.layer);
  return a;
}

void run_fixture_file(const std::string& file, bool reference) {
  TensorFile f = nl::test::load_fixture("norm/" + file);
  for (const std::string& c : nl::test::fixture_cases(f)) {
    const nlohmann::json p = nl::test::case_params(f, c);
    const std::string what = c + (reference ? " (reference)" : " (fused)");
    AnyBn a = make_layer(p);
    if (a.weight.defined()) a.weight.copy_(f.get(c + ".weight"));
    a.bias.copy_(f.get(c + ".bias"));
    // sentinel: backward must *add* into existing parameter gradients
    if (a.weight.defined()) a.weight.set_grad(Tensor::full(a.weight.shape(), kSentinel));
    a.bias.set_grad(Tensor::full(a.bias.shape(), kSentinel));

    Tensor x = f.get(c + ".x").clone().set_requires_grad();
    Tensor y = a.run(x, reference);
    require_close(y, f.get(c + ".out"), 1e-5, 1e-4, what + " out");
    y.backward(f.get(c + ".dout"));
    require_close(x.grad(), f.get(c + ".grad_x"), 1e-5, 1e-4, what + " grad_x");
    require_close(a.bias.grad(), add(f.get(c + ".grad_bias"), kSentinel), 1e-4, 1e-4, what + " grad_bias + sentinel");
    if (a.weight.defined())
      require_close(a.weight.grad(), add(f.get(c + ".grad_weight"), kSentinel), 1e-4, 1e-4,
                    what + " grad_weight + sentinel");
    {
      NoGradGuard ng;
      a.run(f.get(c + ".x2"), reference);
      a.run(f.get(c + ".x3"), reference);
    }
    require_close(a.layer->running_mean, f.get(c + ".running_mean"), 1e-5, 1e-4, what + " running_mean");
    if (a.layer->has_running_var())
      require_close(a.layer->running_var, f.get(c + ".running_var"), 1e-5, 1e-4, what + " running_var");
    if (p["kind"] != "gbn")  // num_batches_tracked counts statistics groups there
      CHECK(a.layer->num_batches_tracked.item() == p["num_batches_tracked"].get<float>());
    a.layer->eval();
    NoGradGuard ng;
    require_close(a.run(f.get(c + ".x"), reference), f.get(c + ".eval_out"), 1e-5, 1e-4, what + " eval_out");
  }
}

Tensor randn_shape(const Shape& s, uint64_t seed, float scale = 1.0f, float shift = 0.0f) {
  Generator g(seed);
  return add(mul(randn(s, g), scale), shift);
}

// Runs fused and reference on copies of the same layer; compares outputs, all grads, buffers.
template <typename Make>
void check_fused_matches_reference(Make make, const Shape& shape, float tol = 1e-5f) {
  auto f = make(), r = make();
  for (int step = 0; step < 2; ++step) {
    Tensor x0 = randn_shape(shape, 10 + step, 1.5f, 0.3f);
    Tensor xf = x0.clone().set_requires_grad(), xr = x0.clone().set_requires_grad();
    Tensor dy = randn_shape(shape, 20 + step);
    Tensor yf = f->forward(xf), yr = r->reference_forward(xr);
    require_close(yf, yr, tol, tol, f->name() + " fused vs reference out");
    yf.backward(dy);
    yr.backward(dy);
    require_close(xf.grad(), xr.grad(), tol, tol, f->name() + " fused vs reference grad_x");
    auto pf = f->named_parameters(), pr = r->named_parameters();
    REQUIRE(pf.size() == pr.size());
    for (size_t i = 0; i < pf.size(); ++i)
      require_close(pf[i].second.grad(), pr[i].second.grad(), tol, tol, f->name() + " grad " + pf[i].first);
    auto bf = f->named_buffers(), br = r->named_buffers();
    for (size_t i = 0; i < bf.size(); ++i)
      require_close(bf[i].second, br[i].second, tol, tol, f->name() + " buffer " + bf[i].first);
  }
}

// gradcheck of x -> (x * p) -> norm, on x, p and the norm's parameters.
void gradcheck_with_layer_in_front(BatchStatNorm& norm, const Shape& shape, const std::function<Tensor(const Tensor&)>& fwd) {
  Tensor x = randn_shape(shape, 3, 1.0f, 0.5f).set_requires_grad();
  Tensor p = randn_shape(shape, 4, 0.5f, 1.0f).set_requires_grad();
  std::vector<Tensor> inputs{x, p};
  for (auto& [n, t] : norm.named_parameters()) {
    t.copy_(randn_shape(t.shape(), 5 + inputs.size(), 0.3f, 1.0f));
    inputs.push_back(t);
  }
  GradcheckOptions o;
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return fwd(in[0] * in[1]); }, inputs, o);
  INFO(norm.name() << "\n" << r.report);
  CHECK(r.ok);
}

// Two BatchNorm layers that must compute the same thing to the bit: both get gamma = randn *
// 0.3 + 1 (seed) and beta = randn * bias_scale (seed + 1), then `steps` steps on the same x
// (seed + 2 + step) and dy (seed + 10 + step), in eval mode from step eval_from on; checks
// outputs, input gradients, parameter gradients and running statistics. on_output sees b's
// output of each step.
using BnForward = std::function<Tensor(BatchNorm&, const Tensor&)>;
void check_same_bits(BatchNorm& a, BatchNorm& b, const BnForward& forward_a, const BnForward& forward_b,
                     const Shape& shape, uint64_t seed, float bias_scale, int steps, int eval_from,
                     const std::function<void(const Tensor&)>& on_output = {}) {
  const int64_t C = shape[1];
  for (BatchNorm* layer : {&a, &b}) {
    layer->weight.copy_(randn_shape({C}, seed, 0.3f, 1.0f));
    layer->bias.copy_(randn_shape({C}, seed + 1, bias_scale));
  }
  for (int step = 0; step < steps; ++step) {
    if (step == eval_from) a.eval(), b.eval();
    const Tensor x = randn_shape(shape, seed + 2 + step, 2.0f, 3.0f), dy = randn_shape(shape, seed + 10 + step);
    Tensor xa = x.clone().set_requires_grad(), xb = x.clone().set_requires_grad();
    const Tensor ya = forward_a(a, xa), yb = forward_b(b, xb);
    ya.backward(dy);
    yb.backward(dy);
    if (on_output) on_output(yb);
    CHECK(yb.to_vector() == ya.to_vector());
    CHECK(xb.grad().to_vector() == xa.grad().to_vector());
  }
  CHECK(b.weight.grad().to_vector() == a.weight.grad().to_vector());
  CHECK(b.bias.grad().to_vector() == a.bias.grad().to_vector());
  CHECK(b.running_mean.to_vector() == a.running_mean.to_vector());
  CHECK(b.running_var.to_vector() == a.running_var.to_vector());
}

}  // namespace

TEST_CASE("BatchNorm matches PyTorch (fused and reference)", "[norm][bn]") {
  run_fixture_file("bn_batchnorm.safetensors", false);
  run_fixture_file("bn_batchnorm.safetensors", true);
}
TEST_CASE("MeanOnlyBatchNorm matches the PyTorch composite", "[norm][bn]") {
  run_fixture_file("bn_mean_only.safetensors", false);
  run_fixture_file("bn_mean_only.safetensors", true);
}
TEST_CASE("BatchRenorm matches the PyTorch composite (clipping, warm-up)", "[norm][bn]") {
  run_fixture_file("bn_renorm.safetensors", false);
  run_fixture_file("bn_renorm.safetensors", true);
}
TEST_CASE("Ghost BatchNorm (stat_batch) matches the PyTorch composite (uneven and merged chunks)", "[norm][bn]") {
  run_fixture_file("bn_ghost.safetensors", false);
  run_fixture_file("bn_ghost.safetensors", true);
}

TEST_CASE("fused kernel equals the composite reference on outputs, grads and buffers", "[norm][bn]") {
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(5, 2); }, {3, 5, 7, 9});
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(5, 1); }, {6, 5, 11});
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(5, 1, BatchNormOptions{.momentum = -1.0f}); }, {9, 5});
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(4, 2, BatchNormOptions{.affine = false}); }, {2, 4, 3, 3});
  check_fused_matches_reference([] { return std::make_shared<MeanOnlyBatchNorm>(5, 2); }, {3, 5, 7, 9});
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(5, 2, BatchNormOptions{.stat_batch = 2}); }, {7, 5, 3, 4});
  check_fused_matches_reference([] {
    BatchRenormOptions o;
    o.r_max = 1.2f;
    o.d_max = 0.3f;
    return std::make_shared<BatchRenorm>(5, 2, o);
  }, {3, 5, 7, 9});
}

TEST_CASE("gradcheck with a layer in front, input and parameters", "[norm][bn][gradcheck]") {
  BatchNorm bn2(3, 2);
  gradcheck_with_layer_in_front(bn2, {2, 3, 3, 4}, [&](const Tensor& x) { return bn2(x); });
  BatchNorm bn1(4, 1);
  gradcheck_with_layer_in_front(bn1, {6, 4}, [&](const Tensor& x) { return bn1(x); });
  MeanOnlyBatchNorm mobn(3, 2);
  gradcheck_with_layer_in_front(mobn, {2, 3, 3, 4}, [&](const Tensor& x) { return mobn(x); });
  BatchNorm gbn(3, 2, BatchNormOptions{.stat_batch = 2});
  gradcheck_with_layer_in_front(gbn, {5, 3, 2, 3}, [&](const Tensor& x) { return gbn(x); });
  RecurrentBatchNorm rbn(4, 3);
  gradcheck_with_layer_in_front(rbn, {6, 4}, [&](const Tensor& x) { return rbn.forward(x, 1); });
  // BatchRenorm: r and d are stop-gradient, so finite differences only agree where they are
  // clipped (locally constant): running stats far from the batch's, and momentum 0 so the
  // repeated forwards of gradcheck do not move them.
  BatchRenormOptions ro;
  ro.momentum = 0.0f;
  ro.r_max = 2.0f;
  ro.d_max = 0.5f;
  BatchRenorm brn(3, 2, ro);
  brn.running_var.fill_(100.0f);
  brn.running_mean.fill_(10.0f);
  gradcheck_with_layer_in_front(brn, {2, 3, 3, 4}, [&](const Tensor& x) { return brn(x); });
  // and eval mode (running statistics are constants)
  bn2.running_mean.fill_(0.2f);
  bn2.running_var.fill_(1.7f);
  bn2.eval();
  gradcheck_with_layer_in_front(bn2, {2, 3, 3, 4}, [&](const Tensor& x) { return bn2(x); });
}

TEST_CASE("BatchNorm + ReLU fused is relu(BatchNorm) to the bit: outputs, all gradients, running stats",
          "[norm][bn][relu]") {
  const SimdLevel saved = simd_level();
  for (SimdLevel l : {SimdLevel::scalar, SimdLevel::avx2, SimdLevel::avx512}) {
    if (l > best_simd_level()) continue;
    set_simd_level(l);
    // conv maps (channel kernels), features (column kernels), statistics groups
    for (const auto& [shape, stat_batch] : {std::pair{Shape{6, 3, 4, 5}, int64_t{0}}, std::pair{Shape{10, 19}, int64_t{0}},
                                            std::pair{Shape{1700, 83}, int64_t{0}},
                                            std::pair{Shape{7, 3, 2, 3}, int64_t{2}}}) {
      const int dims = shape.size() == 4 ? 2 : 1;
      const int64_t C = shape[1];
      BatchNorm two_ops(C, dims, {.stat_batch = stat_batch}), fused(C, dims, {.stat_batch = stat_batch});
      // beta of scale 0.5: about half the outputs below 0; step 2 in eval mode (running
      // statistics, constants in backward)
      check_same_bits(
          two_ops, fused, [](BatchNorm& bn, const Tensor& x) { return relu(bn(x)); },
          [](BatchNorm& bn, const Tensor& x) { return bn.forward_relu(x); }, shape, 170, 0.5f, 3, 2,
          [](const Tensor& y) {
            const std::vector<float> out = y.to_vector();
            REQUIRE(std::count(out.begin(), out.end(), 0.0f) > static_cast<long>(out.size() / 10));  // the mask is exercised
          });
    }
  }
  set_simd_level(saved);
  BatchNorm bn(3, 2);
  gradcheck_with_layer_in_front(bn, {2, 3, 3, 4}, [&](const Tensor& x) { return bn.forward_relu(x); });
}

TEST_CASE("make_norm_act fuses bn + relu, keeps Sequential's names, and unfuses under diagnostics", "[norm][bn][relu]") {
  NormOptions o;
  o.name = "bn";
  auto fused = make_norm_act(o, {4, 3, 3}, NormSite::conv, "relu");
  auto two_ops = std::make_shared<Sequential>(
      std::vector<std::shared_ptr<Module>>{make_norm(o, {4, 3, 3}, NormSite::conv), make_activation("relu")});
  CHECK(fused->name() == "Sequential(BatchNorm2d(4), ReLU; fused)");
  const auto names = [](const Module& m) {
    std::vector<std::string> n;
    for (const auto& [name, t] : m.named_parameters()) n.push_back(name);
    for (const auto& [name, t] : m.named_buffers()) n.push_back(name);
    return n;
  };
  CHECK(names(*fused) == names(*two_ops));  // "0.weight", "0.running_mean", ...: checkpoints unchanged
  // Not fused: another activation, a subclass with its own forward, a BN inside an adapter.
  CHECK(make_norm_act(o, {4, 3, 3}, NormSite::conv, "tanh")->name() == "Sequential(BatchNorm2d(4), Tanh)");
  o.name = "syncbn";
  CHECK(make_norm_act(o, {4, 3, 3}, NormSite::conv, "relu")->name().find("fused") == std::string::npos);
  o.name = "bn";

  const Tensor x = randn_shape({5, 4, 3, 3}, 190, 1.0f, 0.2f);
  fused->eval();  // no buffer changes between the two forwards
  const Tensor y_plain = fused->forward(x);
  NormDiagnostics diag;
  attach_norm_observer(*fused, &diag, "block");
  const Tensor y_observed = fused->forward(x);
  CHECK(y_observed.to_vector() == y_plain.to_vector());
  // The observer saw the norm's output before the ReLU: some of it is negative.
  auto rows = diag.take_rows();
  REQUIRE(!rows.empty());
  bool saw_negative = false;
  for (const auto& row : rows)
    if (row.layer == "0" && row.quantity == "output_p1" && row.value < 0) saw_negative = true;
  CHECK(saw_negative);
}

TEST_CASE("gradcheck with a Linear in front", "[norm][bn][gradcheck]") {
  Generator g(7);
  Linear lin(5, 4, true, g);
  BatchNorm bn(4, 1);
  Tensor x = randn_shape({6, 5}, 8);
  auto r = gradcheck([&](const std::vector<Tensor>&) { return bn(lin(x)); }, {lin.weight, lin.bias, bn.weight, bn.bias});
  INFO(r.report);
  CHECK(r.ok);
}

TEST_CASE("training with one value per channel throws, batch 1 with H*W > 1 is legal", "[norm][bn][edge]") {
  BatchNorm bn1(3, 1), bn2(3, 2);
  REQUIRE_THROWS_WITH(bn1(Tensor::ones({1, 3})), Catch::Contains("BatchNorm1d(3)") &&
                                                     Catch::Contains("Expected more than 1 value per channel"));
  REQUIRE_THROWS_WITH(bn2(Tensor::ones({1, 3, 1, 1})), Catch::Contains("[1, 3, 1, 1]"));
  REQUIRE_THROWS_AS(MeanOnlyBatchNorm(3, 1)(Tensor::ones({1, 3})), Error);
  REQUIRE_THROWS_AS(BatchNorm(3, 1, BatchNormOptions{.stat_batch = 4})(Tensor::ones({1, 3})), Error);
  RecurrentBatchNorm rbn(3, 2);
  REQUIRE_THROWS_AS(rbn.forward(Tensor::ones({1, 3}), 0), Error);
  REQUIRE_THROWS_WITH(rbn(Tensor::ones({4, 3})), Catch::Contains("forward(x, t)"));
  // wrong ranks / channels name the layer and the shape
  REQUIRE_THROWS_WITH(bn2(Tensor::ones({2, 3})), Catch::Contains("BatchNorm2d(3)") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(bn1(Tensor::ones({2, 4})), Catch::Contains("channels"));
  // eval with a batch of one is fine
  bn1.eval();
  CHECK(bn1(Tensor::ones({1, 3})).numel() == 3);
  // legal: one image, 4 values per channel (fixture case bn2d_batch1 checks the numbers)
  Tensor y = bn2(randn_shape({1, 3, 2, 2}, 1));
  CHECK(std::isfinite(y.to_vector()[0]));
}

TEST_CASE("a constant channel gives y = beta and finite gradients", "[norm][bn][edge]") {
  BatchNorm bn(2, 2);
  bn.bias.copy_(Tensor::from_vector({2}, {0.25f, -1.0f}));
  Tensor x0 = randn_shape({3, 2, 2, 2}, 2);
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t i = 0; i < 4; ++i) x0.data()[(n * 2 + 0) * 4 + i] = 5.0f;  // channel 0 constant
  Tensor x = x0.set_requires_grad();
  Tensor y = bn(x);
  y.backward(randn_shape(y.shape(), 3));
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t i = 0; i < 4; ++i) CHECK(y.data()[(n * 2) * 4 + i] == Approx(0.25f));
  for (float v : x.grad().to_vector()) CHECK(std::isfinite(v));
  for (float v : bn.weight.grad().to_vector()) CHECK(std::isfinite(v));
  CHECK(bn.running_var.to_vector()[0] == Approx(0.9f));  // 0.9 * 1 + 0.1 * 0
}

TEST_CASE("non-contiguous input gives the same output and gradient", "[norm][bn][edge]") {
  Tensor nhwc = randn_shape({3, 4, 5, 2}, 4);  // [N, H, W, C]
  Tensor xp = nhwc.clone().set_requires_grad();
  Tensor xv = xp.permute({0, 3, 1, 2});  // [N, C, H, W] view, not contiguous
  REQUIRE_FALSE(xv.is_contiguous());
  Tensor xc = xv.contiguous().detach().set_requires_grad();
  BatchNorm a(2, 2), b(2, 2);
  Tensor dy = randn_shape({3, 2, 4, 5}, 5);
  Tensor ya = a(xv), yb = b(xc);
  require_close(ya, yb, 0, 0, "permuted vs contiguous out");
  ya.backward(dy);
  yb.backward(dy);
  require_close(xp.grad().permute({0, 3, 1, 2}).contiguous(), xc.grad(), 0, 0, "permuted vs contiguous grad");
}

TEST_CASE("mean 1e4 with a small variance is normalized correctly", "[norm][bn][edge]") {
  Tensor x = randn_shape({8, 3, 16, 16}, 6, 0.01f, 1.0e4f);
  BatchNorm bn(3, 2);
  Tensor y = bn(x);
  // expected in double from the very same float inputs
  std::vector<float> xv = x.to_vector(), yv = y.to_vector();
  const int64_t S = 256;
  for (int64_t c = 0; c < 3; ++c) {
    double s = 0, s2 = 0;
    for (int64_t n = 0; n < 8; ++n)
      for (int64_t i = 0; i < S; ++i) s += xv[(n * 3 + c) * S + i];
    const double m = s / (8 * S);
    for (int64_t n = 0; n < 8; ++n)
      for (int64_t i = 0; i < S; ++i) s2 += std::pow(xv[(n * 3 + c) * S + i] - m, 2);
    const double var = s2 / (8 * S), rstd = 1 / std::sqrt(var + 1e-5);
    double max_err = 0;
    for (int64_t n = 0; n < 8; ++n)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t j = (n * 3 + c) * S + i;
        max_err = std::max(max_err, std::abs(yv[j] - (xv[j] - m) * rstd));
      }
    INFO("channel " << c << " var " << var);
    CHECK(max_err < 1e-3);
    CHECK(bn.running_mean.to_vector()[c] == Approx(0.1 * m).epsilon(1e-6));
    CHECK(bn.running_var.to_vector()[c] == Approx(0.9 + 0.1 * var * 2048 / 2047).epsilon(1e-5));
  }
}

TEST_CASE("eval mode uses the running stats and changes no buffer", "[norm][bn]") {
  BatchNorm bn(3, 2);
  bn(randn_shape({4, 3, 2, 2}, 1, 2.0f, 1.0f));
  bn.eval();
  auto before = bn.named_buffers();
  std::vector<std::vector<float>> saved;
  for (auto& [n, t] : before) saved.push_back(t.to_vector());
  Tensor x = randn_shape({2, 3, 2, 2}, 2);
  Tensor y = bn(x);
  for (size_t i = 0; i < before.size(); ++i) CHECK(before[i].second.to_vector() == saved[i]);
  const float m = bn.running_mean.to_vector()[1], v = bn.running_var.to_vector()[1];
  CHECK(y.at({1, 1, 0, 1}) == Approx((x.at({1, 1, 0, 1}) - m) / std::sqrt(v + 1e-5f)));
}

TEST_CASE("BatchRenorm with r_max = 1, d_max = 0 is BatchNorm exactly", "[norm][brn]") {
  BatchRenormOptions o;
  o.r_max = 1.0f;
  o.d_max = 0.0f;
  BatchRenorm brn(3, 2, o);
  BatchNorm bn(3, 2);
  for (int step = 0; step < 3; ++step) {
    Tensor x = randn_shape({4, 3, 3, 3}, 30 + step, 2.0f, 1.0f);
    Tensor xa = x.clone().set_requires_grad(), xb = x.clone().set_requires_grad();
    Tensor ya = brn(xa), yb = bn(xb);
    require_close(ya, yb, 0, 0, "brn vs bn out");
    Tensor dy = randn_shape(x.shape(), 40 + step);
    ya.backward(dy);
    yb.backward(dy);
    require_close(xa.grad(), xb.grad(), 0, 0, "brn vs bn grad_x");
    require_close(brn.weight.grad(), bn.weight.grad(), 0, 0, "brn vs bn grad_weight");
  }
  require_close(brn.running_mean, bn.running_mean, 0, 0, "running_mean");
  require_close(brn.running_var, bn.running_var, 0, 0, "running_var");
}

TEST_CASE("BatchRenorm warm-up ramps r_max and d_max linearly", "[norm][brn]") {
  BatchRenormOptions o;
  o.r_max = 3.0f;
  o.d_max = 4.0f;
  o.warmup_steps = 4;
  BatchRenorm brn(2, 1, o);
  CHECK(brn.current_r_max() == 1.0f);
  CHECK(brn.current_d_max() == 0.0f);
  brn(randn_shape({4, 2}, 1));
  CHECK(brn.current_r_max() == Approx(1.5f));
  CHECK(brn.current_d_max() == Approx(1.0f));
  for (int i = 0; i < 5; ++i) brn(randn_shape({4, 2}, 2 + i));
  CHECK(brn.current_r_max() == 3.0f);
  CHECK(brn.current_d_max() == 4.0f);
}

TEST_CASE("a statistics batch >= the batch is BatchNorm exactly", "[norm][gbn]") {
  BatchNorm gbn(3, 2, BatchNormOptions{.stat_batch = 8});
  BatchNorm bn(3, 2);
  Tensor x = randn_shape({8, 3, 2, 3}, 9, 1.5f);
  Tensor xa = x.clone().set_requires_grad(), xb = x.clone().set_requires_grad();
  Tensor ya = gbn(xa), yb = bn(xb);
  require_close(ya, yb, 0, 0, "gbn vs bn out");
  Tensor dy = randn_shape(x.shape(), 10);
  ya.backward(dy);
  yb.backward(dy);
  require_close(xa.grad(), xb.grad(), 0, 0, "gbn vs bn grad_x");
  require_close(gbn.running_var, bn.running_var, 0, 0, "running_var");
  CHECK(gbn.stat_groups(7) == std::vector<int64_t>{0, 7});
  BatchNorm g3(3, 2, BatchNormOptions{.stat_batch = 3});
  CHECK(g3.stat_groups(7) == std::vector<int64_t>{0, 3, 7});  // leftover 1 merged
  CHECK(g3.stat_groups(8) == std::vector<int64_t>{0, 3, 6, 8});
  CHECK(BatchNorm(3, 2).stat_groups(8) == std::vector<int64_t>{0, 8});
}

TEST_CASE("RecurrentBatchNorm keeps statistics per time step", "[norm][rbn]") {
  RecurrentBatchNorm rbn(4, 3);
  CHECK(rbn.weight.to_vector() == std::vector<float>(4, 0.1f));
  CHECK(rbn.running_mean.shape() == Shape{3, 4});
  BatchNorm ref(4, 1);
  ref.weight.fill_(0.1f);
  Tensor x1 = randn_shape({5, 4}, 11, 1.0f, 2.0f);
  require_close(rbn.forward(x1, 1), ref(x1), 1e-6, 1e-6, "step 1 vs BatchNorm1d");
  std::vector<float> rm = rbn.running_mean.to_vector(), want = ref.running_mean.to_vector();
  for (int64_t c = 0; c < 4; ++c) {
    CHECK(rm[c] == 0.0f);           // step 0 untouched
    CHECK(rm[4 + c] == Approx(want[c]));  // step 1 updated
    CHECK(rm[8 + c] == 0.0f);
  }
  rbn.forward(randn_shape({5, 4}, 12, 1.0f, -3.0f), 7);  // beyond max_steps: last row
  CHECK(rbn.running_mean.to_vector()[8] < -0.1f);
  CHECK(rbn.num_batches_tracked.to_vector() == std::vector<float>{0, 1, 1});
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(4, 1); }, {5, 4});
  RecurrentBatchNorm a(4, 2), b(4, 2);
  for (int64_t t = 0; t < 3; ++t) {
    Tensor x = randn_shape({6, 4}, 50 + t, 2.0f, 1.0f);
    require_close(a.forward(x, t), b.reference_forward(x, t), 1e-5, 1e-5, "rbn fused vs reference");
  }
  require_close(a.running_var, b.running_var, 1e-6, 1e-5, "rbn running_var");
  a.eval();
  b.eval();
  Tensor x = randn_shape({6, 4}, 60);
  require_close(a.forward(x, 1), b.reference_forward(x, 1), 1e-5, 1e-5, "rbn eval");
}

TEST_CASE("every SIMD level computes the same BatchNorm, deterministically", "[norm][bn][simd]") {
  const SimdLevel saved = simd_level();
  Tensor x = randn_shape({3, 4, 9, 7}, 70, 2.0f, 3.0f), dy = randn_shape({3, 4, 9, 7}, 71);
  std::vector<Tensor> outs, grads;
  for (SimdLevel l : {SimdLevel::scalar, SimdLevel::avx2, SimdLevel::avx512}) {
    if (l > best_simd_level()) continue;
    set_simd_level(l);
    for (int rep = 0; rep < 2; ++rep) {
      BatchNorm bn(4, 2);
      Tensor xi = x.clone().set_requires_grad();
      Tensor y = bn(xi);
      y.backward(dy);
      outs.push_back(y);
      grads.push_back(xi.grad());
    }
    require_close(outs[outs.size() - 1], outs[outs.size() - 2], 0, 0, std::string("repeat out ") + simd_level_name(l));
    require_close(grads[grads.size() - 1], grads[grads.size() - 2], 0, 0, "repeat grad");
  }
  set_simd_level(saved);
  for (size_t i = 2; i < outs.size(); i += 2) {
    require_close(outs[i], outs[0], 1e-5, 1e-5, "simd level vs scalar out");
    require_close(grads[i], grads[0], 1e-5, 1e-5, "simd level vs scalar grad");
  }
}

namespace {
struct TwoLayerNet : Module {
  std::shared_ptr<BatchNorm> bn;
  std::shared_ptr<MeanOnlyBatchNorm> mobn;
  TwoLayerNet() {
    bn = register_module("body", std::make_shared<BatchNorm>(3, 1, BatchNormOptions{.momentum = 0.1f}));
    mobn = register_module("head", std::make_shared<MeanOnlyBatchNorm>(3, 1));
  }
  Tensor forward(const Tensor& x) override { return (*mobn)((*bn)(x)); }
  std::string name() const override { return "TwoLayerNet"; }
};
}  // namespace

TEST_CASE("precise BN recovers population statistics where momentum stats are off", "[norm][precise]") {
  TwoLayerNet net;
  auto found = find_batch_stat_norms(net);
  REQUIRE(found.size() == 2);
  CHECK(found[0].first == "body");
  CHECK(found[1].first == "head");
  // population: channel c ~ N(mu_c, sd_c^2). Training saw a different distribution last.
  const std::vector<float> mu{3.0f, -1.0f, 0.5f}, sd{2.0f, 0.5f, 1.0f};
  Generator g(99);
  auto batch = [&](float shift) {
    Tensor x = randn({16, 3}, g);
    for (int64_t n = 0; n < 16; ++n)
      for (int64_t c = 0; c < 3; ++c) x.data()[n * 3 + c] = x.data()[n * 3 + c] * sd[c] + mu[c] + shift;
    return x;
  };
  for (int i = 0; i < 5; ++i) net(batch(-4.0f));
  CHECK(std::abs(net.bn->running_mean.to_vector()[0] - mu[0]) > 1.0f);  // momentum stats are off
  const std::vector<float> w_before = net.bn->weight.to_vector();
  net.eval();
  int64_t k = 0;
  const int64_t used = update_precise_bn_stats(net, [&]() { return k++ < 400 ? batch(0.0f) : Tensor(); }, 1000);
  CHECK(used == 400);
  CHECK_FALSE(net.is_training());  // mode restored
  CHECK(net.bn->weight.to_vector() == w_before);
  std::vector<float> rm = net.bn->running_mean.to_vector(), rv = net.bn->running_var.to_vector();
  for (int c = 0; c < 3; ++c) {
    INFO("channel " << c);
    CHECK(rm[c] == Approx(mu[c]).margin(0.05 * sd[c]));
    CHECK(rv[c] == Approx(sd[c] * sd[c]).epsilon(0.05));
    CHECK(std::abs(net.mobn->running_mean.to_vector()[c]) < 0.05f);  // BN output has mean beta = 0
  }
  CHECK(net.bn->num_batches_tracked.item() == 5.0f);  // precise BN does not count batches
  REQUIRE_THROWS_AS(update_precise_bn_stats(*std::make_shared<Linear>(2, 2), [] { return Tensor(); }, 1), Error);
}

TEST_CASE("an input used twice gets both gradient contributions", "[norm][bn]") {
  // The fused backward adds dx into an existing gradient in the kernel (second use) and
  // hands over a fresh buffer on the first use; both paths must agree with the composite.
  BatchNorm a(3, 2), b(3, 2, BatchNormOptions{.affine = false});
  Tensor x0 = randn_shape({2, 3, 3, 3}, 80, 1.0f, 2.0f), dy = randn_shape({2, 3, 3, 3}, 81);
  Tensor xf = x0.clone().set_requires_grad(), xr = x0.clone().set_requires_grad();
  (a(xf) + b(xf) * 2.0f).backward(dy);
  (a.reference_forward(xr) + b.reference_forward(xr) * 2.0f).backward(dy);
  require_close(xf.grad(), xr.grad(), 1e-5, 1e-5, "twice-used input grad");
}

// BatchNorm1d on [N, C] runs the column kernels (one value per plane would leave the
// channel kernels scalar) over row blocks of ~64K values (768 rows at C = 83) merged in
// order, inside which row tiles of 32 and channel tiles of 64: sizes that divide none of
// them, several row blocks (1700 = 768 + 768 + 164; groups of 1000 and 700 cut them), ghost
// chunks, eval and a twice-used input are all checked against the composite.
TEST_CASE("BatchNorm1d on [N, C] (column kernels) equals the composite reference", "[norm][bn]") {
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(83, 1); }, {101, 83});
  // 1700 rows: d-gamma sums 1700 products, and the composite (scalar level: one float running
  // sum) is off by ~2e-5 there itself, hence 1e-4.
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(83, 1); }, {1700, 83}, 1e-4f);
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(83, 1, BatchNormOptions{.stat_batch = 1000}); },
                                {1700, 83}, 1e-4f);
  check_fused_matches_reference([] { return std::make_shared<MeanOnlyBatchNorm>(83, 1); }, {1700, 83}, 1e-4f);
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(17, 1, BatchNormOptions{.affine = false}); },
                                {33, 17});
  check_fused_matches_reference([] { return std::make_shared<MeanOnlyBatchNorm>(19, 1); }, {70, 19});
  check_fused_matches_reference([] { return std::make_shared<BatchNorm>(21, 1, BatchNormOptions{.stat_batch = 30}); }, {75, 21});
  BatchNorm bn(83, 1), ref(83, 1);
  for (int step = 0; step < 2; ++step) {  // fill running stats, then eval
    Tensor x = randn_shape({101, 83}, 90 + step, 2.0f, 1.0f);
    bn(x);
    ref.reference_forward(x);
  }
  bn.eval();
  ref.eval();
  Tensor x0 = randn_shape({64, 83}, 92), dy = randn_shape({64, 83}, 93);
  Tensor xf = x0.clone().set_requires_grad(), xr = x0.clone().set_requires_grad();
  (bn(xf) + bn(xf)).backward(dy);
  (ref.reference_forward(xr) + ref.reference_forward(xr)).backward(dy);
  require_close(xf.grad(), xr.grad(), 1e-5, 1e-5, "eval [N, C], twice-used input grad");
}

TEST_CASE("BatchNorm1d on [N, C]: the thread count does not change a bit (row blocks merged in order)", "[norm][bn]") {
  const Tensor x0 = randn_shape({1700, 83}, 95, 2.0f, 1.0f), dy = randn_shape({1700, 83}, 96);
  const int saved_threads = num_threads();
  std::vector<std::vector<Tensor>> results;
  for (int t : {1, 2}) {
    set_num_threads(t);
    BatchNorm bn(83, 1);
    Tensor x = x0.clone().set_requires_grad();
    Tensor y = bn(x);
    y.backward(dy);
    results.push_back({y, x.grad(), bn.weight.grad(), bn.bias.grad(), bn.running_mean.clone(), bn.running_var.clone()});
  }
  set_num_threads(saved_threads);
  for (size_t i = 0; i < results[0].size(); ++i)
    require_close(results[1][i], results[0][i], 0, 0, "2 threads vs 1 #" + std::to_string(i));
}

TEST_CASE("BatchNorm1d on [N, C] with mean 1e4 and a small variance is normalized correctly", "[norm][bn][edge]") {
  const int64_t N = 8000, C = 20;  // three row blocks (3264 rows each at C = 20)
  Tensor x = randn_shape({N, C}, 94, 0.01f, 1.0e4f);
  BatchNorm bn(C, 1);
  const std::vector<float> xv = x.to_vector(), yv = bn(x).to_vector();
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, s2 = 0;
    for (int64_t n = 0; n < N; ++n) s += xv[n * C + c];
    const double m = s / N;
    for (int64_t n = 0; n < N; ++n) s2 += std::pow(xv[n * C + c] - m, 2);
    const double var = s2 / N, rstd = 1 / std::sqrt(var + 1e-5);
    double max_err = 0;
    for (int64_t n = 0; n < N; ++n) max_err = std::max(max_err, std::abs(yv[n * C + c] - (xv[n * C + c] - m) * rstd));
    INFO("channel " << c << " var " << var);
    CHECK(max_err < 1e-3);
    CHECK(bn.running_var.to_vector()[c] == Approx(0.9 + 0.1 * var * N / (N - 1)).epsilon(1e-5));
  }
}

namespace {
// A layer with stat_batch b on a batch of N must be exactly the same layer run on each
// statistics group by itself, one forward per group in order (stat_batch 0): outputs, input
// gradients and running statistics bit for bit, parameter gradients (a double sum over the
// groups there, a float sum of per-group results here) to float rounding; then eval.
template <typename Make>
void check_groups_are_separate_forwards(Make make, const Shape& shape, int64_t b) {
  auto grouped = make(b), alone = make(0);
  REQUIRE(grouped->stat_batch() == b);
  const int64_t N = shape[0];
  const std::vector<int64_t> groups = grouped->stat_groups(N);
  REQUIRE(groups.size() > 2);  // the test needs several groups
  for (int step = 0; step < 2; ++step) {
    const Tensor x0 = randn_shape(shape, 100 + step, 1.5f, 0.4f), dy = randn_shape(shape, 110 + step);
    Tensor xg = x0.clone().set_requires_grad(), xa = x0.clone().set_requires_grad();
    Tensor yg = grouped->forward(xg);
    yg.backward(dy);
    std::vector<Tensor> ys;
    for (size_t k = 0; k + 1 < groups.size(); ++k) {
      Tensor yk = alone->forward(xa.slice(0, groups[k], groups[k + 1]));
      yk.backward(dy.slice(0, groups[k], groups[k + 1]).contiguous());
      ys.push_back(yk.detach());
    }
    const std::string what = grouped->name() + " step " + std::to_string(step);
    require_close(yg, concat(ys, 0), 0, 0, what + " out");
    require_close(xg.grad(), xa.grad(), 0, 0, what + " grad_x");
    auto pg = grouped->named_parameters(), pa = alone->named_parameters();
    REQUIRE(pg.size() == pa.size());
    for (size_t i = 0; i < pg.size(); ++i)
      require_close(pg[i].second.grad(), pa[i].second.grad(), 1e-5, 1e-6, what + " grad " + pg[i].first);
    auto bg = grouped->named_buffers(), ba = alone->named_buffers();
    REQUIRE(bg.size() == ba.size());
    for (size_t i = 0; i < bg.size(); ++i)
      require_close(bg[i].second, ba[i].second, 0, 0, what + " buffer " + bg[i].first);
  }
  grouped->eval();
  alone->eval();
  const Tensor x = randn_shape(shape, 120);
  require_close(grouped->forward(x), alone->forward(x), 0, 0, grouped->name() + " eval");
}
}  // namespace

TEST_CASE("stat_batch b: each statistics group is normalized as its own forward (bn, mobn, brn)", "[norm][gbn]") {
  for (const Shape& shape : {Shape{10, 3, 4, 5}, Shape{70, 37}}) {  // channel kernels and column kernels
    const int dims = shape.size() == 4 ? 2 : 1;
    const int64_t b = dims == 2 ? 3 : 16;  // 10 = 3+3+4 (merged leftover), 70 = 16*4+6
    check_groups_are_separate_forwards([&](int64_t sb) {
      return std::make_shared<BatchNorm>(shape[1], dims, BatchNormOptions{.stat_batch = sb});
    }, shape, b);
    check_groups_are_separate_forwards([&](int64_t sb) {
      return std::make_shared<BatchNorm>(shape[1], dims, BatchNormOptions{.momentum = -1.0f, .stat_batch = sb});
    }, shape, b);
    check_groups_are_separate_forwards([&](int64_t sb) {
      return std::make_shared<MeanOnlyBatchNorm>(shape[1], dims, BatchNormOptions{.stat_batch = sb});
    }, shape, b);
    // BatchRenorm: tight clips that bind, running stats far from the data and a warm-up, so
    // each group's r, d and clip depend on the updates of the groups before it.
    check_groups_are_separate_forwards([&](int64_t sb) {
      BatchRenormOptions o;
      o.momentum = 0.3f;
      o.stat_batch = sb;
      o.r_max = 1.5f;
      o.d_max = 0.5f;
      o.warmup_steps = 5;
      auto m = std::make_shared<BatchRenorm>(shape[1], dims, o);
      m->running_mean.fill_(0.8f);
      m->running_var.fill_(4.0f);
      return m;
    }, shape, b);
  }
}

TEST_CASE("stat_batch: fused equals the composite reference for every BatchNorm-family layer", "[norm][gbn]") {
  check_fused_matches_reference([] { return std::make_shared<MeanOnlyBatchNorm>(5, 2, BatchNormOptions{.stat_batch = 3}); },
                                {8, 5, 3, 2});
  check_fused_matches_reference([] {
    BatchRenormOptions o;
    o.stat_batch = 2;
    o.r_max = 1.2f;
    o.d_max = 0.3f;
    o.warmup_steps = 3;
    return std::make_shared<BatchRenorm>(5, 2, o);
  }, {7, 5, 3, 4});
  RecurrentBatchNorm a(4, 2, RecurrentBatchNormOptions{{.stat_batch = 3}}), b(4, 2, RecurrentBatchNormOptions{{.stat_batch = 3}});
  for (int64_t t = 0; t < 3; ++t) {
    Tensor x = randn_shape({9, 4}, 130 + t, 2.0f, 1.0f);
    require_close(a.forward(x, t), b.reference_forward(x, t), 1e-5, 1e-5, "rbn stat_batch fused vs reference");
  }
  require_close(a.running_var, b.running_var, 1e-6, 1e-5, "rbn stat_batch running_var");
  CHECK(a.num_batches_tracked.to_vector() == std::vector<float>{3, 6});  // 3 groups per step; step 2 shares row 1
  REQUIRE_THROWS_WITH(BatchNorm(3, 2, BatchNormOptions{.stat_batch = 1}), Catch::Contains("stat_batch"));
}

TEST_CASE("the combine hooks make two workers' halves one BatchNorm over the whole batch (SyncBN)", "[norm][bn]") {
  // Two simulated workers hold the samples [0, 4) and [4, 10) of one batch. Each runs the op
  // on its half; its hooks add the other half's partial moments (merge_moments) and grad
  // sums, as an all-reduce would. Outputs and dx must be the whole-batch BatchNorm's rows,
  // and the two workers' dgamma/dbeta must add up to the whole batch's.
  for (const Shape& shape : {Shape{10, 3, 4, 5}, Shape{10, 19}}) {
    const int64_t C = shape[1], S = shape.size() == 4 ? 20 : 1;
    const Tensor x = randn_shape(shape, 140, 2.0f, 3.0f), dy = randn_shape(shape, 141);
    BatchNorm whole(C, shape.size() == 4 ? 2 : 1);
    whole.weight.copy_(randn_shape({C}, 142, 0.3f, 1.0f));
    whole.bias.copy_(randn_shape({C}, 143));
    Tensor xw = x.clone().set_requires_grad();
    Tensor yw = whole(xw);
    yw.backward(dy);
    const std::vector<float> xv = x.to_vector(), dyv = dy.to_vector();
    auto at = [&](int64_t n, int64_t c, int64_t s) { return (n * C + c) * S + s; };
    std::vector<double> mean(C, 0.0);  // of the whole batch, for the other half's grad sums
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t n = 0; n < 10; ++n)
        for (int64_t s = 0; s < S; ++s) mean[c] += xv[at(n, c, s)];
      mean[c] /= 10.0 * S;
    }
    const int64_t split[3] = {0, 4, 10};
    Tensor dgamma = Tensor::zeros({C}), dbeta = Tensor::zeros({C});
    for (int w = 0; w < 2; ++w) {
      const int64_t o0 = split[1 - w], o1 = split[2 - w];  // the other worker's samples
      bn_detail::GroupMoments other{std::vector<double>(C), std::vector<double>(C, 0.0), std::vector<double>(C, 0.0)};
      bn_detail::GradSums other_sums{std::vector<double>(C, 0.0), std::vector<double>(C, 0.0)};
      for (int64_t c = 0; c < C; ++c) {
        other.count[c] = static_cast<double>((o1 - o0) * S);
        for (int64_t n = o0; n < o1; ++n)
          for (int64_t s = 0; s < S; ++s) other.mean[c] += xv[at(n, c, s)] / other.count[c];
        for (int64_t n = o0; n < o1; ++n)
          for (int64_t s = 0; s < S; ++s) {
            const double v = xv[at(n, c, s)], g = dyv[at(n, c, s)];
            other.m2[c] += (v - other.mean[c]) * (v - other.mean[c]);
            other_sums.sum_dy[c] += g;
            other_sums.sum_dy_xmu[c] += g * (v - mean[c]);
          }
      }
      int calls = 0;
      bn_detail::BatchNormSpec spec;
      spec.combine_moments = [&](bn_detail::GroupMoments& m) { ++calls, bn_detail::merge_moments(m, other); };
      spec.combine_grad_sums = [&](bn_detail::GradSums& g) {
        ++calls;
        for (int64_t c = 0; c < C; ++c) g.sum_dy[c] += other_sums.sum_dy[c], g.sum_dy_xmu[c] += other_sums.sum_dy_xmu[c];
      };
      Tensor weight = whole.weight.detach().clone().set_requires_grad(), bias = whole.bias.detach().clone().set_requires_grad();
      const int64_t m0 = split[w], m1 = split[w + 1];
      Tensor xm = x.slice(0, m0, m1).contiguous().set_requires_grad();
      Tensor ym = bn_detail::batch_norm(xm, C, weight, bias, spec);
      ym.backward(dy.slice(0, m0, m1).contiguous());
      CHECK(calls == 2);
      require_close(ym, yw.slice(0, m0, m1).contiguous(), 1e-5, 1e-5, "worker out vs whole batch");
      require_close(xm.grad(), xw.grad().slice(0, m0, m1).contiguous(), 1e-5, 1e-5, "worker dx vs whole batch");
      dgamma = dgamma + weight.grad();
      dbeta = dbeta + bias.grad();
    }
    require_close(dgamma, whole.weight.grad(), 1e-5, 1e-5, "sum of workers' dgamma");
    require_close(dbeta, whole.bias.grad(), 1e-5, 1e-5, "sum of workers' dbeta");
  }
}

TEST_CASE("SyncBatchNorm in one process is BatchNorm to the bit: outputs, all gradients, running stats",
          "[norm][bn][syncbn]") {
  // Its hooks all-gather and all-reduce over a world of one: the merge takes the one rank's
  // moments as they are and the weighted sums come back unchanged (share 1).
  for (const Shape& shape : {Shape{6, 3, 4, 5}, Shape{10, 19}}) {
    const int dims = shape.size() == 4 ? 2 : 1;
    const int64_t C = shape[1];
    BatchNorm bn(C, dims);
    SyncBatchNorm sync(C, dims);
    const BnForward forward = [](BatchNorm& layer, const Tensor& x) { return layer(x); };  // virtual: sync's own
    check_same_bits(bn, sync, forward, forward, shape, 150, 1.0f, 2, 2);
    CHECK(sync.num_batches_tracked.item() == 2.0f);
  }
}
