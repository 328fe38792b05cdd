// normlab core: the 2x2, stride-2, unpadded max pool of one [h, w] plane (every CNN here pools
// so), written with GCC vector types and compiled once per SIMD level like conv3x3_impl.inl.
// Plain loops left it to the generic build's SSE2 code with scalar tails, and the rows of
// the MNIST CNN's maps (14 and 7 outputs) are shorter than one AVX-512 vector of outputs:
// 18% of an MNIST CNN step at batch 32. Here a row of outputs is whole vectors and one masked
// vector at its end. Every level gives the same bits (selects only, no arithmetic).
#pragma once

#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace nl {

struct PoolKernels {
  // y [h/2, w/2] = the maximum of each window x[2i .. 2i+1][2j .. 2j+1]; argmax: its index in
  // the plane. The first maximum in the order (2i, 2j), (2i, 2j+1), (2i+1, 2j), (2i+1, 2j+1)
  // wins, a NaN over any number (as PyTorch). An odd last row or column belongs to no window.
  void (*max_pool_2x2)(const float* x, int64_t h, int64_t w, float* y, int32_t* argmax);
  // dx [h, w] = dy of the window where the pixel is its window's argmax, else 0 (every pixel
  // written once, the odd last row or column included: dx needs no zeroing).
  void (*max_pool_2x2_backward)(const float* dy, const int32_t* argmax, int64_t h, int64_t w, float* dx);
};

const PoolKernels& pool_kernels();  // current level
const PoolKernels& pool_kernels_for(SimdLevel level);

}  // namespace nl
