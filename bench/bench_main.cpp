// normlab bench: the normlab_bench command. Runs the suites registered with NL_BENCH_SUITE
// (bench/bench_util.hpp) by name: `normlab_bench <suite|all> [suite args...]`; with no
// argument it lists them.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"
#include "core/kernels/kernels.hpp"
#include "core/parallel.hpp"
#include "core/runtime_env.hpp"

// Prints only the header line (threads, SIMD level, OpenBLAS core): the scripts read the core
// from it to give PyTorch the same one.
NL_BENCH_SUITE(info, "the header line only (threads, SIMD level, OpenBLAS core)") {
  CLI::App cli{"the header line only", "normlab_bench info"};
  nl::bench::parse_args(cli, args);
}

int main(int argc, char** argv) {
  // The OpenBLAS core as `normlab` chooses it, so benchmarks measure what users run. The wait
  // policy is left to the caller (the bench scripts set it for both sides of a comparison).
  nl::tune_runtime_and_reexec(argv, {.wait_policy = nl::WaitPolicyTuning::keep, .blas_core = true});
  nl::configure_denormals();  // as `normlab` does
  using nl::bench::suites;
  auto list = [] {
    std::printf("usage: normlab_bench <suite|all> [args...]\nsuites:\n");
    for (const auto& s : suites()) std::printf("  %-20s %s\n", s.name, s.description);
  };
  if (argc < 2 || std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0) {
    list();
    return 0;
  }
  const std::string name = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (name == "all" && !args.empty()) {
    std::fprintf(stderr, "normlab_bench all: takes no arguments (each suite has its own: normlab_bench <suite> --help)\n");
    return 1;
  }
  std::printf("# normlab_bench %s: threads=%d simd=%s (best %s) blas=%s denormals=%s\n", name.c_str(),
              nl::num_threads(), nl::simd_level_name(nl::simd_level()), nl::simd_level_name(nl::best_simd_level()),
              nl::blas_core_description().c_str(), nl::denormals_description().c_str());
  bool ran = false;
  for (const auto& s : suites()) {
    if (name == "all" || name == s.name) {
      std::printf("\n## %s: %s\n", s.name, s.description);
      try {
        s.run(args);
      } catch (const nl::bench::SuiteExit& e) {
        return e.code;
      } catch (const std::exception& e) {  // e.g. a model or norm name the library rejects
        std::fprintf(stderr, "normlab_bench %s: %s\n", s.name, e.what());
        return 1;
      }
      ran = true;
    }
  }
  if (!ran) {
    std::fprintf(stderr, "normlab_bench: no suite named '%s'\n", name.c_str());
    list();
    return 1;
  }
  return 0;
}
