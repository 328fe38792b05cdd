// Tests of `normlab train --diagnostics` (apps/train_diagnostics): diagnostics.csv has every
// promised row for every norm layer at every logged step; off, there is no file and the run
// is bit-identical (metrics.csv apart from seconds, the weights); a resumed run's file
// matches an uninterrupted one's; --diagnostics-every alone is a usage error; Batch Renorm's
// clipping rows; --diagnostics-layers by path and index, its errors and warnings; the report's
// BRN clipping figure, gradient norm per layer and Pre-LN vs Post-LN figures.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/safetensors.hpp"
#include "tests/support/cli_runner.hpp"

namespace fs = std::filesystem;
using namespace nl::test;

namespace {

struct CsvRow {
  long step;
  std::string layer, quantity;
  double value;
};

std::vector<CsvRow> read_diagnostics(const fs::path& p) {
  const auto lines = read_lines(p);
  REQUIRE(!lines.empty());
  CHECK(lines[0] == "step,layer,quantity,value");
  std::vector<CsvRow> rows;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::stringstream ss(lines[i]);
    std::string step, layer, quantity, value;
    std::getline(ss, step, ',');
    std::getline(ss, layer, ',');
    std::getline(ss, quantity, ',');
    std::getline(ss, value, ',');
    rows.push_back({std::stol(step), layer, quantity, std::stod(value)});
  }
  return rows;
}

std::string without_seconds(const std::string& line) { return line.substr(0, line.rfind(',')); }

}  // namespace

