// Tests of layers/diagnostics: percentiles as numpy computes them, the bounded fixed-seed
// sample, BatchNorm's statistics noise (0 / 1 when the batch statistics equal the running
// ones, measured before the layer's own update, first statistics group only), the saturated
// fraction before a sigmoid, weight-gradient norms, and that an observer changes no output.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/random.hpp"
#include "layers/activation.hpp"
#include "layers/diagnostics.hpp"
#include "layers/norm/batch_norm.hpp"
#include "layers/norm/batch_renorm.hpp"
#include "layers/norm/factory.hpp"
#include "layers/norm/layer_norm.hpp"
#include "layers/norm/recurrent_batch_norm.hpp"
#include "layers/sequential.hpp"

using namespace nl;


namespace {

std::map<std::string, double> rows_of(const std::vector<DiagnosticRow>& rows, const std::string& layer) {
  std::map<std::string, double> out;
  for (const auto& r : rows)
    if (r.layer == layer) out[r.quantity] = r.value;
  return out;
}

// Per-channel mean and biased variance of samples [0, n1) of x [N, C, S...].
void channel_stats(const Tensor& x, int64_t n1, std::vector<float>& mean, std::vector<float>& var) {
  const int64_t C = x.size(1), S = x.numel() / (x.size(0) * C);
  const std::vector<float> v = x.to_vector();
  mean.assign(C, 0.0f);
  var.assign(C, 0.0f);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < n1; ++n)
      for (int64_t i = 0; i < S; ++i) s += v[(n * C + c) * S + i];
    const double m = s / (n1 * S);
    for (int64_t n = 0; n < n1; ++n)
      for (int64_t i = 0; i < S; ++i) ss += (v[(n * C + c) * S + i] - m) * (v[(n * C + c) * S + i] - m);
    mean[c] = static_cast<float>(m);
    var[c] = static_cast<float>(ss / (n1 * S));
  }
}

void set_running(BatchNorm& bn, const std::vector<float>& mean, const std::vector<float>& var) {
  std::copy(mean.begin(), mean.end(), bn.running_mean.data());
  std::copy(var.begin(), var.end(), bn.running_var.data());
}

}  // namespace

TEST_CASE("percentiles interpolate between order statistics like numpy.percentile") {
  std::vector<float> v;
  for (int i = 100; i >= 0; --i) v.push_back(static_cast<float>(i));  // 0..100, reversed
  const auto p = percentiles(v, {1, 15, 50, 85, 99});
  CHECK(p == std::vector<double>{1, 15, 50, 85, 99});
  // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 100]) = [1, 1.75, 2.5, 4]
  CHECK(percentiles({4, 1, 3, 2}, {0, 25, 50, 100}) == std::vector<double>{1, 1.75, 2.5, 4});
  // Any order of p, ties, odd sizes: the same numbers as sorting everything.
  Generator gen(2);
  std::vector<float> r = randn({1001}, gen).to_vector();
  for (int i = 0; i < 100; ++i) r[i] = 0.5f;
  const std::vector<double> ps{99, 1, 50, 15, 85, 0, 100, 33.3, 50};
  std::vector<float> sorted = r;
  std::sort(sorted.begin(), sorted.end());
  const auto got = percentiles(r, ps);
  for (size_t i = 0; i < ps.size(); ++i) {
    const double rank = ps[i] / 100.0 * 1000.0;
    const size_t lo = static_cast<size_t>(std::floor(rank)), hi = std::min<size_t>(lo + 1, 1000);
    const double w = rank - static_cast<double>(lo);
    CHECK(got[i] == (1.0 - w) * sorted[lo] + w * sorted[hi]);
  }
  CHECK_THROWS_WITH(percentiles({}, {50}), Catch::Contains("no values"));
  CHECK_THROWS_WITH(percentiles({1}, {101}), Catch::Contains("[0, 100]"));
}

TEST_CASE("sample_elements takes everything when small, at most max_count with a fixed seed when large") {
  Generator gen(1);
  const Tensor small = randn({3, 5}, gen);
  CHECK(sample_elements(small, 4096, 7) == small.to_vector());
  const Tensor big = randn({8, 16, 10, 10}, gen);  // 12800 elements
  const auto a = sample_elements(big, 4096, 7), b = sample_elements(big, 4096, 7);
  REQUIRE(a.size() == 4096);
  CHECK(a == b);
  CHECK(a != sample_elements(big, 4096, 8));
  const auto all = big.to_vector();
  for (float v : a) CHECK(std::find(all.begin(), all.end(), v) != all.end());
  // An unbiased sample of N(0, 1): its median is near 0 (a stride aligned with channels need not be).
  CHECK(std::abs(percentiles(a, {50})[0]) < 0.1);
}

