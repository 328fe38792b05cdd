// normlab apps: `normlab sample --run DIR`, generate text with a trained character-level
// language model, one character at a time.
//
// Each new character is drawn from softmax(logits / temperature) of the last position,
// given the last `context` characters (the window the model was trained on). Temperature
// 1 samples the model's distribution, lower values sharpen it, 0 always takes the most
// likely character (greedy).
#include <cmath>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "apps/checkpoint.hpp"
#include "apps/commands.hpp"
#include "apps/run_common.hpp"
#include "apps/run_dir.hpp"
#include "core/autograd.hpp"
#include "core/parallel.hpp"
#include "data/registry.hpp"
#include "data/text_corpus.hpp"

namespace nl::app {

namespace {

struct SampleArgs {
  std::string run, prompt;
  int64_t length = 500;
  float temperature = 0.8f;
  uint64_t seed = 0;
  int threads = 1;
};

int run_sample(const SampleArgs& a) {
  const nlohmann::json saved = read_json(a.run + "/config.json");
  const TrainConfig cfg = config_from_json(saved);
  if (!data::is_text_dataset(cfg.dataset))
    throw UsageError(fmt::format("{} is a {} run on {}, not a character-level language model", a.run, cfg.model.name,
                                 cfg.dataset));
  set_num_threads(a.threads);
  // The vocabulary is stored in config.json, so sampling needs no access to the text file.
  const auto resolved = saved.value("resolved", nlohmann::json::object());
  NL_CHECK(resolved.contains("vocab"), a.run, "/config.json has no vocabulary (\"resolved\".\"vocab\")");
  const data::Vocabulary vocab(data::decode_utf8(resolved["vocab"].get<std::string>(), a.run + "/config.json"));
  auto model = build_model(cfg.model, cfg.norm);
  load_model(a.run + "/model.safetensors", *model);
  model->eval();

  std::string prompt = a.prompt;
  if (prompt.empty()) prompt = vocab.id_of(U'\n') >= 0 ? "\n" : data::encode_utf8({vocab.char_of(0)});
  std::vector<int32_t> ids;
  try {
    ids = vocab.encode(prompt);
  } catch (const Error& e) {
    throw UsageError(fmt::format("--prompt: {} (the model knows only the {} characters of its training text)",
                                 e.what(), vocab.size()));
  }
  std::fputs(prompt.c_str(), stdout);
  std::fflush(stdout);

  Generator gen(a.seed);
  NoGradGuard no_grad;
  const auto context = static_cast<size_t>(cfg.model.context);
  for (int64_t i = 0; i < a.length; ++i) {
    const size_t start = ids.size() > context ? ids.size() - context : 0;
    const std::vector<int32_t> window(ids.begin() + start, ids.end());
    const auto T = static_cast<int64_t>(window.size());
    const Tensor logits = model->forward_ids(window, {1, T}).contiguous();
    const int64_t V = logits.size(-1);
    const float* last = logits.data() + (T - 1) * V;
    int32_t next = 0;
    if (a.temperature <= 0.0f) {
      for (int32_t v = 1; v < V; ++v)
        if (last[v] > last[next]) next = v;
    } else {
      // Softmax in double with the max subtracted (no overflow), then invert the CDF.
      double mx = last[0];
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(last[v]));
      std::vector<double> p(V);
      double total = 0.0;
      for (int64_t v = 0; v < V; ++v) total += p[v] = std::exp((last[v] - mx) / a.temperature);
      double u = gen.uniform() * total;
      next = static_cast<int32_t>(V - 1);
      for (int64_t v = 0; v < V; ++v)
        if ((u -= p[v]) < 0.0) {
          next = static_cast<int32_t>(v);
          break;
        }
    }
    ids.push_back(next);
    std::fputs(vocab.decode({next}).c_str(), stdout);
    std::fflush(stdout);
  }
  std::fputs("\n", stdout);
  return 0;
}

}  // namespace

Command add_sample_command(CLI::App& app) {
  auto a = std::make_shared<SampleArgs>();
  CLI::App* s = app.add_subcommand("sample", "Generate text with a character-level language model run");
  s->option_defaults()->always_capture_default();
  s->add_option("--run", a->run, "run directory of a text:PATH training run")->required();
  s->add_option("--prompt", a->prompt, "text to start from (default: a newline)");
  s->add_option("--length", a->length, "characters to generate")->check(kNonNegative);
  s->add_option("--temperature", a->temperature, "softmax temperature (0 = greedy)")->check(kNonNegative);
  s->add_option("--seed", a->seed, "sampling seed");
  s->add_option("--threads", a->threads, "threads")->check(kAtLeastOne);
  return {s, [a]() { return run_sample(*a); }};
}

}  // namespace nl::app
