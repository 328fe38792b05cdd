// normlab bench: elementwise kernels and ops in GB/s, beside memcpy of the same bytes.
//
//   normlab_bench elementwise [small]     (small: only the 1M-float arrays)
//
// GB/s counts every byte a kernel must move: add reads 2 arrays and writes 1 (12 B/float),
// exp/relu read 1 and write 1 (8 B), sum reads 1 (4 B). "vs memcpy" is the ratio to
// std::memcpy moving the same number of bytes (half read, half written) in the same run:
// ~1.0 means the kernel runs at memory speed. Part 1 times single kernels on one thread at
// each SIMD level; part 2 times whole ops (threads, dispatch, allocation included).
#include <cstring>
#include <vector>

#include "bench/bench_util.hpp"
#include "core/kernels/kernels.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"

namespace {

using nl::bench::fmt_num;
using nl::bench::print_row;

// GB/s of std::memcpy moving `bytes` in total (bytes/2 read, bytes/2 written).
double memcpy_gbs(double bytes) {
  const size_t n = static_cast<size_t>(bytes / 2);
  std::vector<char> src(n, 1), dst(n, 0);
  const double s = nl::bench::seconds_per_call([&] {
    std::memcpy(dst.data(), src.data(), n);
    nl::bench::do_not_optimize(dst[n / 2]);
  });
  return bytes / s / 1e9;
}

}  // namespace

NL_BENCH_SUITE(elementwise, "GB/s of add/mul/exp/relu/sum/softmax vs memcpy; scalar vs avx2 vs avx512") {
  std::string size = "all";
  CLI::App cli{"GB/s of elementwise kernels", "normlab_bench elementwise"};
  cli.add_option("size", size, "small: only the 1M-float size")->check(CLI::IsMember({"small", "all"}));
  nl::bench::parse_args(cli, args);
  const bool small = size == "small";
  std::vector<int64_t> sizes = {1 << 20};
  if (!small) sizes.push_back(int64_t{1} << 26);
  std::vector<nl::SimdLevel> levels;
  for (auto l : {nl::SimdLevel::scalar, nl::SimdLevel::avx2, nl::SimdLevel::avx512})
    if (l <= nl::best_simd_level()) levels.push_back(l);

  for (int64_t n : sizes) {
    const std::string size_name = n >= (1 << 26) ? "64M" : "1M";
    nl::Generator gen(1);
    nl::Tensor ta = nl::randn({n}, gen), tb = nl::randn({n}, gen), tout = nl::Tensor::empty({n});
    const float *a = ta.data(), *b = tb.data();
    float* out = tout.data();

    std::printf("\n### kernels, 1 thread, %s floats (GB/s; x = vs memcpy of the same bytes)\n", size_name.c_str());
    std::vector<std::string> header = {"kernel", "memcpy"};
    for (auto l : levels) header.push_back(nl::simd_level_name(l));
    for (size_t i = 1; i < levels.size(); ++i) header.push_back(std::string(nl::simd_level_name(levels[i])) + "/scal");
    print_row(header);
    struct K {
      const char* name;
      double bytes_per_float;
      void (*run)(const nl::KernelTable&, const float*, const float*, float*, int64_t);
    };
    const std::vector<K> kernels = {
        {"add", 12, [](const nl::KernelTable& k, const float* a, const float* b, float* o, int64_t n) { k.add(a, b, o, n); }},
        {"mul", 12, [](const nl::KernelTable& k, const float* a, const float* b, float* o, int64_t n) { k.mul(a, b, o, n); }},
        {"exp", 8, [](const nl::KernelTable& k, const float* a, const float*, float* o, int64_t n) { k.exp(a, o, n); }},
        {"relu", 8, [](const nl::KernelTable& k, const float* a, const float*, float* o, int64_t n) { k.relu(a, o, n); }},
        {"sum", 4, [](const nl::KernelTable& k, const float* a, const float*, float* o, int64_t n) { o[0] = static_cast<float>(k.sum(a, n)); }},
        {"gelu", 8, [](const nl::KernelTable& k, const float* a, const float*, float* o, int64_t n) { k.gelu(a, o, nullptr, n); }},
        // x = a; b serves as Phi(x) and as g (the cost does not depend on the values)
        {"gelu_backward", 12, [](const nl::KernelTable& k, const float* a, const float* b, float* o, int64_t n) { k.gelu_backward(a, b, b, o, n); }},
        {"tanh", 8, [](const nl::KernelTable& k, const float* a, const float*, float* o, int64_t n) { k.tanh(a, o, n); }},
    };
    for (const K& kernel : kernels) {
      const double bytes = kernel.bytes_per_float * n;
      const double mc = memcpy_gbs(bytes);
      std::vector<std::string> row = {kernel.name, fmt_num(mc, 1)};
      std::vector<double> gbs;
      for (auto l : levels) {
        const nl::KernelTable& k = nl::kernels_for(l);
        const double s = nl::bench::seconds_per_call([&] { kernel.run(k, a, b, out, n); nl::bench::do_not_optimize(out[0]); });
        gbs.push_back(bytes / s / 1e9);
        row.push_back(fmt_num(gbs.back(), 1) + " (" + fmt_num(gbs.back() / mc, 2) + "x)");
      }
      for (size_t i = 1; i < levels.size(); ++i) row.push_back(fmt_num(gbs[i] / gbs[0], 1));
      print_row(row, 16);
    }

    std::printf("\n### ops, %d threads, simd=%s, %s floats (GB/s; x = vs memcpy of the same bytes, 1 thread)\n",
                nl::num_threads(), nl::simd_level_name(nl::simd_level()), size_name.c_str());
    print_row({"op", "memcpy", "GB/s", "vs memcpy"});
    nl::Tensor rows = ta.view({n / 1000 > 0 ? n / 1024 : 1, 1024});
    nl::Tensor bias = nl::randn({1024}, gen);
    struct Op {
      const char* name;
      double bytes_per_float;
      std::function<nl::Tensor()> run;
    };
    const std::vector<Op> ops = {
        {"add", 12, [&] { return nl::add(ta, tb); }},
        {"add [N,1024]+[1024]", 8, [&] { return nl::add(rows, bias); }},
        {"mul", 12, [&] { return nl::mul(ta, tb); }},
        {"exp", 8, [&] { return nl::exp(ta); }},
        {"relu", 8, [&] { return nl::relu(ta); }},
        {"sum", 4, [&] { return nl::sum(ta); }},
        {"sum dim0 [N,1024]", 4, [&] { return nl::sum(rows, {0}); }},
        {"softmax [N,1024]", 8, [&] { return nl::softmax(rows, 1); }},
    };
    for (const Op& op : ops) {
      const double bytes = op.bytes_per_float * n;
      const double mc = memcpy_gbs(bytes);
      const double s = nl::bench::seconds_per_call([&] { nl::bench::do_not_optimize(op.run().data()[0]); });
      print_row({op.name, fmt_num(mc, 1), fmt_num(bytes / s / 1e9, 1), fmt_num(bytes / s / 1e9 / mc, 2)}, 22);
    }
  }
}
