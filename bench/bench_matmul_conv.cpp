// normlab bench: matmul against raw sgemm, and conv2d on the MNIST/CIFAR CNN layer shapes.
//
//   normlab_bench matmul    GFLOP/s of nl::matmul vs a bare cblas_sgemm on the same shapes
//                           (the fraction is the cost of normlab's wrapper: allocation, views)
//   normlab_bench conv      conv2d forward and forward+backward milliseconds per call for the
//                           layers of the benchmark CNNs (scripts/torch_models.py) at batch 2..128
//                           (args: batch sizes, e.g. `normlab_bench conv 2 32`; --algorithm
//                           direct|winograd forces one 3x3 algorithm, --only picks layers)
//
// The PyTorch side of the conv table is scripts/bench_torch_ops.py, which can run this
// binary right after itself and print the ratio per row:
//   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
//       /usr/bin/python3 scripts/bench_torch_ops.py --threads 2 --normlab build/normlab_bench
// (one command line; that folder is libopenblas0-openmp, see scripts/bench_train_vs_torch.sh)
// Rows printed by the conv suite start with "conv" and are parsed by that script: keep the
// column order (layer, batch, fwd_ms, fwdbwd_ms).
#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"
#include "core/autograd.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"

namespace {

using nl::Shape;
using nl::Tensor;
using nl::bench::fmt_num;
using nl::bench::print_row;
using nl::bench::seconds_per_call;

struct MatmulShape {
  const char* what;
  int64_t batch, m, k, n;
};

NL_BENCH_SUITE(matmul, "nl::matmul GFLOP/s vs raw cblas_sgemm (target: fraction >= 0.90)") {
  CLI::App cli{"nl::matmul GFLOP/s vs raw cblas_sgemm (threads: OMP_NUM_THREADS)", "normlab_bench matmul"};
  nl::bench::parse_args(cli, args);
  const std::vector<MatmulShape> shapes = {
      {"fc1 MNIST", 1, 64, 3136, 128}, {"mlp", 1, 128, 128, 512},     {"square", 1, 1024, 1024, 1024},
      {"square", 1, 2048, 2048, 2048},  // the sgemm peak docs/performance.md divides by
      {"lm head", 1, 512, 65, 128},    {"attention", 16, 64, 64, 32},
  };
  nl::Generator gen(1);
  print_row({"shape", "batch", "MxKxN", "sgemm GF/s", "matmul GF/s", "fraction"});
  for (const auto& s : shapes) {
    Shape a_shape = {s.m, s.k}, b_shape = {s.k, s.n};
    if (s.batch > 1) a_shape.insert(a_shape.begin(), s.batch), b_shape.insert(b_shape.begin(), s.batch);
    Tensor a = nl::randn(a_shape, gen), b = nl::randn(b_shape, gen);
    Tensor c = Tensor::empty({s.batch, s.m, s.n});
    const double flops = 2.0 * s.batch * s.m * s.k * s.n;
    // Baseline: the same products straight into a preallocated buffer, one sgemm per matrix.
    const double t_raw = seconds_per_call([&] {
      for (int64_t i = 0; i < s.batch; ++i)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.m, s.n, s.k, 1.0f, a.data() + i * s.m * s.k, s.k,
                    b.data() + i * s.k * s.n, s.n, 0.0f, c.data() + i * s.m * s.n, s.n);
    });
    const double t_nl = seconds_per_call([&] { nl::bench::do_not_optimize(nl::matmul(a, b).data()); });
    print_row({s.what, std::to_string(s.batch), fmt_num(s.m, 0) + "x" + fmt_num(s.k, 0) + "x" + fmt_num(s.n, 0),
               fmt_num(flops / t_raw / 1e9, 1), fmt_num(flops / t_nl / 1e9, 1), fmt_num(t_raw / t_nl, 2)});
  }
}

struct ConvLayer {
  const char* name;
  int64_t cin, cout, hw;
};

// The conv layers of the reference CNNs (3x3, padding 1, bias) and ResNet-20's three stride-1
// shapes (it has no conv bias; the bias here changes little).
const std::vector<ConvLayer> kConvLayers = {
    {"mnist1_1-32_28", 1, 32, 28},      {"mnist2_32-64_14", 32, 64, 14},   {"cifar1_3-32_32", 3, 32, 32},
    {"cifar2_32-64_16", 32, 64, 16},    {"cifar3_64-128_8", 64, 128, 8},   {"resnet1_16-16_32", 16, 16, 32},
    {"resnet2_32-32_16", 32, 32, 16},   {"resnet3_64-64_8", 64, 64, 8},
};

NL_BENCH_SUITE(conv, "conv2d fwd and fwd+bwd ms on the MNIST/CIFAR CNN layers (compare: scripts/bench_torch_ops.py)") {
  std::vector<int64_t> batches = {2, 8, 32, 128};
  CLI::App cli{"conv2d fwd and fwd+bwd ms", "normlab_bench conv"};
  std::string algorithm = "automatic";
  std::vector<std::string> only;
  cli.add_option("batches", batches, "batch sizes (default 2 8 32 128)")->check(nl::bench::kPositive);
  nl::bench::add_conv3x3_algorithm_option(cli, algorithm);
  std::vector<std::string> names;
  for (const auto& layer : kConvLayers) names.push_back(layer.name);
  cli.add_option("--only", only, "layers to run (default all)")->delimiter(',')->allow_extra_args(false)->check(CLI::IsMember(names));
  nl::bench::parse_args(cli, args);
  const nl::Conv3x3Algorithm saved = nl::conv3x3_algorithm();
  nl::set_conv3x3_algorithm(nl::bench::conv3x3_algorithm_named(algorithm));
  std::printf("# 3x3 algorithm: %s\n", algorithm.c_str());
  nl::Generator gen(2);
  nl::Conv2dOptions opt;
  opt.pad_h = opt.pad_w = 1;
  print_row({"conv", "layer", "batch", "fwd_ms", "fwdbwd_ms"}, 18);
  for (const auto& layer : kConvLayers) {
    if (!only.empty() && std::find(only.begin(), only.end(), layer.name) == only.end()) continue;
    for (int64_t n : batches) {
      Tensor x = nl::randn({n, layer.cin, layer.hw, layer.hw}, gen);
      // As in training: the image layer's input needs no gradient, later layers' inputs do.
      if (layer.cin > 3) x.set_requires_grad();
      Tensor w = nl::randn({layer.cout, layer.cin, 3, 3}, gen).set_requires_grad();
      Tensor b = nl::randn({layer.cout}, gen).set_requires_grad();
      Tensor gy = nl::randn({n, layer.cout, layer.hw, layer.hw}, gen);
      double t_fwd;
      {
        nl::NoGradGuard no_grad;  // inference-style forward: nothing recorded
        t_fwd = seconds_per_call([&] { nl::bench::do_not_optimize(nl::conv2d(x, w, b, opt).data()); });
      }
      const double t_both = seconds_per_call([&] {
        x.zero_grad(), w.zero_grad(), b.zero_grad();
        nl::conv2d(x, w, b, opt).backward(gy);
      });
      print_row({"conv", layer.name, std::to_string(n), fmt_num(t_fwd * 1e3, 3), fmt_num(t_both * 1e3, 3)}, 18);
    }
  }
  nl::set_conv3x3_algorithm(saved);
}

}  // namespace
