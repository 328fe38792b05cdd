// Tests of `normlab train --diagnostics` (apps/train_diagnostics): diagnostics.csv has every
// promised row for every norm layer at every logged step; off, there is no file and the run
// is bit-identical (metrics.csv apart from seconds, the weights); a resumed run's file
// matches an uninterrupted one's; --diagnostics-every alone is a usage error.
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
                                       "bn_mean_shift", "bn_var_ratio", "saturated_fraction", "grad_norm_weight"};
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
  for (const char* f : {"norm_inputs_bn-b16-sb4-s0.svg", "norm_inputs_bn-b16-sb16-s0.svg", "norm_inputs_gn-b16-s0.svg",
                        "bn_stat_noise.svg"}) {
    INFO(f);
    CHECK(fs::exists(out / f));
  }
  std::ifstream md(out / "report.md");
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  CHECK(text.find("bn_stat_noise.svg") != std::string::npos);
  std::ifstream svg(out / "bn_stat_noise.svg");
  const std::string noise((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  CHECK(noise.find("bn: |mu_B - mu| / sigma") != std::string::npos);
  CHECK(noise.find("gn:") == std::string::npos);  // GroupNorm keeps no batch statistics
}
