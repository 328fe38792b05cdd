// normlab apps: model files and training checkpoints. See checkpoint.hpp for the layout.
#include "apps/checkpoint.hpp"

#include <cstring>
#include <set>

#include <fmt/format.h>

#include "core/safetensors.hpp"

namespace nl::app {

std::vector<std::pair<std::string, Tensor>> model_tensors(const Module& model) {
  auto tensors = model.named_parameters();
  for (auto& b : model.named_buffers()) tensors.push_back(b);
  return tensors;
}

// Copy `tensors` (name -> value, with `prefix` in front of the model's names) into the model.
static void restore_model(const TensorFile& file, const std::string& prefix, Module& model) {
  std::set<std::string> expected;
  for (auto& [name, t] : model_tensors(model)) {
    const std::string key = prefix + name;
    expected.insert(key);
    NL_CHECK(file.contains(key), "'", file.path, "' has no tensor '", key,
             "': it was saved from a different model or norm (check --model/--norm)");
    const Tensor& src = file.get(key);
    NL_CHECK(src.shape() == t.shape(), "'", file.path, "': tensor '", key, "' has shape ", src.shape(),
             " but the model expects ", t.shape());
    t.copy_(src);
  }
  for (auto& [key, t] : file.tensors)
    if (key.rfind(prefix, 0) == 0)
      NL_CHECK(expected.count(key), "'", file.path, "' has a tensor '", key,
               "' that this model does not have: it was saved from a different model or norm");
}

void save_model(const std::string& path, const Module& model, const nlohmann::json& config) {
  save_safetensors(path, model_tensors(model), {{"normlab_version", NORMLAB_VERSION}, {"config", config.dump()}});
}

void load_model(const std::string& path, Module& model) { restore_model(load_safetensors(path), "", model); }

// Generator state as exact hex: JSON numbers are doubles and would round 64-bit words.
nlohmann::json generator_state_to_json(const Generator::State& st) {
  uint32_t spare_bits;
  std::memcpy(&spare_bits, &st.spare, sizeof spare_bits);
  return {{"s", {fmt::format("{:016x}", st.s[0]), fmt::format("{:016x}", st.s[1]), fmt::format("{:016x}", st.s[2]),
                 fmt::format("{:016x}", st.s[3])}},
          {"has_spare", st.has_spare},
          {"spare_bits", fmt::format("{:08x}", spare_bits)}};
}

Generator::State generator_state_from_json(const nlohmann::json& j) {
  Generator::State st{};
  for (int i = 0; i < 4; ++i) st.s[i] = std::stoull(j.at("s").at(i).get<std::string>(), nullptr, 16);
  st.has_spare = j.at("has_spare").get<bool>();
  const auto spare_bits = static_cast<uint32_t>(std::stoul(j.at("spare_bits").get<std::string>(), nullptr, 16));
  std::memcpy(&st.spare, &spare_bits, sizeof st.spare);
  return st;
}

void save_checkpoint(const std::string& path, const Module& model, Optimizer& optimizer,
                     const TrainingPosition& pos) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : model_tensors(model)) tensors.emplace_back("model." + name, t);
  for (auto& [name, t] : optimizer.state()) tensors.emplace_back("optim." + name, t);
  nlohmann::json state = {{"step", pos.step},
                          {"epoch", pos.epoch},
                          {"batch", pos.batch},
                          {"optimizer_steps", optimizer.steps()},
                          {"elapsed_seconds", pos.elapsed_seconds},
                          {"extra", pos.extra}};
  for (auto& [name, st] : pos.generators) state["generators"][name] = generator_state_to_json(st);
  save_safetensors(path, tensors, {{"normlab_version", NORMLAB_VERSION}, {"state", state.dump()}});
}

TrainingPosition load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer) {
  const TensorFile file = load_safetensors(path);
  restore_model(file, "model.", model);
  for (auto& [name, t] : optimizer.state()) {
    const std::string key = "optim." + name;
    NL_CHECK(file.contains(key), "'", path, "' has no optimizer state '", key,
             "': it was written by a different optimizer (check --optimizer)");
    const Tensor& src = file.get(key);
    NL_CHECK(src.shape() == t.shape(), "'", path, "': optimizer state '", key, "' has the wrong shape");
    t.copy_(src);
  }
  TrainingPosition pos;
  try {
    const auto state = nlohmann::json::parse(file.meta("state"));
    pos.step = state.at("step").get<int64_t>();
    pos.epoch = state.at("epoch").get<int64_t>();
    pos.batch = state.at("batch").get<int64_t>();
    pos.elapsed_seconds = state.at("elapsed_seconds").get<double>();
    optimizer.set_steps(state.at("optimizer_steps").get<int64_t>());
    if (state.contains("extra")) pos.extra = state["extra"];
    if (state.contains("generators"))
      for (auto& [name, g] : state["generators"].items()) pos.generators[name] = generator_state_from_json(g);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}': the training state in its metadata is malformed: {}", path, e.what()));
  }
  return pos;
}

}  // namespace nl::app
