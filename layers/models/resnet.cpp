// normlab models: resnet20, the CIFAR-10 ResNet of He et al. 2016 ("Deep Residual Learning",
// section 4.2) with n = 3:
//
//   conv3x3(C->16) - norm - relu
//   layer1: 3 basic blocks, 16 channels, 32x32
//   layer2: 3 basic blocks, 32 channels, 16x16 (the first block has stride 2)
//   layer3: 3 basic blocks, 64 channels,  8x8  (the first block has stride 2)
//   global average pool - fc(64 -> classes)
//
//   basic block: out = relu( norm2(conv2( relu(norm1(conv1(x))) )) + shortcut(x) )
//
// Shortcuts are the paper's option A, which adds no parameters: the identity when the shape
// is kept; when a block halves the size and doubles the channels, x subsampled with stride 2
// and zero-padded with the extra channels (half before, half after). With bn this is the
// 0.27M-parameter network of the paper (269,722 parameters for 10 classes).
// Convs have no bias when a norm follows (its shift makes the bias redundant).
#include <fmt/format.h>

#include "layers/activation.hpp"
#include "layers/linear.hpp"
#include "layers/models/model.hpp"
#include "layers/pooling.hpp"

namespace nl {

namespace {

class BasicBlock : public Module {
 public:
  BasicBlock(const NormOptions& norm, int64_t in, int64_t out, int64_t stride, int64_t hw, Generator& gen)
      : in_(in), out_(out), stride_(stride) {
    const bool bias = !norm_follows_weights(norm);
    Conv2dOptions first;
    first.stride_h = first.stride_w = stride;
    first.pad_h = first.pad_w = 1;
    Conv2dOptions same;
    same.pad_h = same.pad_w = 1;
    conv1_ = register_module("conv1", make_conv2d(norm, in, out, 3, first, bias, gen));
    act1_ = register_module("norm1", make_norm_act(norm, {out, hw, hw}, NormSite::conv, "relu"));
    conv2_ = register_module("conv2", make_conv2d(norm, out, out, 3, same, bias, gen));
    norm2_ = register_module("norm2", make_norm(norm, {out, hw, hw}, NormSite::conv));
  }

  Tensor forward(const Tensor& x) override {
    Tensor y = norm2_->forward(conv2_->forward(act1_->forward(conv1_->forward(x))));
    return add_relu(y, shortcut(x));
  }

  std::string name() const override { return fmt::format("BasicBlock({}, {}, stride {})", in_, out_, stride_); }

 private:
  // Option A: subsample, then zero-pad the new channels (no parameters).
  Tensor shortcut(const Tensor& x) const {
    if (stride_ == 1 && in_ == out_) return x;
    Tensor sub = x;
    if (stride_ != 1) sub = x.slice(2, 0, x.size(2), stride_).slice(3, 0, x.size(3), stride_);
    const int64_t extra = out_ - in_, before = extra / 2, after = extra - before;
    std::vector<Tensor> parts;
    if (before > 0) parts.push_back(Tensor::zeros({sub.size(0), before, sub.size(2), sub.size(3)}));
    parts.push_back(sub);
    if (after > 0) parts.push_back(Tensor::zeros({sub.size(0), after, sub.size(2), sub.size(3)}));
    return parts.size() == 1 ? sub : concat(parts, 1);
  }

  int64_t in_, out_, stride_;
  std::shared_ptr<Module> conv1_, act1_, conv2_, norm2_;
};

class ResNet20 : public Model {
 public:
  ResNet20(const ModelOptions& o, const NormOptions& norm) : Model(o), norm_name_(norm.name) {
    NL_CHECK(o.input_shape.size() == 3, "resnet20: input_shape must be [C, H, W], got ", o.input_shape);
    const int64_t c = o.input_shape[0], h = o.input_shape[1], w = o.input_shape[2];
    NL_CHECK(h == w && h % 4 == 0, "resnet20: needs square images with size divisible by 4, got input_shape ",
             o.input_shape);
    NL_CHECK(o.num_classes > 0, "resnet20: num_classes must be positive, got ", o.num_classes);
    Conv2dOptions same;
    same.pad_h = same.pad_w = 1;
    conv1_ = register_module("conv1", make_conv2d(norm, c, 16, 3, same, !norm_follows_weights(norm), gen_));
    norm1_ = register_module("norm1", make_norm_act(norm, {16, h, w}, NormSite::conv, "relu"));
    int64_t in = 16, hw = h;
    const int64_t widths[3] = {16, 32, 64};
    for (int stage = 0; stage < 3; ++stage) {
      auto layer = std::make_shared<Sequential>();
      for (int b = 0; b < 3; ++b) {
        const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
        hw /= stride;
        layer->append(std::make_shared<BasicBlock>(norm, in, widths[stage], stride, hw, gen_));
        in = widths[stage];
      }
      stages_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
    }
    fc_ = register_module("fc", std::make_shared<Linear>(64, o.num_classes, true, gen_));
  }

  Tensor forward(const Tensor& x) override {
    check_image_input(x);
    Tensor y = norm1_->forward(conv1_->forward(x));
    for (auto& stage : stages_) y = stage->forward(y);
    return fc_->forward(global_avg_pool2d(y));
  }

  std::string name() const override { return "resnet20(norm " + norm_name_ + ")"; }

 private:
  std::string norm_name_;
  std::shared_ptr<Module> conv1_, norm1_, fc_;
  std::vector<std::shared_ptr<Module>> stages_;
};

}  // namespace

std::shared_ptr<Model> make_resnet20(const ModelOptions& options, const NormOptions& norm) {
  return std::make_shared<ResNet20>(options, norm);
}

}  // namespace nl
