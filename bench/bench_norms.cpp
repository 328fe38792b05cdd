// normlab bench: every normalization method (built by the factory) forward+backward, on the
// shapes of scripts/bench_torch.py norms (its PyTorch side), reported as time and effective GB/s
// counted like that script (f+b moves 5 * numel * 4 bytes: fwd reads x, writes y; bwd reads
// x and dy, writes dx) beside a memcpy of x's bytes measured in the same run.
//
//   normlab_bench norms [--quick] [--threads N] [--all-norms] [--only TEXT]
//
// Rows named like the PyTorch script's layers can be joined with its output
// (scripts/bench_norms_vs_torch.sh prints the ratios). --all-norms adds every other factory
// method (mobn, brn, gbn, rms, frn, evonorm-*) on the conv shapes. --only keeps the rows whose
// layer name or shape contains TEXT (e.g. "LayerNorm(D)", "8192x256"): for profiling one row.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"
#include "core/parallel.hpp"
#include "layers/norm/factory.hpp"

namespace {

using nl::Shape;
using nl::Tensor;

struct Row {
  std::string layer, norm;  // PyTorch's layer name, factory name
  Shape shape;
  nl::NormSite site;
};

// Median seconds per call, timed exactly as torch_norm_bench.py's time_calls (3 warm-up calls,
// then single calls until the budget is spent, at least 7 and at most 400), so the two sides
// of a ratio are the same statistic.
double median_seconds(const std::function<void()>& fn, double budget) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> times;
  const auto start = clock::now();
  while (times.size() < 400 &&
         (times.size() < 7 || std::chrono::duration<double>(clock::now() - start).count() < budget)) {
    const auto t0 = clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

std::string shape_text(const Shape& s) {
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) t += (i ? "x" : "") + std::to_string(s[i]);
  return t;
}

}  // namespace

NL_BENCH_SUITE(norms, "norm layers fwd / fwd+bwd via the factory on torch_norm_bench.py's shapes, GB/s vs memcpy") {
  bool quick = false, all_norms = false;
  std::string only;
  int threads = nl::num_threads();
  CLI::App cli{"norm layers fwd / fwd+bwd", "normlab_bench norms"};
  cli.add_flag("--quick", quick, "budget 0.05 s per row instead of 0.4");
  cli.add_flag("--all-norms", all_norms, "also mobn, brn, gbn, rms, frn, evonorm-* on the conv shapes");
  cli.add_option("--only", only, "rows whose layer name or shape contains this text");
  nl::bench::add_threads_option(cli, threads);
  nl::bench::parse_args(cli, args);
  const double budget = quick ? 0.05 : 0.4;  // as torch_norm_bench.py
  const std::vector<Shape> conv_shapes{{2, 32, 32, 32}, {8, 32, 32, 32}, {32, 32, 32, 32}, {128, 64, 16, 16}, {128, 16, 28, 28}};
  const std::vector<Shape> token_shapes{{64 * 128, 256}, {8 * 64, 512}, {512 * 64, 768}};
  std::vector<Row> rows;
  for (const auto& s : conv_shapes) {
    rows.push_back({"BatchNorm2d", "bn", s, nl::NormSite::conv});
    rows.push_back({"GroupNorm(8)", "gn", s, nl::NormSite::conv});
    rows.push_back({"InstanceNorm2d(affine)", "in", s, nl::NormSite::conv});
    rows.push_back({"LayerNorm(C,H,W)", "ln", s, nl::NormSite::conv});
    if (all_norms)
      for (const char* n : {"mobn", "brn", "gbn", "rms", "frn", "evonorm-s0", "evonorm-b0"})
        rows.push_back({std::string("normlab:") + n, n, s, nl::NormSite::conv});
  }
  for (const auto& s : token_shapes) {
    rows.push_back({"LayerNorm(D)", "ln", s, nl::NormSite::features});
    rows.push_back({"RMSNorm(D) [composite]", "rms", s, nl::NormSite::features});
    rows.push_back({"BatchNorm1d(D)", "bn", s, nl::NormSite::features});
  }

  std::printf("normlab norms: %d threads, median of single calls (budget %.2fs, >= 7 reps); GB = 1e9 B; f+b counts 5*numel*4 B\n",
              nl::num_threads(), budget);
  std::printf("%-24s %-18s %-11s %10s %10s %9s %9s %7s\n", "layer", "shape", "norm", "fwd us", "f+b us", "f+b GB/s",
              "cpy GB/s", "%copy");
  if (!only.empty())
    rows.erase(std::remove_if(rows.begin(), rows.end(),
                              [&](const Row& r) {
                                return r.layer.find(only) == std::string::npos &&
                                       shape_text(r.shape).find(only) == std::string::npos;
                              }),
               rows.end());
  for (const Row& r : rows) {
    nl::NormOptions o;
    o.name = r.norm;
    o.groups = 8;
    const Shape feature = r.site == nl::NormSite::conv ? Shape{r.shape[1], r.shape[2], r.shape[3]} : Shape{r.shape[1]};
    auto m = nl::make_norm(o, feature, r.site);
    nl::Generator gen(0);
    for (auto& p : m->parameters()) nl::uniform_(p, 0.5f, 1.5f, gen);  // as the torch script
    Tensor x = nl::randn(r.shape, gen).set_requires_grad(true);
    Tensor dy = nl::randn(r.shape, gen);
    const double numel = static_cast<double>(x.numel());
    const double t_f = median_seconds([&] { nl::bench::do_not_optimize(m->forward(x).data()); }, budget);
    const double t_fb = median_seconds(
        [&] {
          x.zero_grad();
          m->zero_grad();
          m->forward(x).backward(dy);
        },
        budget);
    Tensor dst = Tensor::empty(r.shape);
    const double t_cpy = median_seconds(
        [&] {
          std::memcpy(dst.data(), x.data(), x.numel() * sizeof(float));
          nl::bench::do_not_optimize(dst.data());
        },
        budget);
    const double gb_fb = 5 * numel * 4 / t_fb / 1e9, gb_cpy = 2 * numel * 4 / t_cpy / 1e9;
    std::printf("%-24s %-18s %-11s %10.1f %10.1f %9.2f %9.2f %6.0f%%\n", r.layer.c_str(), shape_text(r.shape).c_str(),
                r.norm.c_str(), t_f * 1e6, t_fb * 1e6, gb_fb, gb_cpy, 100 * gb_fb / gb_cpy);
    std::fflush(stdout);
  }
}
