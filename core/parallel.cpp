// normlab core: the OpenMP pool, shared with OpenBLAS. See parallel.hpp.
#include "core/parallel.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdlib>

#include "core/runtime_env.hpp"
#include "core/tensor.hpp"

extern "C" void openblas_set_num_threads(int num_threads);

namespace nl {

void set_num_threads(int n) {
  NL_CHECK(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

bool threads_spin_between_regions() {
  static const bool spin = wait_policy_env().spins();
  return spin;
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = (n + grain - 1) / grain;
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), max_chunks));
  if (threads <= 1 || omp_in_parallel()) {
    fn(0, n);
    return;
  }
  // One contiguous chunk per thread: static, so the split depends only on n and threads.
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int64_t begin = n * t / threads, end = n * (t + 1) / threads;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace nl