TEST_CASE("NormDiagnostics: input/output percentiles of each norm layer match a direct computation") {
  Generator gen(2);
  auto bn = std::make_shared<BatchNorm>(4, 2);
  auto ln = std::make_shared<LayerNorm>(std::vector<int64_t>{4, 3, 3});
  Sequential model({bn, ln});
  const Tensor x = randn({5, 4, 3, 3}, gen) * 2.0f + 1.0f;
  NormDiagnostics diag;
  attach_norm_observer(model, &diag);
  const Tensor y = model.forward(x);
  const auto rows = diag.take_rows();
  attach_norm_observer(model, nullptr);
  const auto r0 = rows_of(rows, "0"), r1 = rows_of(rows, "1");
  const std::vector<double> ps{1, 15, 50, 85, 99};
  const auto in_p = percentiles(x.to_vector(), ps);
  const Tensor h = bn->forward(x);  // training mode: the same output as inside the model
  const auto mid_p = percentiles(h.to_vector(), ps);
  const auto out_p = percentiles(y.to_vector(), ps);
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::string s = "_p" + std::to_string(static_cast<int>(ps[i]));
    CHECK(r0.at("input" + s) == Approx(in_p[i]));
    CHECK(r0.at("output" + s) == Approx(mid_p[i]).margin(1e-5));
    CHECK(r1.at("input" + s) == Approx(mid_p[i]).margin(1e-5));
    CHECK(r1.at("output" + s) == Approx(out_p[i]).margin(1e-5));
  }
  CHECK(r0.count("bn_mean_shift") == 1);
  CHECK(r1.count("bn_mean_shift") == 0);       // LayerNorm keeps no batch statistics
  CHECK(r0.count("saturated_fraction") == 0);  // no sigmoid/tanh follows
}

TEST_CASE("BN statistics noise: 0 shift and ratio 1 when the batch statistics equal the running ones") {
  Generator gen(3);
  const Tensor x = randn({6, 3, 4, 4}, gen) * 3.0f - 2.0f;
  std::vector<float> mean, var;
  BatchNorm bn(3, 2);
  channel_stats(x, 6, mean, var);
  set_running(bn, mean, var);
  BatchStatsNoise noise = batch_stats_noise(bn, x);
  CHECK(noise.channels == 3);
  CHECK(noise.mean_shift == Approx(0.0).margin(1e-6));
  CHECK(noise.var_ratio == Approx(1.0).epsilon(1e-5));

  // Through the observer: measured against the running statistics *before* forward updates them.
  NormDiagnostics diag;
  bn.set_norm_observer(&diag, "bn");
  bn.forward(x);
  auto r = rows_of(diag.take_rows(), "bn");
  CHECK(r.at("bn_mean_shift") == Approx(0.0).margin(1e-6));
  CHECK(r.at("bn_var_ratio") == Approx(1.0).epsilon(1e-5));

  // A known shift: running mean m - 2 sigma, running var 4 sigma^2 -> shift 1, ratio 1/4.
  std::vector<float> shifted = mean, wide = var;
  for (size_t c = 0; c < 3; ++c) {
    shifted[c] = mean[c] - 2.0f * std::sqrt(var[c]);
    wide[c] = 4.0f * var[c];
  }
  set_running(bn, shifted, wide);
  noise = batch_stats_noise(bn, x);
  CHECK(noise.mean_shift == Approx(1.0).epsilon(1e-5));
  CHECK(noise.var_ratio == Approx(0.25).epsilon(1e-5));
}

TEST_CASE("BN statistics noise uses the first statistics group with stat_batch") {
  Generator gen(4);
  const Tensor x = randn({8, 2, 5}, gen);
  BatchNormOptions o;
  o.stat_batch = 2;
  BatchNorm bn(2, 1, o);
  std::vector<float> mean, var;
  channel_stats(x, 2, mean, var);  // samples 0 and 1
  set_running(bn, mean, var);
  const BatchStatsNoise noise = batch_stats_noise(bn, x);
  CHECK(noise.mean_shift == Approx(0.0).margin(1e-6));
  CHECK(noise.var_ratio == Approx(1.0).epsilon(1e-5));
  channel_stats(x, 8, mean, var);  // the whole batch differs from the first group
  set_running(bn, mean, var);
  CHECK(batch_stats_noise(bn, x).mean_shift > 0.01);
}

