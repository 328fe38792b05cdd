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
// Winograd F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
// 2016): every 2 x 2 block of outputs ("tile" (ty, tx), ty < H/2, tx < W/2) comes from the
// 4 x 4 input patch d at rows 2ty-1 .. 2ty+2, columns 2tx-1 .. 2tx+2 (zero outside the image),
// and a 3 x 3 filter g:
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A       (.) elementwise: 16 products instead of 36
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
// Over channels the sum moves inside: with U = G g G^T per (co, ci) (packed once per call) and
// V = B^T d B per (ci, tile), each position xi of the 4 x 4 grid is a matrix product
//   M[xi][co][tile] = sum_ci U[xi][co][ci] V[xi][ci][tile],   then Y[co][tile] = A^T M A.
// 2.25x fewer multiplies than the direct kernel, paid for with the two transforms and with
// rounding (U and V mix values of different sizes: errors a few times the direct kernel's,
// still ~1e-6 relative; the tests bound them). Even H and W only; core/ops_conv.cpp says when.
// The weight gradient is the same identity read the other way: sum_ij dY_ij Y_ij =
// sum_xi (A dY A^T)[xi] U[xi] V[xi], so with Z = A dY A^T per (co, tile)
//   dU[xi][co][ci] = sum_tiles Z[xi][co][tile] V[xi][ci][tile],   dW[co][ci] = G^T dU G.
// One call: a block of consecutive tile rows (sample s = row / (H/2)), its tiles in vector
// lanes, numbered row after row; V [16][cin][tiles] and M [16][co_block][tiles] in scratch
// (each xi plane padded), U [ceil(cout / co_block)][16][cin][co_block]. The Winograd transforms
// read unpadded [H][W] planes and make the zero border themselves (masked loads at the image's
// edges, zero vectors for the rows above and below it): a zero-bordered copy of the whole tensor,
// as the direct kernels read, was 7-8% of a ResNet-20 step in memory traffic, and a per-block
// copy in cache still 8-9%.
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
  // Winograd F(2x2, 3x3) for the tile rows [row0, row0 + rows) of samples of th x tw tiles
  // (H = 2 th, W = 2 tw), all cout outputs: out [n, cout, H, W] (+ bias[co] when given) from
  // in [n, cin, H, W], u packed as above. scratch: winograd_scratch(cin, rows * tw) floats.
  void (*winograd)(const float* in, int64_t cin, int64_t th, int64_t tw, const float* u, int64_t cout,
                   const float* bias, float* out, int64_t row0, int64_t rows, float* scratch);
  int64_t (*winograd_scratch)(int64_t cin, int64_t tiles);
  // One channel's transform for the tile rows [row0, row0 + rows), tiles in lanes: V = B^T d B
  // from x (the channel's [H][W] plane in sample 0; sample s at x + s * sample_stride), or
  // Z = A dY A^T from g (dy's, likewise), into v / z [xi * xi_stride + tile], tile = (row -
  // row0) * tw + tx, with winograd_tile_stride(rows * tw, vec) floats of room.
  void (*winograd_input)(const float* x, int64_t sample_stride, int64_t th, int64_t tw, int64_t row0, int64_t rows,
                         float* v, int64_t xi_stride);
  void (*winograd_output_grad)(const float* g, int64_t sample_stride, int64_t th, int64_t tw, int64_t row0,
                               int64_t rows, float* z, int64_t xi_stride);
  // src [h, w] -> dst [plane]: pixel (i, j) at (i + 1) * wp + j + 1 (wp = w + 2), zero elsewhere;
  // plane >= h * wp + w + vec + 1 (the last row's whole-vector stores stay inside): the direct
  // kernels' padded copies.
  void (*pad_plane)(const float* src, int64_t h, int64_t w, int64_t plane, float* dst);
};

// Floats per channel of a block of `tiles` tiles: whole vectors plus a vector of slack (the
// transforms store whole vectors). Floats per xi plane of `channels` such rows: padded by a
// cache line, so that the 16 streams of a transform do not fall into the same L1 sets.
inline int64_t winograd_tile_stride(int64_t tiles, int64_t vec) { return (tiles + vec - 1) / vec * vec + vec; }
inline int64_t winograd_xi_stride(int64_t channels, int64_t tile_stride) { return channels * tile_stride + 16; }

const Conv3x3Kernels& conv3x3_kernels_for(SimdLevel level);
inline const Conv3x3Kernels& conv3x3_kernels() { return conv3x3_kernels_for(simd_level()); }

}  // namespace nl
