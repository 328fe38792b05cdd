// normlab core: direct 3x3 convolution kernels (stride 1, padding 1), used by conv2d for the
// layers of the reference CNNs instead of im2col + sgemm (see core/ops_conv.cpp for why).
//
// Layout ("flattened padded plane"). Every input plane is copied once into a zero-bordered
// plane of width Wp = W + 2, stored flat with `plane` floats per channel (>= (H+2)*Wp plus
// slack, all zero outside the image). An output position (oh, ow) is numbered q = oh*Wp + ow;
// then tap (kh, kw) of its receptive field sits at q + kh*Wp + kw, a constant offset, so a
// kernel slides one vector over consecutive q and needs no border tests. Positions with
// ow >= W (2 per row) are computed too and thrown away: the price of branch-free loops.
// The weight gradient instead reads dy channels-last (to_channels_last) and keeps output
// channels in the vector lanes: it visits only real positions and needs no sum across lanes.
//
// Compiled three times like kernels_impl.inl (normlab_simd_kernel in CMakeLists.txt); the block
// sizes differ per level (they fit the register file), so results may differ across levels
// in the last bits, never across runs or thread counts.
#pragma once

#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace nl {

struct Conv3x3Kernels {
  int co_block;  // output channels per forward call (weights are packed in groups of this many)
  int vec;       // floats per vector; q_count must be a multiple of it
  int dw_co;     // output channels per weight_grad call (at most; a multiple of vec)
  // out[c*q_count + q] = sum_{ci < cin, t < 9} wpk[(ci*9 + t)*co_block + c] * in[ci*plane + q + off(t)]
  // for c < co_block, q < q_count; off(t) = (t/3)*wp + t%3.
  void (*forward)(const float* in, int64_t cin, int64_t plane, int64_t wp, const float* wpk, float* out,
                  int64_t q_count);
  // dst[q*co_stride + c] = src[c*hw + q] for c < channels, 0 for channels <= c < co_stride
  // (co_stride a multiple of vec): dy channels-last for weight_grad.
  void (*to_channels_last)(const float* src, int64_t channels, int64_t hw, float* dst, int64_t co_stride);
  // One input channel ci of the weight gradient, channels-last dy:
  // dw[r*ldw + t] += sum_{s < n, oh < h, ow < w} dyt[s*dyt_stride + (oh*w + ow)*co_stride + r]
  //                                               * in[s*in_stride + oh*wp + ow + off(t)]
  // for r < rows <= dw_co, t < 9 (in points at channel ci's padded plane, dw at dW[co0][ci][0];
  // dyt holds the block's channels at [0, rows) of each position, readable up to the next
  // multiple of vec).
  void (*weight_grad)(const float* dyt, int64_t co_stride, int64_t dyt_stride, const float* in, int64_t in_stride,
                      int64_t n, int64_t h, int64_t w, int64_t wp, int64_t rows, float* dw, int64_t ldw);
};

const Conv3x3Kernels& conv3x3_kernels_for(SimdLevel level);
inline const Conv3x3Kernels& conv3x3_kernels() { return conv3x3_kernels_for(simd_level()); }

}  // namespace nl
