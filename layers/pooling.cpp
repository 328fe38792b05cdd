// normlab layers: pooling modules. See pooling.hpp.
#include "layers/pooling.hpp"

#include <fmt/format.h>

namespace nl {

static void check_pool_args(const char* layer, int64_t kernel, int64_t stride, int64_t padding) {
  NL_CHECK(kernel > 0 && stride >= 0 && padding >= 0, layer, ": kernel must be positive and stride/padding ",
           "non-negative, got kernel=", kernel, " stride=", stride, " padding=", padding);
  NL_CHECK(2 * padding <= kernel, layer, ": padding=", padding, " must be at most half of kernel=", kernel);
}

static void check_nchw(const char* layer, const Tensor& x) {
  NL_CHECK(x.dim() == 4, layer, ": expected input [N, C, H, W], got ", x.shape());
}

MaxPool2d::MaxPool2d(int64_t k, int64_t s, int64_t p) : kernel(k), stride(s == 0 ? k : s), padding(p) {
  check_pool_args("MaxPool2d", k, s, p);
}
Tensor MaxPool2d::forward(const Tensor& x) {
  check_nchw("MaxPool2d", x);
  return max_pool2d(x, kernel, stride, padding);
}
std::string MaxPool2d::name() const { return fmt::format("MaxPool2d(k={}, s={}, p={})", kernel, stride, padding); }

AvgPool2d::AvgPool2d(int64_t k, int64_t s, int64_t p) : kernel(k), stride(s == 0 ? k : s), padding(p) {
  check_pool_args("AvgPool2d", k, s, p);
}
Tensor AvgPool2d::forward(const Tensor& x) {
  check_nchw("AvgPool2d", x);
  return avg_pool2d(x, kernel, stride, padding);
}
std::string AvgPool2d::name() const { return fmt::format("AvgPool2d(k={}, s={}, p={})", kernel, stride, padding); }

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
  check_nchw("GlobalAvgPool2d", x);
  return global_avg_pool2d(x);
}

}  // namespace nl
