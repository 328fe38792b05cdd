// normlab bench: end-to-end training throughput of the reference CNNs, the normlab side of
// scripts/bench_torch.py images (same models, scripts/torch_models.py; same step and timing rule):
//
//   normlab_bench train [--budget S] [--batches 2,8,32,128] [--norms none,bn,gn,in,ln]
//                       [--only mnist,cifar,resnet20] [--max-steps N] [--algorithm direct|winograd]
//
// mnist / cifar: the cnn model on [1,28,28] / [3,32,32]; resnet20: ResNet-20 on [3,32,32]
// (not in the default --only: one setting costs ~10x a CIFAR CNN one).
//
// One step = zero_grad -> forward -> cross_entropy (mean) -> backward -> SGD(lr 0.01, momentum 0.9).
// Synthetic data made once and reused; 3 warm-up steps, then steps until `budget` seconds
// have passed (8..60 steps; --max-steps raises the 60, for profiling with perf); images/s = batch / median step time.
// Rows start with "train" and are parsed by scripts/bench_train_vs_torch.sh: keep the column
// order (model, norm, batch, images_per_s, step_ms).
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"
#include "layers/models/model.hpp"
#include "optim/optimizer.hpp"

namespace {

using nl::Tensor;
using nl::bench::fmt_num;
using nl::bench::print_row;

// Median seconds per training step of `model` on one fixed synthetic batch.
double median_step_seconds(const std::string& dataset, const std::string& norm, int64_t batch, double budget,
                           size_t max_steps) {
  nl::ModelOptions mo;
  mo.name = dataset == "resnet20" ? "resnet20" : "cnn";
  mo.input_shape = dataset == "mnist" ? nl::Shape{1, 28, 28} : nl::Shape{3, 32, 32};
  nl::NormOptions no;
  no.name = norm;
  auto model = nl::make_model(mo, no);
  model->train();
  nl::SGD opt({nl::ParamGroup{model->parameters()}}, nl::SGDOptions{0.01f, 0.9f, false});

  nl::Generator gen(7);
  nl::Shape xs = {batch};
  xs.insert(xs.end(), mo.input_shape.begin(), mo.input_shape.end());
  Tensor x = nl::randn(xs, gen);
  std::vector<int32_t> targets(batch);
  for (int64_t i = 0; i < batch; ++i) targets[i] = static_cast<int32_t>((i * 7 + 3) % 10);

  auto step = [&] {
    opt.zero_grad();
    nl::cross_entropy(model->forward(x), targets).backward();
    opt.step();
  };
  return nl::bench::median_step_seconds(step, budget, max_steps);
}

NL_BENCH_SUITE(train, "CNN training images/s (MNIST, CIFAR x norms x batch; compare: scripts/bench_train_vs_torch.sh)") {
  double budget = 1.0;
  size_t max_steps = 60;
  std::vector<int64_t> batches = {2, 8, 32, 128};
  std::vector<std::string> norms = {"none", "bn", "gn", "in", "ln"}, datasets = {"mnist", "cifar"};
  CLI::App cli{"CNN training images/s", "normlab_bench train"};
  cli.add_option("--budget", budget, "seconds of timed steps per row")->capture_default_str();
  cli.add_option("--batches", batches, "comma-separated batch sizes")->delimiter(',')->check(nl::bench::kPositive);
  cli.add_option("--norms", norms, "comma-separated norms")->delimiter(',');
  cli.add_option("--only", datasets, "comma-separated models")
      ->delimiter(',')
      ->check(CLI::IsMember({"mnist", "cifar", "resnet20"}));
  cli.add_option("--max-steps", max_steps, "at most this many timed steps (more: for profiling)")->capture_default_str();
  std::string algorithm = "automatic";
  nl::bench::add_conv3x3_algorithm_option(cli, algorithm);
  nl::bench::parse_args(cli, args);
  const nl::Conv3x3Algorithm saved = nl::conv3x3_algorithm();
  nl::set_conv3x3_algorithm(nl::bench::conv3x3_algorithm_named(algorithm));
  print_row({"train", "model", "norm", "batch", "images_per_s", "step_ms"});
  for (const auto& d : datasets) {
    for (const auto& norm : norms) {
      for (const int64_t batch : batches) {
        const double t = median_step_seconds(d, norm, batch, budget, max_steps);
        print_row({"train", d, norm, std::to_string(batch), fmt_num(batch / t, 0), fmt_num(t * 1e3, 3)});
      }
    }
  }
  nl::set_conv3x3_algorithm(saved);
}

}  // namespace
