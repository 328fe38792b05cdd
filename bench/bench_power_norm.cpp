// normlab bench: how far PowerNorm's approximate backward (the official one) is from the exact
// gradient, measured while a character Transformer with --norm pn trains.
//
//   normlab_bench powernorm [--data-dir DIR] [--steps 300] [--warmup 150] [--every 50] [--threads 1]
//
// The model trains with the approximate backward (AdamW lr 1e-3, batch 16, context 64, 2 Pre-PN
// blocks of d_model 64; tinyshakespeare from --data-dir, else a synthetic text). At step 1, at
// every --every steps and around the end of the warm-up, the step is taken twice from the same
// state: once with backward = exact (then every PowerNorm buffer is restored), once with
// backward = approximate (the step that is kept). The row compares the two gradients of all
// parameters: |g_approx - g_exact| / |g_exact| and their cosine; the same for the gradient of
// the PowerNorm layers' own parameters. Both gradients start from the same forward pass
// (no dropout), so the difference is the backward's alone.
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/bench_util.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "data/registry.hpp"
#include "layers/models/model.hpp"
#include "layers/norm/power_norm.hpp"
#include "optim/optimizer.hpp"

namespace {

using nl::Tensor;
using nl::bench::fmt_num;
using nl::bench::print_row;

void find_power_norms(nl::Module& m, std::vector<nl::PowerNorm*>& out) {
  if (auto* pn = dynamic_cast<nl::PowerNorm*>(&m)) out.push_back(pn);
  for (auto& [name, child] : m.named_children()) find_power_norms(*child, out);
}

struct Compare {
  double rel = 0.0, cosine = 0.0;
};
Compare compare(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& e) {
  double dd = 0, ee = 0, aa = 0, ae = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j) {
      const double x = a[i][j], y = e[i][j];
      dd += (x - y) * (x - y), ee += y * y, aa += x * x, ae += x * y;
    }
  return {std::sqrt(dd / ee), ae / std::sqrt(aa * ee)};
}

}  // namespace

NL_BENCH_SUITE(powernorm, "PowerNorm: the official approximate backward against the exact gradient while training") {
  std::string data_dir;
  int64_t steps = 300, warmup = 150, every = 50;
  int threads = 1;
  CLI::App cli{"PowerNorm's approximate backward against the exact gradient", "normlab_bench powernorm"};
  cli.add_option("--data-dir", data_dir, "where tinyshakespeare is (else synthetic text)");
  cli.add_option("--steps", steps)->capture_default_str()->check(nl::bench::kPositive);
  cli.add_option("--warmup", warmup, "PowerNorm warm-up steps")->capture_default_str()->check(nl::bench::kNonNegative);
  cli.add_option("--every", every, "compare the gradients every this many steps")
      ->capture_default_str()
      ->check(nl::bench::kPositive);
  nl::bench::add_threads_option(cli, threads);
  nl::bench::parse_args(cli, args);
  nl::data::TextCorpus corpus = [&] {
    try {
      return nl::data::load_text_dataset("tinyshakespeare", data_dir);
    } catch (const std::exception& e) {
      std::printf("# %s\n# (a synthetic text instead)\n", e.what());
      std::string text;
      nl::Generator g(1);
      for (int i = 0; i < 20000; ++i) text += "the norm of a token "[g.below(20)];
      return nl::data::TextCorpus::from_string(text, "synthetic");
    }
  }();
  const int64_t B = 16, T = 64;
  nl::ModelOptions mo;
  mo.name = "transformer";
  mo.vocab_size = corpus.vocab_size();
  mo.context = T;
  mo.d_model = 64;
  mo.heads = 4;
  mo.layers = 2;
  nl::NormOptions no;
  no.name = "pn";
  no.pn_warmup_steps = warmup;
  auto model = nl::make_model(mo, no);
  model->train();
  std::vector<nl::PowerNorm*> pns;
  find_power_norms(*model, pns);
  nl::AdamOptions ao;
  ao.lr = 1e-3f;
  ao.decoupled_weight_decay = true;
  nl::Adam opt({nl::ParamGroup{model->parameters(), 0.01f}}, ao);
  const auto params = model->named_parameters();
  nl::Generator gen(0);

  auto loss_of = [&](const nl::data::TextBatch& b) {
    Tensor logits = model->forward_ids(b.inputs, {B, T});
    return nl::cross_entropy(logits.view({B * T, mo.vocab_size}), b.targets);
  };
  auto grads = [&](bool pn_only) {
    std::vector<std::vector<float>> g;
    for (const auto& [name, p] : params) {
      const bool is_pn = name.find("norm") != std::string::npos;
      if (pn_only && !is_pn) continue;
      g.push_back(p.grad().defined() ? p.grad().to_vector() : std::vector<float>(p.numel(), 0.0f));
    }
    return g;
  };
  auto set_backward = [&](nl::PowerNormBackward b) {
    for (auto* pn : pns) pn->options.backward = b;
  };
  std::printf("# %s: %lld PowerNorm layers, warm-up %lld steps, %lld parameters, %d threads\n", corpus.name().c_str(),
              static_cast<long long>(pns.size()), static_cast<long long>(warmup),
              static_cast<long long>(model->num_parameters()), threads);
  print_row({"powernorm", "step", "phase", "loss", "rel_all", "cos_all", "rel_norms", "cos_norms"});
  for (int64_t step = 1; step <= steps; ++step) {
    const auto batch = corpus.sample_batch(nl::data::TextCorpus::Split::Train, B, T, gen);
    const bool measure = step == 1 || step % every == 0 || step == warmup || step == warmup + 1;
    std::vector<std::vector<float>> exact_all, exact_norms;
    if (measure) {
      std::vector<Tensor> saved;
      for (auto* pn : pns)
        for (const Tensor& t : {pn->running_phi, pn->ema_gz, pn->iters}) saved.push_back(t.clone());
      set_backward(nl::PowerNormBackward::exact);
      opt.zero_grad();
      loss_of(batch).backward();
      exact_all = grads(false);
      exact_norms = grads(true);
      size_t k = 0;
      for (auto* pn : pns)
        for (Tensor t : {pn->running_phi, pn->ema_gz, pn->iters}) t.copy_(saved[k++]);
      set_backward(nl::PowerNormBackward::approximate);
    }
    const bool in_warmup = pns.front()->in_warmup();
    opt.zero_grad();
    Tensor loss = loss_of(batch);
    loss.backward();
    if (measure) {
      const Compare all = compare(grads(false), exact_all), norms = compare(grads(true), exact_norms);
      print_row({"powernorm", std::to_string(step), in_warmup ? "warm-up" : "after", fmt_num(loss.item(), 3),
                 fmt_num(all.rel, 4), fmt_num(all.cosine, 4), fmt_num(norms.rel, 4), fmt_num(norms.cosine, 4)});
    }
    opt.step();
  }
}
