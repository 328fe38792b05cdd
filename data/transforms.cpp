// normlab data: random crop + horizontal flip on uint8 CHW images (see transforms.hpp).
#include "data/transforms.hpp"

#include <algorithm>
#include <cstring>

namespace nl::data {

void shift_flip(const uint8_t* src, uint8_t* dst, int64_t channels, int64_t height, int64_t width, int64_t dy,
                int64_t dx, bool flip) {
  // For output column x the source column is xs + dx; valid output columns form one range
  // [x0, x1), so each row is a zero fill, a copy (or reversed copy), and a zero fill.
  for (int64_t c = 0; c < channels; ++c) {
    const uint8_t* s = src + c * height * width;
    uint8_t* d = dst + c * height * width;
    for (int64_t y = 0; y < height; ++y) {
      uint8_t* row = d + y * width;
      const int64_t sy = y + dy;
      if (sy < 0 || sy >= height) {
        std::memset(row, 0, width);
        continue;
      }
      const uint8_t* srow = s + sy * width;
      if (!flip) {
        // out[x] = srow[x + dx] for 0 <= x + dx < width
        const int64_t x0 = std::max<int64_t>(0, -dx), x1 = std::min<int64_t>(width, width - dx);
        std::memset(row, 0, width);
        if (x1 > x0) std::memcpy(row + x0, srow + x0 + dx, x1 - x0);
      } else {
        // out[x] = srow[W-1-x + dx] for 0 <= W-1-x+dx < width  <=>  dx <= x < width + dx
        const int64_t x0 = std::max<int64_t>(0, dx), x1 = std::min<int64_t>(width, width + dx);
        std::memset(row, 0, width);
        for (int64_t x = x0; x < x1; ++x) row[x] = srow[width - 1 - x + dx];
      }
    }
  }
}

AugmentDraw random_augment(const uint8_t* src, uint8_t* dst, int64_t channels, int64_t height, int64_t width,
                           const Augmentation& aug, Generator& gen) {
  AugmentDraw draw;
  if (aug.crop_padding > 0) {
    const uint64_t span = static_cast<uint64_t>(2 * aug.crop_padding + 1);
    // Crop origin in the padded image is in [0, 2p]; relative to the original, -p..p.
    draw.dy = static_cast<int64_t>(gen.below(span)) - aug.crop_padding;
    draw.dx = static_cast<int64_t>(gen.below(span)) - aug.crop_padding;
  }
  if (aug.horizontal_flip) draw.flip = gen.uniform() < 0.5f;
  shift_flip(src, dst, channels, height, width, draw.dy, draw.dx, draw.flip);
  return draw;
}

}  // namespace nl::data
