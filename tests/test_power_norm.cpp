// Tests of PowerNorm (layers/norm/power_norm.hpp). PyTorch has no PowerNorm, so:
//  * fused with backward = exact == reference_forward (primitive ops) over several training
//    steps across the end of warm-up, and in eval: outputs, every gradient, every buffer;
//  * gradcheck of the exact mode (warm-up, after warm-up, eval), with a layer in front;
//  * the approximate (official) backward == its formula built here from primitive ops,
//    ema_gz update included; in warm-up with nu set to this batch's mean(g z) it is the exact
//    gradient, after warm-up it is not (the test that shows where they differ);
//  * the official algorithm run by PyTorch (scripts/make_power_norm_fixtures.py, a
//    transcription of MaskPowerNorm's forward and PowerFunction.backward in float64);
//  * sentinel-filled parameter grads, SIMD levels and thread counts, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "core/gradcheck.hpp"
#include "core/kernels/kernels.hpp"
#include "core/parallel.hpp"
#include "layers/norm/power_norm.hpp"
#include "tests/support/fixtures.hpp"

using namespace nl;
using nl::test::case_params;
using nl::test::fixture_cases;
using nl::test::load_fixture;
using nl::test::require_close;

namespace {

Tensor leaf(const Tensor& t) { return t.clone().set_requires_grad(true); }

PowerNormOptions opts(int64_t warmup, PowerNormBackward b, int64_t groups = 1) {
  PowerNormOptions o;
  o.warmup_steps = warmup;
  o.backward = b;
  o.groups = groups;
  return o;
}

// Gives a layer non-trivial parameters and copies parameters and buffers to another.
void randomize(PowerNorm& m, Generator& gen) {
  NoGradGuard ng;
  m.weight.copy_(randn(m.weight.shape(), gen) * 0.3f + 1.0f);
  m.bias.copy_(randn(m.bias.shape(), gen) * 0.3f);
  m.running_phi.copy_(rand(m.running_phi.shape(), gen) + 0.5f);
  m.ema_gz.copy_(randn(m.ema_gz.shape(), gen) * 0.5f);
}
void copy_state(const PowerNorm& from, PowerNorm& to) {
  auto a = from.named_parameters(), b = to.named_parameters();
  for (size_t i = 0; i < a.size(); ++i) b[i].second.copy_(a[i].second);
  auto c = from.named_buffers(), d = to.named_buffers();
  for (size_t i = 0; i < c.size(); ++i) d[i].second.copy_(c[i].second);
}

struct StepResult {
  Tensor y, grad_x, grad_w, grad_b;
};
StepResult step(PowerNorm& m, const Tensor& x0, const Tensor& dy, bool reference) {
  m.zero_grad();
  Tensor x = leaf(x0);
  Tensor y = reference ? m.reference_forward(x) : m.forward(x);
  y.backward(dy);
  return {y, x.grad(), m.weight.grad(), m.bias.grad()};
}

// s = GroupScaling1D(x), from primitive ops, x: [R, C].
Tensor group_scaling(const Tensor& x, int64_t groups, float eps) {
  const int64_t R = x.size(0), C = x.size(1);
  const Tensor xg = x.reshape({R, groups, C / groups});
  return (xg * rsqrt(mean(xg * xg, {2}, true) + eps)).reshape({R, C});
}

}  // namespace

TEST_CASE("PowerNorm exact backward: fused == primitive-op reference across warm-up, and in eval",
          "[norm][power_norm][reference]") {
  Generator gen(5);
  for (int64_t groups : {1, 4}) {
    const Shape xs{3, 5, 32};  // tokens [B, T, C]; 32 features: two column blocks of 16
    PowerNorm fused(32, opts(3, PowerNormBackward::exact, groups)), ref(32, opts(3, PowerNormBackward::exact, groups));
    randomize(fused, gen);
    copy_state(fused, ref);
    for (int t = 1; t <= 6; ++t) {  // steps 1-3 in warm-up (batch qm_B), 4-6 with running_phi
      INFO("groups " << groups << " step " << t);
      CHECK(fused.in_warmup() == (t <= 3));
      const Tensor x0 = randn(xs, gen) * 2.0f + 0.5f, dy = randn(xs, gen);
      const StepResult a = step(fused, x0, dy, false), b = step(ref, x0, dy, true);
      const std::string w = fused.name() + " step " + std::to_string(t);
      require_close(a.y, b.y, 1e-5, 1e-4, w + " out");
      require_close(a.grad_x, b.grad_x, 1e-5, 1e-4, w + " grad_x");
      require_close(a.grad_w, b.grad_w, 1e-4, 1e-4, w + " grad_weight");
      require_close(a.grad_b, b.grad_b, 1e-4, 1e-4, w + " grad_bias");
      require_close(fused.running_phi, ref.running_phi, 1e-6, 1e-5, w + " running_phi");
      CHECK(fused.iters.item() == static_cast<float>(t));
      CHECK(ref.iters.item() == static_cast<float>(t));
    }
    fused.eval();
    ref.eval();
    const Tensor phi = fused.running_phi.clone(), x0 = randn(xs, gen), dy = randn(xs, gen);
    const StepResult a = step(fused, x0, dy, false), b = step(ref, x0, dy, true);
    require_close(a.y, b.y, 1e-5, 1e-4, "eval out");
    require_close(a.grad_x, b.grad_x, 1e-5, 1e-4, "eval grad_x");
    require_close(fused.running_phi, phi, 0, 0, "eval leaves running_phi");
    CHECK(fused.iters.item() == 6.0f);
  }
}

