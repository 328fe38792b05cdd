// normlab models: the Model interface, its options, and make_model(), which builds a model
// by name so an experiment says `--model resnet20 --norm gn`.
//
//   ModelOptions mo;  mo.name = "cnn";  mo.input_shape = {3, 32, 32};
//   NormOptions no;   no.name = "bn";
//   std::shared_ptr<Model> model = make_model(mo, no);
//   Tensor logits = model->forward(images);               // image models: [N,C,H,W] -> [N,classes]
//   Tensor logits = model->forward_ids(ids, {B, T});      // language models: -> [B, T, vocab]
//
// Models (definitions in their files; the benchmark ones have PyTorch twins in scripts/torch_models.py):
//   mlp          flatten - (linear - norm - activation) x depth - linear     (BN paper's MNIST net)
//   cnn          conv-norm-relu-maxpool blocks 32-64 (1 channel) or 32-64-128, fc 128, fc classes
//   resnet20     He et al. 2016 CIFAR ResNet-20, option-A (zero-padding) shortcuts
//   lstm, gru    char LM: embedding - LSTM/GRU (norm none|ln|bn|rms inside the cell) - linear
//   transformer  decoder-only char LM, pre-LN or post-LN blocks, learned positions
//
// A model's parameters and dropout masks all come from one Generator seeded with
// ModelOptions::seed, so the same options give the same model on every machine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "layers/module.hpp"
#include "layers/norm/factory.hpp"

namespace nl {

struct ModelOptions {
  std::string name = "mlp";  // mlp | cnn | resnet20 | lstm | gru | transformer
  // Image models.
  Shape input_shape = {1, 28, 28};  // C, H, W of one image
  int64_t num_classes = 10;
  // mlp.
  int64_t width = 100;               // units per hidden layer
  int64_t depth = 3;                 // hidden layers
  std::string activation = "sigmoid";
  // Language models (lstm, gru, transformer).
  int64_t vocab_size = 65;
  int64_t context = 64;              // transformer: longest sequence (positional table size)
  int64_t embed_dim = 128;           // lstm/gru: embedding width
  int64_t hidden_size = 256;         // lstm/gru: state width
  int64_t max_steps = 512;           // lstm/gru with bn: time steps with their own statistics
  int64_t d_model = 128, heads = 4, layers = 2;  // transformer
  bool pre_ln = true;                // transformer: x + f(norm(x)) (true) or norm(x + f(x)) (false)
  float dropout = 0.0f;              // mlp: after activations; LMs: embeddings, residuals, head input
  uint64_t seed = 0;
};

class Model : public Module {
 public:
  // Image models: [N, C, H, W] (input_shape) -> logits [N, num_classes].
  // Language models throw and point to forward_ids.
  Tensor forward(const Tensor& x) override;
  // Language models: ids [B, T] (values < vocab_size) -> logits [B, T, vocab_size].
  // Image models throw.
  virtual Tensor forward_ids(const std::vector<int32_t>& ids, const Shape& ids_shape);
  virtual bool is_language_model() const { return false; }

  const ModelOptions& options() const { return options_; }
  int64_t num_parameters() const;
  // The stream for initialisation and dropout; save and restore its state to resume a run.
  Generator& generator() { return gen_; }

 protected:
  explicit Model(const ModelOptions& options) : options_(options), gen_(options.seed) {}
  // Image models: throws nl::Error naming the model unless x is [N, input_shape...].
  void check_image_input(const Tensor& x) const;
  ModelOptions options_;
  Generator gen_;
};

// An image model that is a plain list of layers, with children "0", "1", ... like the
// reference's nn.Sequential (mlp and cnn are built as this).
class SequentialModel : public Model {
 public:
  SequentialModel(const ModelOptions& options, std::string title);
  void append(std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return title_; }

 private:
  std::string title_;
  std::vector<std::shared_ptr<Module>> layers_;
};

// Builds a model by name; throws nl::Error for an unknown name (listing the valid ones),
// invalid options, or a norm the model cannot use (e.g. gn in an LSTM).
std::shared_ptr<Model> make_model(const ModelOptions& options, const NormOptions& norm);
std::vector<std::string> model_names();

// Adds (or replaces) a model name, so a program can register its own models.
using ModelBuilder = std::function<std::shared_ptr<Model>(const ModelOptions&, const NormOptions&)>;
void register_model(const std::string& name, ModelBuilder builder);

// The builders behind the names (defined in mlp.cpp, cnn.cpp, resnet.cpp, char_lm.cpp).
std::shared_ptr<Model> make_mlp(const ModelOptions& options, const NormOptions& norm);
std::shared_ptr<Model> make_cnn(const ModelOptions& options, const NormOptions& norm);
std::shared_ptr<Model> make_resnet20(const ModelOptions& options, const NormOptions& norm);
std::shared_ptr<Model> make_char_lstm(const ModelOptions& options, const NormOptions& norm);
std::shared_ptr<Model> make_char_gru(const ModelOptions& options, const NormOptions& norm);
std::shared_ptr<Model> make_char_transformer(const ModelOptions& options, const NormOptions& norm);

// True when a norm layer follows each weight layer for this method, i.e. a bias there
// would be cancelled by the mean subtraction (or duplicated by the norm's own shift).
bool norm_follows_weights(const NormOptions& norm);

}  // namespace nl
