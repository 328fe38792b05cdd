// normlab models: cnn, the small conv net of the speed comparison with PyTorch (the same
// network in PyTorch: scripts/torch_models.py), layer for layer:
//
//   1 input channel (MNIST, 28x28):  block(1->32) block(32->64)            flatten 64*7*7=3136
//   otherwise (CIFAR-10, 32x32):     block(C->32) block(32->64) block(64->128) flatten 128*4*4=2048
//   block(cin->cout) = conv3x3(pad 1) - NORM - ReLU - maxpool2
//   then linear(flat -> 128) - ReLU - linear(128 -> classes)
//
// As in the reference, convs keep their bias in every variant, so only NORM differs
// between runs, and the two linear layers are plain Linear. NORM sees [C, H, W] maps
// (LayerNorm normalizes over all of C, H, W, like nn.LayerNorm([C, H, W])).
#include <fmt/format.h>

#include "layers/activation.hpp"
#include "layers/dropout.hpp"
#include "layers/linear.hpp"
#include "layers/models/model.hpp"
#include "layers/pooling.hpp"

namespace nl {

std::shared_ptr<Model> make_cnn(const ModelOptions& o, const NormOptions& norm) {
  NL_CHECK(o.input_shape.size() == 3, "cnn: input_shape must be [C, H, W], got ", o.input_shape);
  const int64_t c = o.input_shape[0], h = o.input_shape[1], w = o.input_shape[2];
  const std::vector<int64_t> channels =
      c == 1 ? std::vector<int64_t>{32, 64} : std::vector<int64_t>{32, 64, 128};
  const int64_t shrink = int64_t{1} << channels.size();
  NL_CHECK(h % shrink == 0 && w % shrink == 0, "cnn: H and W must be divisible by ", shrink, " (", channels.size(),
           " maxpools), got input_shape ", o.input_shape);
  NL_CHECK(o.num_classes > 0, "cnn: num_classes must be positive, got ", o.num_classes);

  auto model = std::make_shared<SequentialModel>(
      o, fmt::format("cnn({} blocks, input {}, norm {})", channels.size(), shape_str(o.input_shape), norm.name));
  Generator& gen = model->generator();
  int64_t cin = c, hh = h, ww = w;
  for (int64_t cout : channels) {
    Conv2dOptions same;
    same.pad_h = same.pad_w = 1;
    model->append(make_conv2d(norm, cin, cout, 3, same, /*bias=*/true, gen));
    model->append(make_norm_act(norm, {cout, hh, ww}, NormSite::conv, "relu"));
    model->append(std::make_shared<MaxPool2d>(2));
    cin = cout, hh /= 2, ww /= 2;
  }
  model->append(std::make_shared<Flatten>());
  model->append(std::make_shared<Linear>(cin * hh * ww, 128, true, gen));
  model->append(std::make_shared<ReLU>());
  if (o.dropout > 0.0f) model->append(std::make_shared<Dropout>(o.dropout, gen));
  model->append(std::make_shared<Linear>(128, o.num_classes, true, gen));
  return model;
}

}  // namespace nl