TEST_CASE("saturated fraction before a sigmoid, weight-gradient norms, no effect on outputs") {
  Generator gen(5);
  NormOptions o;
  o.name = "bn";
  auto block = make_norm_act(o, {6}, NormSite::features, "sigmoid");
  const Tensor x = randn({16, 6}, gen);
  // Make a few outputs saturate: gamma 4 stretches xhat (|xhat| > 0.75 -> |y| > 3).
  auto params = block->named_parameters();
  const auto w = std::find_if(params.begin(), params.end(), [](auto& p) { return p.first == "0.weight"; });
  REQUIRE(w != params.end());
  w->second.data()[0] = 4.0f;
  const Tensor y_plain = block->forward(x);

  NormDiagnostics diag;
  attach_norm_observer(*block, &diag, "block");
  const Tensor y = block->forward(x);
  CHECK(y.to_vector() == y_plain.to_vector());  // observing changes no output
  y.backward(Tensor::ones(y.shape()));
  diag.record_gradients();
  const auto r = rows_of(diag.take_rows(), "0");
  // The norm's output, directly: the activation's input.
  auto norm = block->named_children()[0].second;
  norm->set_norm_observer(nullptr, "");
  const auto h = norm->forward(x).to_vector();
  const double expect = static_cast<double>(std::count_if(h.begin(), h.end(), [](float v) { return std::abs(v) > 3; })) /
                        static_cast<double>(h.size());
  REQUIRE(expect > 0.0);
  CHECK(r.at("saturated_fraction") == Approx(expect));
  double ss = 0;
  for (float g : w->second.grad().to_vector()) ss += g * g;
  CHECK(r.at("grad_norm_weight") == Approx(std::sqrt(ss)));

  attach_norm_observer(*block, nullptr);
  block->forward(x);
  CHECK(diag.take_rows().empty());
}

TEST_CASE("norm none: the activation's input is still observed (the BN paper's figure without BN)") {
  Generator gen(6);
  NormOptions o;
  o.name = "none";
  auto block = make_norm_act(o, {6}, NormSite::features, "sigmoid");
  CHECK(block->named_parameters().empty());  // nothing to save: checkpoints are unchanged
  const Tensor x = randn({16, 6}, gen);
  const Tensor y_plain = block->forward(x);
  NormDiagnostics diag;
  attach_norm_observer(*block, &diag, "block");
  const Tensor y = block->forward(x);
  CHECK(y.to_vector() == y_plain.to_vector());
  std::vector<float> xs = x.to_vector();
  std::sort(xs.begin(), xs.end());
  const auto r = rows_of(diag.take_rows(), "0");
  CHECK(r.at("input_p50") == Approx(0.5 * (xs[47] + xs[48])));  // 96 values: numpy's median
  CHECK(r.at("output_p50") == Approx(r.at("input_p50")));
  CHECK(r.count("saturated_fraction") == 1);  // a sigmoid follows
  CHECK(r.count("bn_mean_shift") == 0);       // no batch statistics
}


TEST_CASE("gradient norms at a norm's output and input: dL/dy and the norm's own dL/dx, not other uses of x") {
  Generator gen(6);
  LayerNorm ln({8});
  const Tensor x0 = randn({5, 8}, gen), w = randn({5, 8}, gen);
  // out = ln(x) + x: the residual use of x gives x a second gradient the norm did not pass.
  auto run = [&](NormObserver* obs, Tensor* x_grad, Tensor* y_grad) {
    attach_norm_observer(ln, obs, "ln");
    ln.zero_grad();
    Tensor x = x0.clone().set_requires_grad(true);
    Tensor y = ln.forward(x);
    Tensor out = y + x;
    sum(out * out * w).backward();
    *x_grad = x.grad();
    *y_grad = (out * w * 2.0f).detach();  // dL/dy = dL/dout
  };
  Tensor gx_plain, gy, gx, gy2;
  run(nullptr, &gx_plain, &gy);
  const std::vector<float> gw_plain = ln.weight.grad().to_vector();
  NormDiagnostics diag;
  run(&diag, &gx, &gy2);
  CHECK(gx.to_vector() == gx_plain.to_vector());  // the taps change no gradient
  CHECK(ln.weight.grad().to_vector() == gw_plain);
  diag.record_gradients();
  const auto r = rows_of(diag.take_rows(), "ln");
  auto norm2 = [](const Tensor& t) {
    double s = 0;
    for (float v : t.to_vector()) s += static_cast<double>(v) * v;
    return std::sqrt(s);
  };
  CHECK(r.at("grad_norm_output") == Approx(norm2(gy)).epsilon(1e-5));
  CHECK(r.at("grad_norm_input") == Approx(norm2(gx - gy)).epsilon(1e-4));  // x's gradient minus the residual's
  CHECK(r.at("grad_norm_input") != Approx(norm2(gx)).epsilon(1e-2));
  CHECK(r.at("grad_norm_weight") == Approx(norm2(ln.weight.grad())));
}

