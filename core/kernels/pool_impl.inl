// normlab core: the 2x2 max pool kernels (see pool.hpp), written once with GCC vector types
// and compiled once per SIMD level (normlab_simd_kernel in CMakeLists.txt).
//
// Expects: NL_SIMD_NS, this level's namespace (simd_scalar | simd_avx2 | simd_avx512), defined by
// the translation unit normlab_simd_kernel (CMakeLists.txt) generates for each level.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/kernels/pool.hpp"

namespace nl::NL_SIMD_NS {
namespace {

#include "core/kernels/vector_impl.inl"

// Columns 2j and 2j + 1 of n (<= kVec) windows of a row: 2n floats from p, split by parity.
inline void load_pairs(const float* p, int64_t n, vf& even, vf& odd) {
  split_even_odd(load_up_to(p, 2 * n), load_up_to(p + kVec, 2 * n - kVec), even, odd);
}

// Where candidate v beats the best so far (greater, or a NaN), it takes the best's place.
inline void take_if_better(vf v, vi at, vf& best, vi& best_at) {
  const vi better = (v > best) | (v != v);
  best = better ? v : best;
  best_at = better ? at : best_at;
}

void max_pool_2x2(const float* x, int64_t h, int64_t w, float* y, int32_t* argmax) {
  const int64_t oh = h / 2, ow = w / 2;
  const int row = static_cast<int>(w);  // the argmax's step to the window's second row
  vi lane2;  // 2j for the lanes' windows
  for (int l = 0; l < kVec; ++l) lane2[l] = 2 * l;
  for (int64_t i = 0; i < oh; ++i) {
    const float* top = x + 2 * i * w;
    const float* bottom = top + w;
    for (int64_t j = 0; j < ow; j += kVec) {
      const int64_t n = std::min<int64_t>(kVec, ow - j);
      vf a, b, c, d;  // the windows' four pixels, in the order the first maximum is taken
      load_pairs(top + 2 * j, n, a, b);
      load_pairs(bottom + 2 * j, n, c, d);
      const vi at_a = lane2 + static_cast<int>(2 * i * w + 2 * j);
      vf best = a;
      vi best_at = at_a;
      take_if_better(b, at_a + 1, best, best_at);
      take_if_better(c, at_a + row, best, best_at);
      take_if_better(d, at_a + row + 1, best, best_at);
      store_first(y + i * ow + j, best, n);
      store_first(reinterpret_cast<float*>(argmax + i * ow + j), reinterpret_cast<vf>(best_at), n);
    }
  }
}

// 2n floats to p from the interleaved even and odd lanes.
inline void store_pairs(float* p, int64_t n, vf even, vf odd) {
  vf first, second;
  join_even_odd(even, odd, first, second);
  store_first(p, first, std::min<int64_t>(2 * n, kVec));
  if (2 * n > kVec) store_first(p + kVec, second, 2 * n - kVec);
}

void max_pool_2x2_backward(const float* dy, const int32_t* argmax, int64_t h, int64_t w, float* dx) {
  const int64_t oh = h / 2, ow = w / 2;
  const int row = static_cast<int>(w);
  vi lane2;
  for (int l = 0; l < kVec; ++l) lane2[l] = 2 * l;
  for (int64_t i = 0; i < oh; ++i) {
    float* top = dx + 2 * i * w;
    float* bottom = top + w;
    for (int64_t j = 0; j < ow; j += kVec) {
      const int64_t n = std::min<int64_t>(kVec, ow - j);
      const vf g = load_up_to(dy + i * ow + j, n);
      const vi at = reinterpret_cast<vi>(load_up_to(reinterpret_cast<const float*>(argmax + i * ow + j), n));
      const vi at_a = lane2 + static_cast<int>(2 * i * w + 2 * j);
      const vf zero = {};
      store_pairs(top + 2 * j, n, at == at_a ? g : zero, at == at_a + 1 ? g : zero);
      store_pairs(bottom + 2 * j, n, at == at_a + row ? g : zero, at == at_a + row + 1 ? g : zero);
    }
    if (w % 2) top[w - 1] = bottom[w - 1] = 0.0f;
  }
  if (h % 2) std::fill(dx + (h - 1) * w, dx + h * w, 0.0f);
}

}  // namespace

extern const PoolKernels pool_table;
const PoolKernels pool_table = {max_pool_2x2, max_pool_2x2_backward};

}  // namespace nl::NL_SIMD_NS
