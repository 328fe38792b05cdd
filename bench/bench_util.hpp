// normlab bench: a tiny shared harness. Each bench/*.cpp file registers one or more named
// suites; bench/bench_main.cpp runs them by name:
//
//   normlab_bench                 # lists the suites
//   normlab_bench elementwise     # runs one suite (extra arguments are passed to it)
//   normlab_bench all             # runs every suite
//
// Registering a suite (at namespace scope in any bench/*.cpp):
//
//   NL_BENCH_SUITE(elementwise, "GB/s of elementwise kernels vs memcpy") {
//     // `args` (std::vector<std::string>) holds the arguments after the suite name.
//     CLI::App cli{"GB/s of elementwise kernels", "normlab_bench elementwise"};
//     cli.add_option("--budget", budget, "seconds per row");
//     nl::bench::parse_args(cli, args);  // --help, unknown options, bad numbers
//     double s = nl::bench::seconds_per_call([&] { work(); });
//     nl::bench::print_row({"add", "1M", nl::bench::fmt_num(bytes / s / 1e9)});
//   }
//
// Timing rule: numbers on a shared machine are noisy, so a suite should always print a
// ratio against a baseline measured in the same run (memcpy, the scalar kernel, ...).
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "core/parallel.hpp"

namespace nl::bench {

using SuiteFn = void (*)(const std::vector<std::string>& args);

struct Suite {
  const char* name;
  const char* description;
  SuiteFn run;
};

// All registered suites, in registration order (a function-local static, so registration
// from other translation units' static initializers is safe).
inline std::vector<Suite>& suites() {
  static std::vector<Suite> all;
  return all;
}

struct RegisterSuite {
  RegisterSuite(const char* name, const char* description, SuiteFn run) {
    suites().push_back({name, description, run});
  }
};

#define NL_BENCH_SUITE(suite_name, description)                                              \
  static void nl_bench_suite_##suite_name(const std::vector<std::string>& args);             \
  static const ::nl::bench::RegisterSuite nl_bench_register_##suite_name(                    \
      #suite_name, description, &nl_bench_suite_##suite_name);                               \
  static void nl_bench_suite_##suite_name([[maybe_unused]] const std::vector<std::string>& args)

// Thrown by parse_args after --help or a bad argument (CLI11 printed the help or the error):
// normlab_bench exits with `code`.
struct SuiteExit {
  int code;
};

// Checks for counts (threads, batch sizes, steps). Not CLI::PositiveNumber: its message for a
// word ("two") is a range up to 1.8e308.
inline const CLI::Range kPositive{int64_t{1}, int64_t{1000000}}, kNonNegative{int64_t{0}, int64_t{1000000}};

// A suite's arguments, parsed by CLI11 as the normlab command parses its own: --help lists the
// options; an unknown option or a value that is not a number stops with a message naming it.
inline void parse_args(CLI::App& cli, const std::vector<std::string>& args) {
  std::vector<std::string> last_first(args.rbegin(), args.rend());  // the order CLI11 consumes
  try {
    cli.parse(last_first);
  } catch (const CLI::ParseError& e) {
    throw SuiteExit{cli.exit(e)};
  }
}

// --threads N for a suite, defaulting to the value `threads` holds; the count is applied
// (nl::set_num_threads) as soon as the arguments are parsed.
inline CLI::Option* add_threads_option(CLI::App& cli, int& threads, const std::string& help = "") {
  cli.final_callback([&threads] { nl::set_num_threads(threads); });
  return cli.add_option("--threads", threads, help)->capture_default_str()->check(kPositive);
}

// --algorithm automatic|direct|winograd: the 3x3 convolution algorithm (core/ops.hpp) a suite
// forces, so one binary can A/B the two on the machine at hand (`automatic` is training's rule).
inline CLI::Option* add_conv3x3_algorithm_option(CLI::App& cli, std::string& algorithm) {
  return cli.add_option("--algorithm", algorithm, "3x3 convolution algorithm: automatic (as in training), direct or winograd")
      ->capture_default_str()
      ->check(CLI::IsMember({"automatic", "direct", "winograd"}));
}
inline nl::Conv3x3Algorithm conv3x3_algorithm_named(const std::string& name) {
  return name == "direct" ? nl::Conv3x3Algorithm::direct
         : name == "winograd" ? nl::Conv3x3Algorithm::winograd
                              : nl::Conv3x3Algorithm::automatic;
}

// Keeps the compiler from deleting a computation whose result is unused.
template <typename T>
inline void do_not_optimize(T const& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

// Seconds per call of fn: one warm-up call, then repeats until at least `min_seconds` have
// passed (and at least `min_reps` calls); returns the *best* batch average of 3 batches,
// because on a shared machine noise only ever adds time.
inline double seconds_per_call(const std::function<void()>& fn, double min_seconds = 0.05, int min_reps = 3) {
  using clock = std::chrono::steady_clock;
  fn();  // warm-up: page faults, caches, thread pool start
  double best = 1e300;
  for (int batch = 0; batch < 3; ++batch) {
    int reps = 0;
    const auto start = clock::now();
    double elapsed = 0.0;
    while (reps < min_reps || elapsed < min_seconds / 3) {
      fn();
      ++reps;
      elapsed = std::chrono::duration<double>(clock::now() - start).count();
    }
    best = std::min(best, elapsed / reps);
  }
  return best;
}

inline std::string fmt_num(double v, int precision = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

// Prints one row of left-aligned columns (width 14), e.g. a header then data rows.
inline void print_row(const std::vector<std::string>& columns, int width = 14) {
  for (const auto& c : columns) std::printf("%-*s", width, c.c_str());
  std::printf("\n");
  std::fflush(stdout);
}


inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size();
  return m == 0 ? 0.0 : (m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]));
}

// Median time of one training step, the way scripts/bench_torch.py measures
// PyTorch: 3 warm-up steps, then timed steps until `budget` seconds passed (at least 8, at
// most 60).
// max_steps > 60 is for profiling (perf record over a long steady loop).
inline double median_step_seconds(const std::function<void()>& step, double budget, size_t max_steps = 60) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < 3; ++i) step();
  std::vector<double> times;
  const auto start = clock::now();
  while (times.size() < max_steps &&
         (times.size() < 8 || std::chrono::duration<double>(clock::now() - start).count() < budget)) {
    const auto t0 = clock::now();
    step();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  return median(times);
}

}  // namespace nl::bench
