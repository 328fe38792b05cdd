// normlab core: threads. One OpenMP pool is shared by normlab's kernels and OpenBLAS
// (we link the OpenMP build of OpenBLAS, see README), so they never oversubscribe.
// Work is split into fixed chunks in a fixed order, so results depend on the thread
// count but not on timing: same thread count, same bits.
#pragma once

#include <cstdint>
#include <functional>

namespace nl {

void set_num_threads(int n);  // also sets OpenBLAS's thread count
int num_threads();

// Whether idle threads spin before they sleep (libgomp's default, or the GOMP_SPINCOUNT normlab
// sets on a quiet machine: core/runtime_env.hpp) rather than sleeping at once
// (OMP_WAIT_POLICY=passive, GOMP_SPINCOUNT=0). A region then costs a microsecond or two instead
// of a wake-up through the kernel, so smaller pieces of work are worth a thread. Read once from
// the environment libgomp read at start.
bool threads_spin_between_regions();

// Run fn(begin, end) over [0, n) split into contiguous chunks of at least `grain` items,
// in parallel when there is enough work. Chunks are assigned statically.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace nl