TEST_CASE("PowerNorm running_phi follows the official rule: cumulative average then EMA in warm-up, EMA after",
          "[norm][power_norm]") {
  Generator gen(6);
  PowerNormOptions o = opts(3, PowerNormBackward::exact);
  o.alpha_fwd = 0.8f;
  PowerNorm m(4, o);
  std::vector<double> phi(4, 1.0);
  for (int t = 1; t <= 5; ++t) {
    const Tensor x = randn({10, 4}, gen);
    const std::vector<float> s = group_scaling(x, 1, o.eps).to_vector();
    m.forward(x);
    for (int64_t c = 0; c < 4; ++c) {
      double qm = 0.0;
      for (int64_t r = 0; r < 10; ++r) qm += static_cast<double>(s[r * 4 + c]) * s[r * 4 + c];
      qm /= 10.0;
      if (t < 3) phi[c] = phi[c] * (t - 1) / t + qm / t;
      phi[c] = 0.8 * phi[c] + 0.2 * qm;
      CHECK(m.running_phi.data()[c] == Approx(phi[c]).epsilon(1e-5));
    }
  }
}

TEST_CASE("PowerNorm gradcheck of the exact mode: warm-up, after warm-up, eval, with a layer in front",
          "[norm][power_norm][gradcheck]") {
  Generator gen(7);
  struct Case {
    int64_t warmup, groups;
    bool eval;
  };
  for (const Case c : {Case{1000, 1, false}, Case{1000, 2, false}, Case{0, 1, false}, Case{0, 2, true}}) {
    PowerNorm m(6, opts(c.warmup, PowerNormBackward::exact, c.groups));
    randomize(m, gen);
    if (c.eval) m.eval();
    const Shape xshape{2, 4, 6};
    Tensor x = randn(xshape, gen).set_requires_grad(true);
    Tensor s = (rand(xshape, gen) + 0.5f).set_requires_grad(true);
    Tensor t = randn(xshape, gen).set_requires_grad(true);
    std::vector<Tensor> inputs{x, s, t, m.weight, m.bias};
    // Every call of fn starts from the same buffers (a training forward updates them).
    const Tensor phi0 = m.running_phi.clone(), iters0 = m.iters.clone();
    auto fn = [&](const std::vector<Tensor>& in) {
      m.running_phi.copy_(phi0);
      m.iters.copy_(iters0);
      return m.forward(in[0] * in[1] + in[2]);
    };
    GradcheckResult r = gradcheck(fn, inputs);
    INFO(m.name() << " warmup " << c.warmup << " eval " << c.eval << " gradcheck:\n" << r.report);
    CHECK(r.ok);
  }
}

TEST_CASE("PowerNorm approximate backward == its formula rstd_B * (g - nu z), ema_gz += mean(g_tilde z)",
          "[norm][power_norm][approximate]") {
  Generator gen(8);
  for (int64_t warmup : {100, 0}) {  // in warm-up (phi = qm_B) and after it (phi = running_phi)
    for (int64_t groups : {1, 2}) {
      const int64_t R = 40, C = 20;
      PowerNorm m(C, opts(warmup, PowerNormBackward::approximate, groups));
      randomize(m, gen);
      const Tensor x0 = randn({R, C}, gen) * 1.5f, dy = randn({R, C}, gen);
      const Tensor ema0 = m.ema_gz.clone(), phi0 = m.running_phi.clone();
      const StepResult got = step(m, x0, dy, false);

      // The expected gradients, from primitive ops (the constants detached by construction).
      const float eps = m.options.eps, ab = m.options.alpha_bkw;
      Tensor x = leaf(x0);
      Tensor s = group_scaling(x, groups, eps);
      const Tensor sd = s.detach();
      const Tensor rstd_B = rsqrt(mean(sd * sd, {0}, true) + eps);
      const Tensor rstd = warmup > 0 ? rstd_B : rsqrt(phi0.reshape({1, C}) + eps);
      const Tensor z = sd * rstd, g = dy * m.weight.detach(), nu = ema0.reshape({1, C}) * (1.0f - ab);
      const Tensor g_tilde = g - nu * z;
      s.backward(rstd_B * g_tilde);
      const std::string w = m.name() + (warmup > 0 ? " in warm-up" : " after warm-up");
      require_close(got.y, z * m.weight.detach() + m.bias.detach(), 1e-5, 1e-4, w + " out");
      require_close(got.grad_x, x.grad(), 1e-5, 1e-4, w + " grad_x");
      require_close(got.grad_w, sum(dy * z, {0}), 1e-4, 1e-4, w + " grad_weight");
      require_close(got.grad_b, sum(dy, {0}), 1e-4, 1e-4, w + " grad_bias");
      require_close(m.ema_gz, ema0 + mean(g_tilde * z, {0}), 1e-5, 1e-4, w + " ema_gz");
    }
  }
}