// Names start with "diagnostics:", not "--": ctest passes the name to Catch2, which would read it as a flag.
TEST_CASE("diagnostics: --diagnostics writes every quantity for every norm layer at every logged step", "[app][diagnostics]") {
  const Run r = run_normlab(train_args("diag-on", "--model mlp --depth 2 --width 16 --activation sigmoid --norm bn "
                                                  "--steps 12 --batch-size 16 --log-every 4 --diagnostics "
                                                  "--diagnostics-every 4"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto rows = read_diagnostics(temp_root() / "diag-on" / "diagnostics.csv");
  std::map<long, std::map<std::string, std::set<std::string>>> seen;  // step -> layer -> quantities
  for (const auto& row : rows) {
    INFO(row.layer << " " << row.quantity);
    CHECK(std::isfinite(row.value));
    seen[row.step][row.layer].insert(row.quantity);
  }
  REQUIRE(seen.size() == 3);  // steps 4, 8, 12
  CHECK(seen.begin()->first == 4);
  CHECK(seen.rbegin()->first == 12);
  const std::set<std::string> expected{"input_p1",  "input_p15",  "input_p50",  "input_p85",  "input_p99",
                                       "output_p1", "output_p15", "output_p50", "output_p85", "output_p99",
                                       "bn_mean_shift", "bn_var_ratio", "saturated_fraction", "grad_norm_weight",
                                       "grad_norm_output", "grad_norm_input"};
  for (const auto& [step, layers] : seen) {
    INFO("step " << step);
    CHECK(layers.size() == 2);  // the MLP's two hidden BatchNorm1d layers
    for (const auto& [layer, quantities] : layers) {
      INFO("layer " << layer);
      CHECK(quantities == expected);
    }
  }
  for (const auto& row : rows) {
    if (row.quantity == "saturated_fraction") CHECK((row.value >= 0.0 && row.value <= 1.0));
    if (row.quantity == "bn_var_ratio") CHECK(row.value > 0.0);
  }
}

TEST_CASE("off: no diagnostics.csv, and on or off the run is bit-identical", "[app][diagnostics]") {
  const std::string common = "--model cnn --norm bn --steps 10 --batch-size 16 --log-every 2";
  REQUIRE(run_normlab(train_args("diag-off", common)).exit_code == 0);
  REQUIRE(run_normlab(train_args("diag-every", common + " --diagnostics --diagnostics-every 1")).exit_code == 0);
  CHECK_FALSE(fs::exists(temp_root() / "diag-off" / "diagnostics.csv"));
  REQUIRE(fs::exists(temp_root() / "diag-every" / "diagnostics.csv"));
  const auto a = read_lines(temp_root() / "diag-off" / "metrics.csv");
  const auto b = read_lines(temp_root() / "diag-every" / "metrics.csv");
  REQUIRE(a.size() == 6);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(without_seconds(a[i]) == without_seconds(b[i]));
  const nl::TensorFile wa = nl::load_safetensors((temp_root() / "diag-off" / "model.safetensors").string());
  const nl::TensorFile wb = nl::load_safetensors((temp_root() / "diag-every" / "model.safetensors").string());
  REQUIRE(wa.tensors.size() == wb.tensors.size());
  for (size_t i = 0; i < wa.tensors.size(); ++i) CHECK(wa.tensors[i].second.to_vector() == wb.tensors[i].second.to_vector());
}

TEST_CASE("a killed and resumed run writes the same diagnostics.csv as an uninterrupted one", "[app][diagnostics]") {
  const std::string common = "--model mlp --norm bn --steps 12 --batch-size 16 --checkpoint-every 4 --log-every 2 "
                             "--diagnostics";
  REQUIRE(run_normlab(train_args("diag-whole", common)).exit_code == 0);
  CHECK(run_normlab(train_args("diag-killed", common + " --simulate-kill-at-step 7")).exit_code == 137);
  const Run resumed = run_normlab("train --resume " + (temp_root() / "diag-killed").string());
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  CHECK(read_lines(temp_root() / "diag-whole" / "diagnostics.csv") ==
        read_lines(temp_root() / "diag-killed" / "diagnostics.csv"));
}

TEST_CASE("diagnostics: --diagnostics-every needs --diagnostics", "[app][diagnostics]") {
  const Run r = run_normlab(train_args("diag-bad", "--model mlp --steps 2 --diagnostics-every 2"));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--diagnostics") != std::string::npos);
}

TEST_CASE("report draws the norm inputs and the BN statistics noise of a sweep run with --diagnostics",
          "[app][diagnostics][report]") {
  const fs::path out = temp_root() / "diag-sweep";
  const Run sweep = run_normlab("sweep --model mlp --dataset mnist --data-dir " + data_dir() +
                                " --norms bn,gn --groups 4 --batch-sizes 16 --stat-batch-sizes 4,16 --steps 12 "
                                "--jobs 1 --threads 1 --no-eval-modes --diagnostics --diagnostics-every 3 --out " +
                                out.string());
  INFO(sweep.err);
  REQUIRE(sweep.exit_code == 0);
  REQUIRE(fs::exists(out / "bn-b16-sb4-s0" / "diagnostics.csv"));
  const Run report = run_normlab("report " + out.string());
  INFO(report.err);
  REQUIRE(report.exit_code == 0);
  for (const char* f : {"norm_outputs_bn-b16-sb4-s0.svg", "norm_outputs_bn-b16-sb16-s0.svg", "norm_outputs_gn-b16-s0.svg",
                        "bn_stat_noise.svg"}) {
    INFO(f);
    CHECK(fs::exists(out / f));
  }
  {
    // A learning curve's band is one shaded polygon, without an error bar per logged step (stripes).
    std::ifstream curve(out / "norm_outputs_bn-b16-sb4-s0.svg");
    const std::string svg_text((std::istreambuf_iterator<char>(curve)), std::istreambuf_iterator<char>());
    CHECK(svg_text.find("<polygon") != std::string::npos);
    CHECK(svg_text.find("class=\"band\"") == std::string::npos);
  }
  std::ifstream md(out / "report.md");
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  CHECK(text.find("bn_stat_noise.svg") != std::string::npos);
  std::ifstream svg(out / "bn_stat_noise.svg");
  const std::string noise((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  CHECK(noise.find("bn: |mu_B - mu| / sigma") != std::string::npos);
  CHECK(noise.find("gn:") == std::string::npos);  // GroupNorm keeps no batch statistics

  // Committed results keep diagnostics.csv, thinned to whole logged steps (first and last
  // kept), so the report draws the same figures from them on another machine.
  const fs::path committed = temp_root() / "diag-results";
  const Run ex = run_normlab("export-results " + out.string() + " " + committed.string() + " --max-diagnostic-steps 2");
  INFO(ex.err);
  REQUIRE(ex.exit_code == 0);
  const auto full = read_diagnostics(out / "bn-b16-sb4-s0" / "diagnostics.csv");
  const auto thin = read_diagnostics(committed / "bn-b16-sb4-s0" / "diagnostics.csv");
  REQUIRE(!full.empty());
  std::set<long> full_steps, thin_steps;
  for (const auto& r : full) full_steps.insert(r.step);
  for (const auto& r : thin) thin_steps.insert(r.step);
  REQUIRE(full_steps.size() > 2);
  const std::set<long> first_and_last = {full.front().step, full.back().step};
  CHECK(thin_steps == first_and_last);
  size_t rows_of_kept = 0;
  for (const auto& r : full) rows_of_kept += first_and_last.count(r.step);
  CHECK(thin.size() == rows_of_kept);  // every row of a kept step
  const fs::path elsewhere = temp_root() / "diag-report-elsewhere";
  const Run from_results = run_normlab("report " + elsewhere.string() + " --results " + committed.string());
  INFO(from_results.err);
  REQUIRE(from_results.exit_code == 0);
  for (const char* f : {"norm_outputs_bn-b16-sb4-s0.svg", "bn_stat_noise.svg"}) {
    INFO(f);
    CHECK(fs::exists(elsewhere / f));
  }
}

TEST_CASE("diagnostics: Batch Renorm's clipping fractions, every logged step, report figure", "[app][diagnostics][report]") {
  const fs::path out = temp_root() / "diag-brn";
  const Run sweep = run_normlab("sweep --model mlp --dataset mnist --data-dir " + data_dir() +
                                " --norms brn --batch-sizes 16 --steps 8 --jobs 1 --threads 1 --no-eval-modes "
                                "--renorm-warmup 4 --diagnostics --diagnostics-every 1 --out " + out.string());
  INFO(sweep.err);
  REQUIRE(sweep.exit_code == 0);
  const auto rows = read_diagnostics(out / "brn-b16-s0" / "diagnostics.csv");
  std::map<long, std::vector<double>> clip;  // step -> per layer
  for (const auto& r : rows)
    if (r.quantity == "brn_clip_fraction") clip[r.step].push_back(r.value);
  REQUIRE(clip.size() == 8);
  for (const auto& [step, values] : clip) {
    INFO("step " << step);
    CHECK(values.size() == 3);  // the MLP's three hidden Batch Renorm layers
    for (double v : values) CHECK((v >= 0.0 && v <= 1.0));
  }
  // Step 1 of the warm-up: r_max = 1, d_max = 0, so every channel's r and d are clipped (plain BN).
  for (double v : clip[1]) CHECK(v == 1.0);
  const Run report = run_normlab("report " + out.string());
  INFO(report.err);
  REQUIRE(report.exit_code == 0);
  CHECK(fs::exists(out / "brn_clipping.svg"));
  CHECK(fs::exists(out / "grad_norm_layers_brn-b16-s0.svg"));
}

TEST_CASE("diagnostics: --diagnostics-layers keeps the named or numbered norm layers", "[app][diagnostics]") {
  const std::string common = "--model mlp --depth 3 --width 16 --norm bn --steps 4 --batch-size 16 --log-every 2 "
                             "--diagnostics";
  const Run by_index = run_normlab(train_args("diag-idx", common + " --diagnostics-layers 0,2"));
  INFO(by_index.err);
  REQUIRE(by_index.exit_code == 0);
  std::set<std::string> layers;
  for (const auto& r : read_diagnostics(temp_root() / "diag-idx" / "diagnostics.csv")) layers.insert(r.layer);
  REQUIRE(layers.size() == 2);
  const std::string first = *layers.begin();
  const Run by_path = run_normlab(train_args("diag-path", common + " --diagnostics-layers " + first));
  INFO(by_path.err);
  REQUIRE(by_path.exit_code == 0);
  std::set<std::string> one;
  for (const auto& r : read_diagnostics(temp_root() / "diag-path" / "diagnostics.csv")) one.insert(r.layer);
  CHECK(one == std::set<std::string>{first});

  const Run not_a_layer = run_normlab(train_args("diag-bad-layer", common + " --diagnostics-layers nosuch.layer"));
  CHECK(not_a_layer.exit_code == 2);
  CHECK(not_a_layer.err.find("--diagnostics-layers") != std::string::npos);
  CHECK(not_a_layer.err.find("nosuch.layer") != std::string::npos);
  // An index past the last norm layer: known only once the layers ran, a warning listing them.
  const Run too_far = run_normlab(train_args("diag-far", common + " --diagnostics-layers 7"));
  INFO(too_far.err);
  CHECK(too_far.exit_code == 0);
  CHECK(too_far.err.find("--diagnostics-layers 7 matched no norm layer") != std::string::npos);
  CHECK(too_far.err.find("2 = ") != std::string::npos);
  const Run alone = run_normlab(train_args("diag-alone", "--model mlp --steps 2 --diagnostics-layers 0"));
  CHECK(alone.exit_code == 2);
}

TEST_CASE("diagnostics: report draws gradient norms per layer, Pre-LN against Post-LN", "[app][diagnostics][report]") {
  // The preset reads tinyshakespeare from --data-dir: a small stand-in corpus.
  const fs::path data = temp_root() / "diag-text-data";
  fs::create_directories(data / "tinyshakespeare");
  {
    std::ofstream f(data / "tinyshakespeare" / "input.txt");
    for (int i = 0; i < 200; ++i) f << "the norm of the gradient at layer " << i % 7 << ".\n";
  }
  const fs::path out = temp_root() / "diag-ln";
  const Run sweep = run_normlab("sweep --preset transformer-norms --data-dir " + data.string() +
                                " --steps 3 --d-model 16 --heads 2 --layers 2 --context 16 --val-batches 1 --jobs 1 "
                                "--threads 1 --diagnostics --diagnostics-every 1 --out " + out.string());
  INFO(sweep.err);
  REQUIRE(sweep.exit_code == 0);
  const auto rows = read_diagnostics(out / "post-ln-b16-s0" / "diagnostics.csv");
  std::set<std::string> layers;
  for (const auto& r : rows)
    if (r.step == 1 && r.quantity == "grad_norm_input") {
      layers.insert(r.layer);
      CHECK(r.value > 0.0);
    }
  CHECK(layers.size() >= 4);  // 2 blocks x 2 norms (+ the final norm)
  const Run report = run_normlab("report " + out.string());
  INFO(report.err);
  REQUIRE(report.exit_code == 0);
  REQUIRE(fs::exists(out / "grad_norm_pre_post_ln.svg"));
  std::ifstream svg(out / "grad_norm_pre_post_ln.svg");
  const std::string text_svg((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  CHECK(text_svg.find("pre-ln") != std::string::npos);
  CHECK(text_svg.find("post-ln") != std::string::npos);
  CHECK(fs::exists(out / "grad_norm_layers_pre-ln-b16-s0.svg"));
}
