// normlab bench: what `train --diagnostics` costs when it observes a step.
//
//   normlab_bench diagnostics [--budget S] [--repeats R] [--threads N] [--only cnn,mlp,transformer]
//
// One step = zero_grad -> forward -> cross-entropy -> backward -> SGD, on one synthetic batch
// (as `normlab_bench train`). "on" also does what DiagnosticsLog does on a logged step:
// attach a NormDiagnostics to every norm layer, detach, record_gradients, format the rows as
// diagnostics.csv lines (not written). Off and on are measured side by side, alternating,
// `repeats` times (median step time of each, `budget` seconds per measurement); the row gives
// the median over repeats and the median of the per-repeat ratios on / off: the cost of
// `--diagnostics-every 1`. Every N steps costs 1 + (ratio - 1) / N. The load average is
// printed before and after: the ratio only means something on a quiet machine.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/bench_util.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "layers/diagnostics.hpp"
#include "layers/models/model.hpp"
#include "optim/optimizer.hpp"

namespace {

using nl::Tensor;
using nl::bench::fmt_num;
using nl::bench::print_row;

struct Config {
  std::string name, model, norm;
  int64_t batch;
};

std::string load_average() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "unknown";
  return fmt::format("{:.2f} {:.2f} {:.2f}", l[0], l[1], l[2]);
}

void bench_config(const Config& c, double budget, int repeats) {
  nl::ModelOptions mo;
  mo.name = c.model;
  int64_t classes = 10;
  Tensor x;
  nl::Generator gen(7);
  if (c.model == "transformer") {
    mo.vocab_size = 65;
    mo.context = 64;
    classes = 65;
  } else {
    mo.input_shape = {1, 28, 28};
    x = nl::randn({c.batch, 1, 28, 28}, gen);
  }
  nl::NormOptions no;
  no.name = c.norm;
  auto model = nl::make_model(mo, no);
  model->train();
  nl::SGD opt({nl::ParamGroup{model->parameters()}}, nl::SGDOptions{0.01f, 0.9f, false});
  std::vector<int32_t> ids, targets;
  if (c.model == "transformer") {
    for (int64_t i = 0; i < c.batch * mo.context; ++i) {
      ids.push_back(static_cast<int32_t>(gen.below(classes)));
      targets.push_back(static_cast<int32_t>(gen.below(classes)));
    }
  } else {
    for (int64_t i = 0; i < c.batch; ++i) targets.push_back(static_cast<int32_t>((i * 7 + 3) % classes));
  }
  auto forward_loss = [&] {
    Tensor logits = c.model == "transformer" ? model->forward_ids(ids, {c.batch, mo.context}) : model->forward(x);
    return nl::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets);
  };
  auto step_off = [&] {
    opt.zero_grad();
    forward_loss().backward();
    opt.step();
  };
  nl::NormDiagnostics diagnostics;
  size_t rows = 0;
  auto step_on = [&] {
    nl::attach_norm_observer(*model, &diagnostics);
    opt.zero_grad();
    forward_loss().backward();
    opt.step();
    nl::attach_norm_observer(*model, nullptr);
    diagnostics.record_gradients();
    std::string csv;
    for (const auto& r : diagnostics.take_rows()) csv += fmt::format("{},{},{},{:.7g}\n", 1, r.layer, r.quantity, r.value);
    rows = std::count(csv.begin(), csv.end(), '\n');
  };
  std::vector<double> off, on, ratio;
  for (int r = 0; r < repeats; ++r) {
    off.push_back(nl::bench::median_step_seconds(step_off, budget));
    on.push_back(nl::bench::median_step_seconds(step_on, budget));
    ratio.push_back(on.back() / off.back());
  }
  print_row({"diagnostics", c.name, c.norm, std::to_string(c.batch), fmt_num(nl::bench::median(off) * 1e3, 3),
             fmt_num(nl::bench::median(on) * 1e3, 3), fmt_num(nl::bench::median(ratio), 3), std::to_string(rows)});
}

}  // namespace

NL_BENCH_SUITE(diagnostics, "train step with and without --diagnostics observing it (ratio side by side)") {
  double budget = 1.0;
  int repeats = 3, threads = 1;
  std::vector<std::string> only = {"mlp", "cnn", "transformer"};
  CLI::App cli{"train step with and without --diagnostics", "normlab_bench diagnostics"};
  cli.add_option("--budget", budget, "seconds per measurement")->capture_default_str();
  cli.add_option("--repeats", repeats, "alternated off/on pairs")->capture_default_str()->check(nl::bench::kPositive);
  nl::bench::add_threads_option(cli, threads);
  cli.add_option("--only", only, "comma-separated models")
      ->delimiter(',')
      ->check(CLI::IsMember({"mlp", "cnn", "transformer"}));
  nl::bench::parse_args(cli, args);
  const std::vector<Config> configs = {{"mlp", "mlp", "bn", 32},
                                       {"cnn", "cnn", "bn", 32},
                                       {"transformer", "transformer", "ln", 16}};
  std::printf("# threads %d, load average before: %s\n", threads, load_average().c_str());
  print_row({"diagnostics", "model", "norm", "batch", "off_ms", "on_ms", "on/off", "rows"});
  for (const auto& c : configs)
    if (std::find(only.begin(), only.end(), c.name) != only.end()) bench_config(c, budget, repeats);
  std::printf("# load average after: %s\n", load_average().c_str());
}
