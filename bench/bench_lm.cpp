// normlab bench: training throughput (tokens/s) of the character language models of
// scripts/torch_models.py (timed by scripts/bench_torch.py lm) -- the Transformer (2 pre-norm blocks, d 128, 4 heads;
// AdamW lr 3e-4, weight decay 0.01 as torch.optim.AdamW's default) and the LSTM (emb 128,
// hidden 256; Adam lr 2e-3) -- plus the GRU and the cell-norm variants, at batch 16 x seq 64.
//
//   normlab_bench lm [--threads N] [--budget S] [--repeats R] [--only transformer,lstm,gru,variants]
//
// One step = zero_grad -> forward -> cross-entropy (mean over B*T) -> backward -> optimizer
// step, on synthetic ids made once, exactly as the PyTorch script. Each configuration gets
// 3 warm-up steps, then steps until `budget` seconds passed (8..60); the cell is the median
// step time. Whole sweeps are repeated (interleaving the models) and the median over sweeps
// is printed, so a slow spell of the shared machine lands in one sweep only.
// Rows whose name matches the PyTorch script's are joined by scripts/bench_lm_vs_torch.sh.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "layers/models/model.hpp"
#include "optim/optimizer.hpp"

namespace {

struct LmRow {
  std::string title, model, norm, group;
  bool adamw;
};

// Median seconds per training step of one freshly built model.
double step_seconds(const LmRow& r, double budget, int64_t B, int64_t T, int64_t V, int64_t* nparams) {
  nl::ModelOptions mo;
  mo.name = r.model;
  mo.vocab_size = V;
  mo.context = T;
  nl::NormOptions no;
  no.name = r.norm;
  auto model = nl::make_model(mo, no);
  model->train();
  *nparams = model->num_parameters();
  nl::AdamOptions ao;
  ao.lr = r.adamw ? 3e-4f : 2e-3f;
  ao.decoupled_weight_decay = r.adamw;
  nl::ParamGroup g{model->parameters(), r.adamw ? 0.01f : 0.0f};
  nl::Adam opt({g}, ao);
  nl::Generator gen(0);
  std::vector<int32_t> ids(B * T), targets(B * T);
  for (auto& v : ids) v = static_cast<int32_t>(gen.below(V));
  for (auto& v : targets) v = static_cast<int32_t>(gen.below(V));
  auto step = [&] {
    opt.zero_grad();
    nl::Tensor logits = model->forward_ids(ids, {B, T});
    nl::Tensor loss = nl::cross_entropy(logits.view({B * T, V}), targets);
    loss.backward();
    opt.step();
  };
  return nl::bench::median_step_seconds(step, budget);
}

}  // namespace

NL_BENCH_SUITE(lm, "char Transformer / LSTM / GRU training tokens/s at batch 16 x seq 64 (torch_train_bench.py's models)") {
  double budget = 2.0;
  int repeats = 1;
  std::set<std::string> only{"transformer", "lstm", "gru", "variants"};
  int threads = nl::num_threads();
  CLI::App cli{"sequence-model training tokens/s", "normlab_bench lm"};
  nl::bench::add_threads_option(cli, threads);
  cli.add_option("--budget", budget, "seconds per row")->capture_default_str();
  cli.add_option("--repeats", repeats)->capture_default_str()->check(nl::bench::kPositive);
  cli.add_option("--only", only, "comma-separated rows")
      ->delimiter(',')
      ->check(CLI::IsMember({"transformer", "lstm", "gru", "variants"}));
  nl::bench::parse_args(cli, args);
  const int64_t B = 16, T = 64, V = 65;
  // Titles of the first three rows are the PyTorch script's (the join key of the ratio script).
  const std::vector<LmRow> all{
      {"Transformer 2L d128 h4, pre-LayerNorm", "transformer", "ln", "transformer", true},
      {"Transformer 2L d128 h4, pre-RMSNorm (composite)", "transformer", "rms", "transformer", true},
      {"LSTM 1L h256 (emb 128)", "lstm", "none", "lstm", false},
      {"GRU 1L h256 (emb 128)", "gru", "none", "gru", false},
      {"normlab: LSTM h256, cell norm ln", "lstm", "ln", "variants", false},
      {"normlab: LSTM h256, cell norm bn", "lstm", "bn", "variants", false},
      {"normlab: GRU h256, cell norm ln", "gru", "ln", "variants", false},
  };
  std::vector<LmRow> rows;
  for (const auto& r : all)
    if (only.count(r.group)) rows.push_back(r);
  std::map<std::string, std::vector<double>> times;
  std::map<std::string, int64_t> nparams;
  for (int rep = 0; rep < repeats; ++rep)
    for (const auto& r : rows) times[r.title].push_back(step_seconds(r, budget, B, T, V, &nparams[r.title]));
  std::printf("== sequence models: tokens/s (batch %lld x seq %lld = %lld tokens per step), threads %d, "
              "median over %d sweep(s) ==\n",
              static_cast<long long>(B), static_cast<long long>(T), static_cast<long long>(B * T), nl::num_threads(),
              repeats);
  std::printf("%-48s %9s %8s %16s %8s\n", "model", "tokens/s", "step ms", "tokens/s range", "params");
  for (const auto& r : rows) {
    const auto& ts = times[r.title];
    const double t = nl::bench::median(ts);
    const double lo = *std::max_element(ts.begin(), ts.end()), hi = *std::min_element(ts.begin(), ts.end());
    char range[64];
    std::snprintf(range, sizeof range, "%.0f..%.0f", B * T / lo, B * T / hi);
    std::printf("%-48s %9.0f %8.2f %16s %8lld\n", r.title.c_str(), B * T / t, t * 1e3, range,
                static_cast<long long>(nparams[r.title]));
  }
  std::fflush(stdout);
}

