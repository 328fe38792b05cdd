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

int main(int argc, char** argv) {
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
  std::printf("# normlab_bench %s: threads=%d simd=%s (best %s)\n", name.c_str(), nl::num_threads(),
              nl::simd_level_name(nl::simd_level()), nl::simd_level_name(nl::best_simd_level()));
  bool ran = false;
  for (const auto& s : suites()) {
    if (name == "all" || name == s.name) {
      std::printf("\n## %s: %s\n", s.name, s.description);
      s.run(args);
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
