// normlab models: mlp, the MNIST network of the BatchNorm paper (Ioffe & Szegedy 2015,
// section 4.1): 3 fully-connected hidden layers of 100 sigmoid units, the norm inserted
// between each weight layer and its nonlinearity, then a linear classifier.
//
//   flatten - [linear(in -> width) - norm+activation - dropout?] x depth - linear(width -> classes)
//
// width, depth and activation are options (defaults 100, 3, sigmoid). Every linear layer
// comes from the factory (so wn/ws change them too) and keeps its bias unless a norm follows.
#include <fmt/format.h>

#include "layers/dropout.hpp"
#include "layers/models/model.hpp"
#include "layers/pooling.hpp"

namespace nl {

std::shared_ptr<Model> make_mlp(const ModelOptions& o, const NormOptions& norm) {
  NL_CHECK(o.width > 0 && o.depth >= 0, "mlp: width must be positive and depth non-negative, got width=", o.width,
           " depth=", o.depth);
  NL_CHECK(!o.input_shape.empty() && o.num_classes > 0, "mlp: needs input_shape and num_classes > 0, got ",
           o.input_shape, " and ", o.num_classes);
  auto model = std::make_shared<SequentialModel>(
      o, fmt::format("mlp({}x{} {}, norm {})", o.depth, o.width, o.activation, norm.name));
  Generator& gen = model->generator();
  const bool bias = !norm_follows_weights(norm);
  int64_t in = shape_numel(o.input_shape);
  model->append(std::make_shared<Flatten>());
  for (int64_t layer = 0; layer < o.depth; ++layer) {
    model->append(make_linear(norm, in, o.width, bias, gen));
    model->append(make_norm_act(norm, {o.width}, NormSite::features, o.activation));
    if (o.dropout > 0.0f) model->append(std::make_shared<Dropout>(o.dropout, gen));
    in = o.width;
  }
  model->append(make_linear(norm, in, o.num_classes, true, gen));
  return model;
}

}  // namespace nl
