// normlab layers: Precise BatchNorm. See precise_bn.hpp.
#include "layers/norm/precise_bn.hpp"

#include "core/autograd.hpp"

namespace nl {

static void collect(Module& m, const std::string& prefix, std::vector<std::pair<std::string, BatchStatNorm*>>& out) {
  if (auto* bn = dynamic_cast<BatchStatNorm*>(&m)) out.emplace_back(prefix, bn);
  for (auto& [child_name, child] : m.named_children())
    collect(*child, prefix.empty() ? child_name : prefix + "." + child_name, out);
}

std::vector<std::pair<std::string, BatchStatNorm*>> find_batch_stat_norms(Module& model) {
  std::vector<std::pair<std::string, BatchStatNorm*>> out;
  collect(model, "", out);
  return out;
}

int64_t update_precise_bn_stats_custom(Module& model, const std::function<bool()>& run_one_batch,
                                       int64_t num_batches) {
  NL_CHECK(num_batches >= 1, "update_precise_bn_stats: num_batches must be >= 1, got ", num_batches);
  auto layers = find_batch_stat_norms(model);
  NL_CHECK(!layers.empty(), "update_precise_bn_stats: ", model.name(), " has no BatchNorm-family layer");
  const bool was_training = model.is_training();
  model.train(true);  // batch statistics, and the layers report them
  for (auto& [name, bn] : layers) bn->begin_precise_stats();
  int64_t used = 0;
  try {
    NoGradGuard no_grad;
    while (used < num_batches && run_one_batch()) ++used;
  } catch (...) {
    for (auto& [name, bn] : layers) bn->end_precise_stats();
    model.train(was_training);
    throw;
  }
  for (auto& [name, bn] : layers) bn->end_precise_stats();
  model.train(was_training);
  return used;
}

int64_t update_precise_bn_stats(Module& model, const std::function<Tensor()>& next_batch, int64_t num_batches) {
  return update_precise_bn_stats_custom(
      model,
      [&]() {
        Tensor x = next_batch();
        if (!x.defined()) return false;
        model.forward(x);
        return true;
      },
      num_batches);
}

}  // namespace nl