TEST_CASE("PowerNorm approximate vs exact: equal in warm-up when nu is this batch's mean(g z), not after",
          "[norm][power_norm][approximate]") {
  Generator gen(9);
  const int64_t R = 64, C = 16;
  const Tensor x0 = randn({R, C}, gen) * 2.0f, dy = randn({R, C}, gen);
  for (int64_t warmup : {100, 0}) {
    PowerNorm approx(C, opts(warmup, PowerNormBackward::approximate)), exact(C, opts(warmup, PowerNormBackward::exact));
    randomize(exact, gen);
    copy_state(exact, approx);
    // nu = (1 - alpha_bkw) * ema_gz := mean_r(g * z) of this very batch
    const float eps = exact.options.eps;
    const Tensor s = group_scaling(x0, 1, eps);
    const Tensor rstd = warmup > 0 ? rsqrt(mean(s * s, {0}, true) + eps) : rsqrt(exact.running_phi.reshape({1, C}) + eps);
    const Tensor dnorm_norm_mean = mean(dy * exact.weight.detach() * s * rstd, {0});
    approx.ema_gz.copy_(dnorm_norm_mean * (1.0f / (1.0f - approx.options.alpha_bkw)));
    const StepResult a = step(approx, x0, dy, false), e = step(exact, x0, dy, false);
    require_close(a.grad_w, e.grad_w, 0, 0, "dgamma is the same in both modes");
    const double rel = std::sqrt(sum((a.grad_x - e.grad_x) * (a.grad_x - e.grad_x)).item() /
                                 sum(e.grad_x * e.grad_x).item());
    INFO("warmup " << warmup << ": |dx_approx - dx_exact| / |dx_exact| = " << rel);
    if (warmup > 0)
      CHECK(rel < 1e-4);  // the approximation is exact when nu is the batch's own value
    else
      CHECK(rel > 0.05);  // after warm-up the exact gradient has no correction and another scale
  }
}

TEST_CASE("PowerNorm matches the official algorithm run by PyTorch (float64): outputs, grads, buffers",
          "[norm][power_norm][fixture]") {
  const TensorFile f = load_fixture("norm/power_norm.safetensors");
  const auto cases = fixture_cases(f);
  REQUIRE(!cases.empty());
  for (const std::string& c : cases) {
    const auto p = case_params(f, c);
    PowerNormOptions o;
    o.warmup_steps = p["warmup"];
    o.groups = p["groups"];
    o.alpha_fwd = p["alpha_fwd"];
    o.alpha_bkw = p["alpha_bkw"];
    const int64_t C = p["features"];
    PowerNorm m(C, o);
    m.weight.copy_(f.get(c + ".weight"));
    m.bias.copy_(f.get(c + ".bias"));
    const int steps = p["steps"];
    for (int t = 1; t <= steps + 1; ++t) {  // the last call is in eval
      const std::string k = c + ".step" + std::to_string(t);
      if (t == steps + 1) m.eval();
      const StepResult r = step(m, f.get(k + ".x"), f.get(k + ".dout"), false);
      require_close(r.y, f.get(k + ".out"), 1e-5, 1e-4, k + " out");
      require_close(r.grad_x, f.get(k + ".grad_x"), 1e-5, 1e-4, k + " grad_x");
      require_close(r.grad_w, f.get(k + ".grad_weight"), 1e-4, 1e-4, k + " grad_weight");
      require_close(r.grad_b, f.get(k + ".grad_bias"), 1e-4, 1e-4, k + " grad_bias");
      require_close(m.running_phi, f.get(k + ".running_phi"), 1e-5, 1e-4, k + " running_phi");
      require_close(m.ema_gz, f.get(k + ".ema_gz"), 1e-5, 1e-4, k + " ema_gz");
    }
  }
}

