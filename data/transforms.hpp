// normlab data: training-time augmentation on uint8 CHW images (the standard CIFAR recipe).
//
// Random crop: zero-pad the image by `padding` pixels on every side, then cut out a window
// of the original size at a uniformly random offset, i.e. shift the image by dy, dx in
// [-padding, padding] and fill the uncovered border with 0. Random horizontal flip: mirror
// left-right with probability 1/2. Both act on bytes *before* input normalization, as
// torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip + Normalize do, so a padded
// pixel becomes (0 - mean) / std after normalization, not 0.
//
// Why augment: the network sees a slightly different image every epoch, which fights
// overfitting on 50k images; it also makes batch statistics noisier, which matters when
// comparing normalization layers.
#pragma once

#include <cstdint>

#include "core/random.hpp"

namespace nl::data {

struct Augmentation {
  int64_t crop_padding = 0;      // 0 = no random crop
  bool horizontal_flip = false;  // flip with probability 0.5

  bool enabled() const { return crop_padding > 0 || horizontal_flip; }
  static Augmentation none() { return {}; }
  static Augmentation cifar() { return {4, true}; }  // pad-4 random crop + flip
};

// Deterministic core: out(c, y, x) = src(c, y + dy, xs + dx), xs = flip ? W-1-x : x,
// and 0 where that falls outside the image. src and dst must not overlap.
void shift_flip(const uint8_t* src, uint8_t* dst, int64_t channels, int64_t height, int64_t width, int64_t dy,
                int64_t dx, bool flip);

// What random_augment drew (for tests and for printing).
struct AugmentDraw {
  int64_t dy = 0, dx = 0;
  bool flip = false;
};

// Draws in this order from gen: crop row offset, crop column offset (each gen.below(2p+1),
// only if padding > 0), then the flip (gen.uniform() < 0.5, only if flips are on).
AugmentDraw random_augment(const uint8_t* src, uint8_t* dst, int64_t channels, int64_t height, int64_t width,
                           const Augmentation& aug, Generator& gen);

}  // namespace nl::data