TEST_CASE("a layer subset by path or index, and layer_names lists every norm layer in the order they ran") {
  Generator gen(7);
  NormOptions o;
  o.name = "ln";
  Sequential net({make_norm(o, {4}, NormSite::features), make_norm(o, {4}, NormSite::features),
                  make_norm(o, {4}, NormSite::features)});
  const Tensor x = randn({3, 4}, gen);
  auto layers_with_rows = [&](const std::vector<std::string>& select) {
    NormDiagnostics d;
    d.select_layers(select);
    attach_norm_observer(net, &d);
    sum(net.forward(x.clone().set_requires_grad(true))).backward();
    attach_norm_observer(net, nullptr);
    d.record_gradients();
    CHECK(d.layer_names() == std::vector<std::string>{"0", "1", "2"});
    std::set<std::string> out;
    for (const auto& r : d.take_rows()) out.insert(r.layer);
    return out;
  };
  CHECK(layers_with_rows({}) == std::set<std::string>{"0", "1", "2"});
  CHECK(layers_with_rows({"2"}) == std::set<std::string>{"2"});  // "2" is both path and index here
  NormDiagnostics none;
  none.select_none();
  attach_norm_observer(net, &none);
  net.forward(x);
  attach_norm_observer(net, nullptr);
  CHECK(none.layer_names().size() == 3);
  none.record_gradients();
  CHECK(none.take_rows().empty());
}

TEST_CASE("Batch Renorm's clipping fractions: channels whose r or d hit the clip") {
  BatchRenormOptions ro;
  ro.r_max = 2.0f;
  ro.d_max = 1.0f;
  BatchRenorm brn(4, 1, ro);
  // One batch, 4 channels: a channel with values {m - s, m + s} has mean m and biased std s.
  const std::vector<float> mean{0.0f, 0.0f, 3.0f, 3.0f}, sd{1.0f, 5.0f, 1.0f, 5.0f};
  std::vector<float> v;
  for (float sign : {-1.0f, 1.0f})
    for (int c = 0; c < 4; ++c) v.push_back(mean[c] + sign * sd[c]);
  const Tensor x = Tensor::from_vector({2, 4}, v);
  // Running stats 0 / 1: r = sd (clipped when 5 > 2), d = mean (clipped when 3 > 1).
  NormDiagnostics diag;
  attach_norm_observer(brn, &diag, "brn");
  brn.forward(x);
  const RenormClipStats& c = brn.last_clip_stats();
  CHECK(c.pairs == 4);
  CHECK(c.r == 2);       // channels 1, 3
  CHECK(c.d == 2);       // channels 2, 3
  CHECK(c.either == 3);  // channels 1, 2, 3
  const auto r = rows_of(diag.take_rows(), "brn");
  CHECK(r.at("brn_clip_fraction") == Approx(0.75));
  CHECK(r.at("brn_r_clip_fraction") == Approx(0.5));
  CHECK(r.at("brn_d_clip_fraction") == Approx(0.5));
  CHECK(rows_of(diag.take_rows(), "brn").empty());
}

TEST_CASE("RecurrentBatchNorm: the observer sees time step 1 (t = 0's hidden-state input is all zeros)") {
  Generator gen(5);
  auto rbn = std::make_shared<RecurrentBatchNorm>(4, 8);
  Sequential model({rbn});
  const Tensor x0 = Tensor::zeros({6, 4}), x1 = randn({6, 4}, gen) * 3.0f + 2.0f, x2 = randn({6, 4}, gen);
  NormDiagnostics diag;
  attach_norm_observer(model, &diag);
  rbn->forward(x0, 0);
  const Tensor y1 = rbn->forward(x1, 1);
  rbn->forward(x2, 2);
  const auto rows = rows_of(diag.take_rows(), "0");
  attach_norm_observer(model, nullptr);
  const std::vector<double> ps{1, 15, 50, 85, 99};
  const auto in_p = percentiles(x1.to_vector(), ps), out_p = percentiles(y1.to_vector(), ps);
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::string s = "_p" + std::to_string(static_cast<int>(ps[i]));
    CHECK(rows.at("input" + s) == Approx(in_p[i]));
    CHECK(rows.at("output" + s) == Approx(out_p[i]).margin(1e-5));
  }
}