TEST_CASE("PowerNorm parameter grads accumulate into sentinel-filled grads", "[norm][power_norm][sentinel]") {
  Generator gen(10);
  for (PowerNormBackward b : {PowerNormBackward::approximate, PowerNormBackward::exact}) {
    PowerNorm m(8, opts(1000, b));
    const Tensor x = randn({6, 8}, gen), dy = randn({6, 8}, gen);
    m.forward(x).backward(dy);
    const Tensor gw = m.weight.grad().clone(), gb = m.bias.grad().clone();
    m.weight.set_grad(Tensor::full({8}, 8.0f));
    m.bias.set_grad(Tensor::full({8}, 8.0f));
    m.ema_gz.fill_(0.0f);
    m.iters.fill_(0.0f);
    m.forward(x).backward(dy);
    require_close(m.weight.grad(), add(gw, 8.0f), 1e-5, 1e-5, "weight 8 + grad");
    require_close(m.bias.grad(), add(gb, 8.0f), 1e-5, 1e-5, "bias 8 + grad");
  }
}

TEST_CASE("PowerNorm: every SIMD level agrees with scalar, same bits on rerun and at 1 or 2 threads",
          "[norm][power_norm][simd]") {
  Generator gen(11);
  const Tensor x0 = randn({7, 9, 40}, gen) * 3.0f + 1.0f, dy = randn({7, 9, 40}, gen);  // 40: vector tails
  PowerNorm base(40, opts(1, PowerNormBackward::approximate));
  randomize(base, gen);
  auto run = [&]() {  // two steps: one in warm-up, one after; from the same start every time
    PowerNorm m(40, opts(1, PowerNormBackward::approximate));
    copy_state(base, m);
    std::vector<Tensor> out;
    for (int t = 0; t < 2; ++t) {
      const StepResult r = step(m, x0, dy, false);
      for (const Tensor& v : {r.y, r.grad_x, r.grad_w, r.grad_b}) out.push_back(v.clone());
    }
    out.push_back(m.running_phi.clone());
    out.push_back(m.ema_gz.clone());
    return out;
  };
  const SimdLevel saved = simd_level();
  set_simd_level(SimdLevel::scalar);
  const auto ref = run();
  for (SimdLevel l : {SimdLevel::avx2, SimdLevel::avx512}) {
    if (l > best_simd_level()) continue;
    set_simd_level(l);
    const auto got = run(), again = run();
    for (size_t i = 0; i < ref.size(); ++i) {
      require_close(got[i], ref[i], 1e-5, 1e-4, std::string(simd_level_name(l)) + " vs scalar #" + std::to_string(i));
      require_close(again[i], got[i], 0, 0, "rerun #" + std::to_string(i));
    }
  }
  set_simd_level(saved);
  const int threads = num_threads();
  set_num_threads(1);
  const auto one = run();
  set_num_threads(2);
  const auto two = run();
  set_num_threads(threads);
  for (size_t i = 0; i < one.size(); ++i) require_close(two[i], one[i], 0, 0, "1 vs 2 threads #" + std::to_string(i));
}

TEST_CASE("PowerNorm keeps running_phi, ema_gz and iters as buffers (checkpointed)", "[norm][power_norm]") {
  PowerNorm m(4);
  std::vector<std::string> names;
  for (const auto& [name, t] : m.named_buffers()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"running_phi", "ema_gz", "iters"});
  CHECK(m.parameters().size() == 2);
  CHECK(parse_power_norm_backward("exact") == PowerNormBackward::exact);
  CHECK(power_norm_backward_name(PowerNormBackward::approximate) == "approximate");
}

TEST_CASE("PowerNorm: bad shapes and options throw nl::Error naming the layer", "[norm][power_norm][errors]") {
  CHECK_THROWS_WITH(PowerNorm(6, opts(10, PowerNormBackward::exact, 4)), Catch::Contains("groups=4"));
  PowerNorm m(6);
  CHECK_THROWS_WITH(m.forward(Tensor::zeros({2, 5})), Catch::Contains("PowerNorm(6)") && Catch::Contains("[2, 5]"));
  PowerNormOptions o;
  o.alpha_fwd = 1.5f;
  CHECK_THROWS_WITH(PowerNorm(6, o), Catch::Contains("alpha_fwd"));
  CHECK_THROWS_WITH(parse_power_norm_backward("approx"), Catch::Contains("approximate or exact"));
  CHECK_THROWS_WITH(m.forward(Tensor::ones({1, 1, 6})), Catch::Contains("more than 1 value per channel"));
  m.eval();
  CHECK(m.forward(Tensor::ones({1, 6})).numel() == 6);  // eval: one row is fine
}