// The GEMM shapes of these models, OpenBLAS on 1 thread vs all threads (interleaved, best of
// several batches each): the data behind the size threshold of core/ops_matmul.cpp's policy.
NL_BENCH_SUITE(lm_gemm,
               "sgemm shapes of the sequence models (and the CNNs' few-row products): OpenBLAS vs nl::gemm_raw, 1 thread and all") {
  int threads = nl::num_threads();
  CLI::App cli{"sgemm shapes of the sequence models", "normlab_bench lm_gemm"};
  nl::bench::add_threads_option(cli, threads, "the 'all threads' side");
  nl::bench::parse_args(cli, args);
  const int all = nl::num_threads();
  struct G { const char* what; int64_t m, n, k; };
  const std::vector<G> shapes{{"lstm step h W_hh^T", 16, 1024, 256}, {"lstm step dG W_hh", 16, 256, 1024},
                              {"lstm x W_ih^T", 1024, 1024, 128},     {"lstm dW_hh", 1024, 256, 1024},
                              {"tf qkv", 1024, 384, 128},             {"tf proj", 1024, 128, 128},
                              {"tf fc1", 1024, 512, 128},             {"tf fc2", 1024, 128, 512},
                              {"tf attn P V (1 head)", 64, 32, 64},   {"head", 1024, 65, 128},
                              {"lstm head", 1024, 65, 256},
                              // the CNNs' few-row products: fc dX = dY W at batch 2 / 32, and the forward
                              // W col of ResNet-20's stride-2 convs (im2col; one image)
                              {"cifar fc dX, batch 2", 2, 2048, 128}, {"mnist fc dX, batch 2", 2, 3136, 128},
                              {"cifar fc dX, batch 32", 32, 2048, 128}, {"resnet s2 conv 16->32", 32, 256, 144},
                              {"resnet s2 conv 32->64", 64, 64, 288}};
  // Both operands untransposed, as the recurrent steps and attention's P V read them.
  // "blas" = one cblas_sgemm (on all threads: OpenBLAS threads it itself). "normlab" =
  // nl::gemm_raw: few-row products (m <= 64) by its own kernel without packing
  // (core/kernels/gemm_few_rows.hpp); on more threads, one part per thread once each has 2^21
  // multiply-adds (threads spinning; 2^24 when they sleep), smaller ones on one thread
  // (core/ops_matmul.cpp). Ratios: OpenBLAS time / normlab time at the same thread count.
  std::printf("%-22s %6s %6s %6s %11s %11s %11s %11s %7s %7s\n", "shape", "m", "n", "k", "blas 1t us",
              "normlab 1t", "blas all us", "normlab all", "1t x", "all x");
  for (const auto& s : shapes) {
    nl::Generator gen(0);
    nl::Tensor a = nl::randn({s.m, s.k}, gen), b = nl::randn({s.k, s.n}, gen), c = nl::Tensor::empty({s.m, s.n});
    auto blas = [&] { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s.m, (int)s.n, (int)s.k, 1.0f, a.data(),
                                  (int)s.k, b.data(), (int)s.n, 0.0f, c.data(), (int)s.n); };
    auto ours = [&] { nl::gemm_raw(false, false, s.m, s.n, s.k, a.data(), s.k, b.data(), s.n, 0.0f, c.data(), s.n); };
    double blas1 = 1e9, ours1 = 1e9, blas_all = 1e9, ours_all = 1e9;
    for (int rep = 0; rep < 5; ++rep) {  // alternated, best of 5: the machine's speed drifts
      nl::set_num_threads(1);
      blas1 = std::min(blas1, nl::bench::seconds_per_call(blas, 0.02));
      ours1 = std::min(ours1, nl::bench::seconds_per_call(ours, 0.02));
      nl::set_num_threads(all);
      blas_all = std::min(blas_all, nl::bench::seconds_per_call(blas, 0.02));
      ours_all = std::min(ours_all, nl::bench::seconds_per_call(ours, 0.02));
    }
    std::printf("%-22s %6lld %6lld %6lld %11.1f %11.1f %11.1f %11.1f %7.2f %7.2f\n", s.what, (long long)s.m,
                (long long)s.n, (long long)s.k, blas1 * 1e6, ours1 * 1e6, blas_all * 1e6, ours_all * 1e6,
                blas1 / ours1, blas_all / ours_all);
  }
}
