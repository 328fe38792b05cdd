// normlab apps: saving and loading models and training checkpoints (safetensors files).
//
// model.safetensors holds every parameter and buffer (running statistics included) under
// the module's dotted names ("features.0.norm.running_mean"), plus metadata:
//   "normlab_version", "config" (the run's config.json as a string).
//
// train_state.safetensors, the training checkpoint, is everything needed to continue a run
// as if it never stopped:
//   "model.<name>"    parameters and buffers
//   "optim.<name>"    optimizer state (momentum / Adam moments), see Optimizer::state()
//   metadata "state"  JSON: step, epoch, batch (position in the epoch), optimizer steps,
//                     elapsed seconds, and every generator's full state (hex strings, so
//                     the 64-bit words and the cached Box-Muller float survive exactly).
// Both files are written through save_safetensors, i.e. to a temporary file that is renamed
// over the old one: a run killed while checkpointing still has its previous checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/random.hpp"
#include "layers/module.hpp"
#include "optim/optimizer.hpp"

namespace nl::app {

// Parameters then buffers, with their dotted names.
std::vector<std::pair<std::string, Tensor>> model_tensors(const Module& model);

void save_model(const std::string& path, const Module& model, const nlohmann::json& config);
// Copies the file's tensors into the model. Throws nl::Error naming the first missing,
// unexpected or wrongly shaped tensor (e.g. a run made with another --model or --norm).
void load_model(const std::string& path, Module& model);

struct TrainingPosition {
  int64_t step = 0;    // completed optimizer updates
  int64_t epoch = 0;   // current epoch (0-based)
  int64_t batch = 0;   // next batch index within the epoch
  double elapsed_seconds = 0.0;  // training time before this checkpoint
  std::map<std::string, Generator::State> generators;
  nlohmann::json extra = nlohmann::json::object();  // running sums the run wants back
};

void save_checkpoint(const std::string& path, const Module& model, Optimizer& optimizer,
                     const TrainingPosition& position);
// Restores model and optimizer in place; returns the position. Throws nl::Error on a
// checkpoint that does not match this model/optimizer.
TrainingPosition load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer);

nlohmann::json generator_state_to_json(const Generator::State& st);
Generator::State generator_state_from_json(const nlohmann::json& j);

}  // namespace nl::app
