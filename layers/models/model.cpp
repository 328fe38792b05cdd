// normlab models: Model base, SequentialModel and the name registry. See model.hpp.
#include "layers/models/model.hpp"

#include <map>
#include <mutex>

namespace nl {

Tensor Model::forward(const Tensor& x) {
  throw Error(name() + ": a language model takes token ids; call forward_ids(ids, {B, T}) (got a float tensor " +
              shape_str(x.shape()) + ")");
}

Tensor Model::forward_ids(const std::vector<int32_t>&, const Shape& ids_shape) {
  throw Error(name() + ": an image model takes a float tensor [N, C, H, W]; call forward(x) (got ids " +
              shape_str(ids_shape) + ")");
}

int64_t Model::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

void Model::check_image_input(const Tensor& x) const {
  Shape expected = {-1};
  expected.insert(expected.end(), options_.input_shape.begin(), options_.input_shape.end());
  bool ok = x.dim() == static_cast<int64_t>(expected.size()) && x.dim() > 1 && x.size(0) > 0;
  for (int64_t d = 1; ok && d < x.dim(); ++d) ok = x.size(d) == expected[d];
  NL_CHECK(ok, name(), ": expected input of shape [N] + ", options_.input_shape, " (N > 0), got ", x.shape());
}

SequentialModel::SequentialModel(const ModelOptions& options, std::string title)
    : Model(options), title_(std::move(title)) {}

void SequentialModel::append(std::shared_ptr<Module> m) {
  register_module(std::to_string(layers_.size()), m);
  layers_.push_back(std::move(m));
}

Tensor SequentialModel::forward(const Tensor& x) {
  check_image_input(x);
  Tensor y = x;
  for (auto& layer : layers_) y = layer->forward(y);
  return y;
}

bool norm_follows_weights(const NormOptions& norm) {
  if (norm.name == "none") return false;
  if (norm.name == "wn") return norm.wn_mean_only_bn;  // plain weight norm keeps its bias
  return true;
}

// ---- registry ----
// An explicit table rather than static self-registration: objects in a static library that
// nothing references are dropped by the linker, and their registrations with them.
static std::map<std::string, ModelBuilder>& registry() {
  static std::map<std::string, ModelBuilder> table = {
      {"mlp", make_mlp},           {"cnn", make_cnn},           {"resnet20", make_resnet20},
      {"lstm", make_char_lstm},    {"gru", make_char_gru},      {"transformer", make_char_transformer},
  };
  return table;
}
static std::mutex registry_mutex;

void register_model(const std::string& name, ModelBuilder builder) {
  NL_CHECK(!name.empty() && builder, "register_model: needs a name and a builder");
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry()[name] = std::move(builder);
}

std::vector<std::string> model_names() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  std::vector<std::string> names;
  for (const auto& [name, builder] : registry()) names.push_back(name);
  return names;
}

std::shared_ptr<Model> make_model(const ModelOptions& options, const NormOptions& norm) {
  ModelBuilder builder;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = registry().find(options.name);
    if (it != registry().end()) builder = it->second;
  }
  if (!builder) {
    std::string valid;
    for (const auto& n : model_names()) valid += (valid.empty() ? "" : ", ") + n;
    throw Error("make_model: unknown model '" + options.name + "'; valid names: " + valid);
  }
  validate_norm_options(norm);
  NL_CHECK(options.dropout >= 0.0f && options.dropout < 1.0f, "make_model(", options.name,
           "): dropout must be in [0, 1), got ", options.dropout);
  return builder(options, norm);
}

}  // namespace nl
