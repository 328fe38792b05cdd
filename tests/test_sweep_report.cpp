// End-to-end tests of `normlab sweep` and `normlab report` on the tiny synthetic IDX dataset
// (tests/support/cli_runner.hpp): one run per (norm, batch size, seed), learning rates scaled
// with the batch size, resumability (finished runs are never touched again, interrupted ones
// restart), diverged runs recorded while the sweep goes on, the report's tables, figures and HTML,
// statistics batch as an axis, and committed compact results (export-results, --results).
#include <catch2/catch.hpp>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/cli_runner.hpp"

using namespace nl::test;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// bn and gn at batch 4 and 16, 12 steps each: a complete small sweep, made once per process.
const fs::path& finished_sweep() {
  static const fs::path dir = [] {
    const fs::path out = temp_root() / "sweep";
    const Run r = run_normlab("sweep --model mlp --dataset mnist --data-dir " + data_dir() +
                              " --norms bn,gn --groups 4 --batch-sizes 4,16 --steps 12 --base-lr 0.32 --base-batch 32 "
                              "--jobs 2 --threads 1 --no-eval-modes --out " + out.string());
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return out;
  }();
  return dir;
}

}  // namespace

TEST_CASE("sweep runs every (norm, batch size) and scales the learning rate linearly", "[sweep]") {
  const fs::path dir = finished_sweep();
  for (const char* name : {"bn-b4-s0", "bn-b16-s0", "gn-b4-s0", "gn-b16-s0"}) {
    INFO(name);
    const auto summary = read_json_file(dir / name / "summary.json");
    CHECK(summary["status"] == "ok");
    CHECK(summary["steps"] == 12);
  }
  // lr = base_lr * B / base_batch = 0.32 * 4 / 32 and 0.32 * 16 / 32
  CHECK(read_json_file(dir / "bn-b4-s0" / "config.json")["lr"].get<double>() == Approx(0.04));
  CHECK(read_json_file(dir / "gn-b16-s0" / "config.json")["lr"].get<double>() == Approx(0.16));
  // Two runs at once would each see the other idle as they start: the sweep pins them to
  // passive (core/runtime_env.hpp), unless the user chose a policy.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT"))
    CHECK(read_json_file(dir / "bn-b4-s0" / "config.json")["resolved"]["omp_wait_policy"] ==
          "passive (set by normlab: a sweep running 2 jobs at once)");
  const auto rows = read_lines(dir / "results.csv");
  REQUIRE(rows.size() == 5);  // header + 4 runs
  CHECK(rows[0].rfind("variant,batch_size,seed,lr,status,test_accuracy", 0) == 0);
  for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i].find(",\"ok\",") != std::string::npos);
}

TEST_CASE("running a sweep again skips finished runs and restarts an interrupted one", "[sweep]") {
  const fs::path dir = finished_sweep();
  const std::string kept_before = slurp(dir / "bn-b4-s0" / "summary.json");
  // Simulate a run killed before its first checkpoint.
  fs::remove(dir / "gn-b16-s0" / "train_state.safetensors");
  {
    std::ofstream(dir / "gn-b16-s0" / "summary.json") << "{\"status\": \"interrupted\"}";
  }
  const Run r = run_normlab("sweep --model mlp --dataset mnist --data-dir " + data_dir() +
                            " --norms bn,gn --groups 4 --batch-sizes 4,16 --steps 12 --base-lr 0.32 --base-batch 32 "
                            "--jobs 2 --threads 1 --no-eval-modes --out " + dir.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("3 already finished") != std::string::npos);
  CHECK(slurp(dir / "bn-b4-s0" / "summary.json") == kept_before);  // never rewritten
  CHECK(read_json_file(dir / "gn-b16-s0" / "summary.json")["status"] == "ok");
}

TEST_CASE("a diverged run is recorded as diverged and the sweep goes on", "[sweep]") {
  const fs::path out = temp_root() / "sweep-diverge";
  const Run r = run_normlab("sweep --model cnn --dataset mnist --data-dir " + data_dir() +
                            " --norms bn,none --batch-sizes 8 --steps 6 --lr-scaling none --base-lr 1e30 "
                            "--jobs 1 --threads 1 --no-eval-modes --out " + out.string());
  INFO(r.err);
  CHECK(r.exit_code == 0);
  const auto bn = read_json_file(out / "bn-b8-s0" / "summary.json");
  CHECK(bn["status"].get<std::string>().rfind("diverged at step", 0) == 0);
  CHECK(fs::exists(out / "none-b8-s0" / "summary.json"));  // the next run still ran
  // One job at a time: each run chooses its wait policy itself, from the load when it starts.
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    const std::string policy = read_json_file(out / "none-b8-s0" / "config.json")["resolved"]["omp_wait_policy"];
    CHECK(policy.find("other cores busy at start)") != std::string::npos);
  }
  CHECK(slurp(out / "results.csv").find("diverged at step") != std::string::npos);
}

TEST_CASE("report writes the norm x batch table, the BN - GN row and the figures", "[report]") {
  const fs::path dir = finished_sweep();
  const Run r = run_normlab("report " + dir.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string md = slurp(dir / "report.md");
  CHECK(md.find("| norm | B=4 | B=16 |") != std::string::npos);
  CHECK(md.find("| bn |") != std::string::npos);
  CHECK(md.find("| **BN - GN** |") != std::string::npos);
  for (const char* fig : {"error_vs_batch.svg", "curves_b4.svg", "curves_b16.svg", "curves_bn.svg", "step_time.svg"}) {
    INFO(fig);
    const std::string svg = slurp(dir / fig);
    CHECK(svg.rfind("<svg", 0) == 0);
    CHECK(svg.find("</svg>") != std::string::npos);
    CHECK(md.find(std::string("](") + fig + ")") != std::string::npos);
  }
  const std::string html = slurp(dir / "report.html");
  CHECK(html.find("<table>") != std::string::npos);
  CHECK(html.find("<svg") != std::string::npos);  // figures inlined: the page stands alone
  // Markdown is rendered, not printed raw.
  CHECK(html.find("<strong>test error (%)</strong>") != std::string::npos);
  CHECK(html.find("<td><strong>BN - GN</strong></td>") != std::string::npos);
  CHECK(html.find("<th>norm</th><th>B=4</th><th>B=16</th>") != std::string::npos);
  CHECK(html.find("<figcaption>") != std::string::npos);
  CHECK(html.find("**") == std::string::npos);
  CHECK(html.find("<code>") != std::string::npos);
}

TEST_CASE("with several seeds the table gives mean +/- std with n and the headline plot a min-max band", "[report]") {
  const fs::path out = temp_root() / "sweep-seeds";
  const Run r = run_normlab("sweep --model mlp --dataset mnist --data-dir " + data_dir() +
                            " --norms gn --groups 4 --batch-sizes 4,8 --seeds 0,1 --steps 6 --jobs 2 --threads 1 "
                            "--no-eval-modes --out " + out.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(run_normlab("report " + out.string()).exit_code == 0);
  const std::string md = slurp(out / "report.md");
  CHECK(md.find("(n=2) |") != std::string::npos);
  CHECK(md.find(" +/- ") != std::string::npos);
  const std::string svg = slurp(out / "error_vs_batch.svg");
  CHECK(svg.find("<polygon") != std::string::npos);  // the band
  CHECK(md.find("min to max over the seeds") != std::string::npos);
  CHECK(md.find("(range ") == std::string::npos);  // seeds close together: mean +/- std says it
  // One seed far from the other (a stalled run): the cell shows both ends.
  auto far = read_json_file(out / "gn-b4-s1" / "summary.json");
  far["test_accuracy"] = 0.95;  // the others are near chance after 6 steps
  std::ofstream(out / "gn-b4-s1" / "summary.json") << far.dump();
  REQUIRE(run_normlab("report " + out.string()).exit_code == 0);
  CHECK(slurp(out / "report.md").find(" (range ") != std::string::npos);
  // One seed (the finished_sweep): no band.
  const fs::path one = finished_sweep();
  REQUIRE(run_normlab("report " + one.string()).exit_code == 0);
  CHECK(slurp(one / "error_vs_batch.svg").find("<polygon") == std::string::npos);
}

TEST_CASE("sweep --stat-batch-sizes: BN-family runs per statistics batch, the others once, report per stat batch",
          "[sweep][report]") {
  const fs::path out = temp_root() / "sweep-sb";
  const std::string cmd = "sweep --model mlp --dataset mnist --data-dir " + data_dir() +
                          " --norms bn,gn --groups 4 --batch-sizes 4,8 --stat-batch-sizes 2,4,8 --steps 6 --jobs 2 "
                          "--threads 1 --no-eval-modes --out " + out.string();
  const Run r = run_normlab(cmd);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // b <= B only: bn at batch 4 gets 2 and 4, at batch 8 gets 2, 4 and 8; gn keeps its plain names.
  for (const char* name : {"bn-b4-sb2-s0", "bn-b4-sb4-s0", "bn-b8-sb2-s0", "bn-b8-sb4-s0", "bn-b8-sb8-s0", "gn-b4-s0",
                           "gn-b8-s0"}) {
    INFO(name);
    CHECK(read_json_file(out / name / "summary.json")["status"] == "ok");
  }
  CHECK_FALSE(fs::exists(out / "bn-b4-sb8-s0"));
  CHECK_FALSE(fs::exists(out / "bn-b4-s0"));
  CHECK(read_json_file(out / "bn-b8-sb2-s0" / "config.json")["norm"]["stat_batch"] == 2);
  const auto rows = read_lines(out / "results.csv");
  REQUIRE(rows.size() == 8);
  CHECK(rows[0].size() >= 11);
  CHECK(rows[0].substr(rows[0].size() - 11) == ",stat_batch");
  int sb2 = 0, gn_at_batch = 0;
  for (const auto& row : rows) {
    sb2 += row.rfind("bn,8,0,", 0) == 0 && row.substr(row.rfind(',')) == ",2";
    gn_at_batch += row.rfind("gn,8,0,", 0) == 0 && row.substr(row.rfind(',')) == ",8";  // = batch size when not set
  }
  CHECK(sb2 == 1);
  CHECK(gn_at_batch == 1);

  const Run rep = run_normlab("report " + out.string());
  INFO(rep.err);
  REQUIRE(rep.exit_code == 0);
  const std::string md = slurp(out / "report.md");
  CHECK(md.find("](error_vs_stat_batch_b8.svg)") != std::string::npos);
  CHECK(md.find("](error_vs_stat_batch_b4.svg)") != std::string::npos);
  CHECK(md.find("Norms without a statistics batch (gn) ran once per seed at batch 8") != std::string::npos);
  CHECK(md.find("| norm | b=2 | b=4 | b=8 |") != std::string::npos);
  CHECK(md.find("| gn (one run, flat) |") != std::string::npos);
  const std::string svg = slurp(out / "error_vs_stat_batch_b8.svg");
  CHECK(svg.find("stroke-dasharray") != std::string::npos);  // gn drawn flat, dashed
  // The main table's bn cell at batch 8 is the run with statistics over the whole batch (sb8).
  CHECK(md.find("| norm | B=4 | B=8 |") != std::string::npos);

  // One statistics batch: no figure (nothing to plot against), but the table still shows the bn runs.
  const fs::path one = temp_root() / "sweep-sb-one";
  REQUIRE(run_normlab("sweep --model mlp --dataset mnist --data-dir " + data_dir() +
                      " --norms bn --batch-sizes 8 --stat-batch-sizes 4 --steps 6 --jobs 1 --threads 1 --no-eval-modes "
                      "--out " + one.string())
              .exit_code == 0);
  REQUIRE(run_normlab("report " + one.string()).exit_code == 0);
  const std::string md_one = slurp(one / "report.md");
  CHECK(md_one.find("error_vs_stat_batch") == std::string::npos);
  const size_t table = md_one.find("| norm | b=4 |\n|---|---|\n| bn | ");
  REQUIRE(table != std::string::npos);
  CHECK(std::isdigit(static_cast<unsigned char>(md_one[table + std::string("| norm | b=4 |\n|---|---|\n| bn | ").size()])));

  const Run bad = run_normlab("sweep --norms bn --batch-sizes 8 --stat-batch-sizes 1,4 --out " + (temp_root() / "x").string());
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--stat-batch-sizes") != std::string::npos);
}

TEST_CASE("results.csv gives gbn its ghost batch as the statistics batch", "[sweep]") {
  // gbn is not on the --stat-batch axis (its --ghost-batch is the same mechanism), but its
  // statistics are still over the ghost batch: the column must say 2 for it, as for bn sb2.
  const fs::path out = temp_root() / "sweep-gbn";
  const Run r = run_normlab("sweep --model mlp --dataset mnist --data-dir " + data_dir() +
                            " --norms gbn,bn --batch-sizes 8 --stat-batch-sizes 2 --ghost-batch 2 --steps 4 --jobs 2 "
                            "--threads 1 --no-eval-modes --out " + out.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(read_json_file(out / "gbn-b8-s0" / "config.json")["norm"]["ghost_batch"] == 2);
  const auto rows = read_lines(out / "results.csv");
  REQUIRE(rows.size() == 3);
  int gbn2 = 0, bn2 = 0;
  for (const auto& row : rows) {
    gbn2 += row.rfind("gbn,8,0,", 0) == 0 && row.substr(row.rfind(',')) == ",2";
    bn2 += row.rfind("bn,8,0,", 0) == 0 && row.substr(row.rfind(',')) == ",2";
  }
  CHECK(gbn2 == 1);
  CHECK(bn2 == 1);
  // ... and the report still puts gbn in the norm x batch-size table (it is not on the stat axis).
  const Run rep = run_normlab("report " + out.string());
  INFO(rep.err);
  REQUIRE(rep.exit_code == 0);
  const std::string md = slurp(out / "report.md");
  const size_t row = md.find("| gbn | ");
  REQUIRE(row != std::string::npos);
  CHECK(std::isdigit(static_cast<unsigned char>(md[row + std::string("| gbn | ").size()])));
}

TEST_CASE("export-results writes compact finished runs, sweep --results skips them, report plots the union",
          "[sweep][report][results]") {
  const fs::path dir = finished_sweep();
  const fs::path committed = temp_root() / "results" / "sweep";
  const Run ex = run_normlab("export-results " + dir.string() + " " + committed.string() + " --max-rows 5");
  INFO(ex.err);
  REQUIRE(ex.exit_code == 0);
  for (const char* name : {"bn-b4-s0", "bn-b16-s0", "gn-b4-s0", "gn-b16-s0"}) {
    INFO(name);
    for (const char* f : {"summary.json", "config.json", "eval.csv", "metrics.csv"}) CHECK(fs::exists(committed / name / f));
    for (const char* f : {"model.safetensors", "train_state.safetensors"}) CHECK_FALSE(fs::exists(committed / name / f));
    CHECK(read_json_file(committed / name / "summary.json") == read_json_file(dir / name / "summary.json"));
    CHECK(read_json_file(committed / name / "config.json")["out"] == name);
    // No path of this machine: the temp dir (absolute) appears nowhere.
    for (const char* f : {"summary.json", "config.json", "eval.csv", "metrics.csv"})
      CHECK(slurp(committed / name / f).find(temp_root().string()) == std::string::npos);
    // metrics.csv: the header and 5 of the 12 rows, evenly spread, first and last kept.
    const auto full = read_lines(dir / name / "metrics.csv");
    const auto thin = read_lines(committed / name / "metrics.csv");
    REQUIRE(full.size() == 13);
    REQUIRE(thin.size() == 6);
    CHECK(thin[0] == full[0]);
    CHECK(thin[1] == full[1]);
    CHECK(thin[2] == full[1 + 3]);
    CHECK(thin[3] == full[1 + 6]);
    CHECK(thin[4] == full[1 + 8]);
    CHECK(thin[5] == full[12]);
  }
  CHECK(fs::exists(committed / "sweep.json"));
  CHECK(slurp(committed / "sweep.json").find(temp_root().string()) == std::string::npos);
  CHECK(slurp(dir / "sweep.json").find(temp_root().string()) != std::string::npos);  // the check can fail
  CHECK(read_lines(committed / "results.csv").size() == 5);
  // Deterministic: exporting again writes the same bytes.
  const std::string before = slurp(committed / "bn-b4-s0" / "metrics.csv");
  REQUIRE(run_normlab("export-results " + dir.string() + " " + committed.string() + " --max-rows 5").exit_code == 0);
  CHECK(slurp(committed / "bn-b4-s0" / "metrics.csv") == before);

  // Another machine: an empty out dir, the committed results, one more batch size.
  const fs::path elsewhere = temp_root() / "sweep-elsewhere";
  const Run r = run_normlab("sweep --model mlp --dataset mnist --data-dir " + data_dir() +
                            " --norms bn,gn --groups 4 --batch-sizes 4,8,16 --steps 12 --base-lr 0.32 --base-batch 32 "
                            "--jobs 2 --threads 1 --no-eval-modes --out " + elsewhere.string() +
                            " --results " + committed.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("4 already finished, 4 of them in " + committed.string()) != std::string::npos);
  CHECK_FALSE(fs::exists(elsewhere / "bn-b4-s0"));  // not run again
  CHECK(read_json_file(elsewhere / "gn-b8-s0" / "summary.json")["status"] == "ok");
  const auto rows = read_lines(elsewhere / "results.csv");
  REQUIRE(rows.size() == 7);
  for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i].find(",\"ok\",") != std::string::npos);

  const Run rep = run_normlab("report " + elsewhere.string() + " --results " + committed.string());
  INFO(rep.err);
  REQUIRE(rep.exit_code == 0);
  const std::string md = slurp(elsewhere / "report.md");
  CHECK(md.find("| norm | B=4 | B=8 | B=16 |") != std::string::npos);
  CHECK(md.find("missing") == std::string::npos);  // every cell found, from one directory or the other
  CHECK(md.find("4 of the 6 runs were read from the committed results") != std::string::npos);
  // Only the committed copy, no out dir at all: the report still has every committed run.
  const fs::path fresh = temp_root() / "fresh-report";
  REQUIRE(run_normlab("report " + fresh.string() + " --results " + committed.string()).exit_code == 0);
  CHECK(slurp(fresh / "report.md").find("| bn |") != std::string::npos);
  CHECK(slurp(fresh / "report.md").find("missing") == std::string::npos);

  const Run bad = run_normlab("export-results " + (temp_root() / "no-sweep").string() + " " + committed.string());
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("sweep.json") != std::string::npos);
}

TEST_CASE("one sweep directory filled in parts holds every part's runs, and refuses a part that trains differently",
          "[sweep][report][results]") {
  const fs::path out = temp_root() / "sweep-in-parts";
  auto part = [&](const std::string& flags, const fs::path& dir) {
    return run_normlab("sweep --model mlp --dataset mnist --data-dir " + data_dir() + " --groups 4 --batch-sizes 4 --steps 6 " +
                       "--jobs 1 --threads 1 --no-eval-modes --out " + dir.string() + " " + flags);
  };
  REQUIRE(part("--norms bn --seeds 0", out).exit_code == 0);
  const Run second = part("--norms gn --seeds 1", out);
  INFO(second.err);
  REQUIRE(second.exit_code == 0);
  // sweep.json is the union of both parts (it used to be the last part only, so export-results
  // and report lost the first); results.csv lists all four runs, the two never run as missing.
  const auto plan = read_json_file(out / "sweep.json");
  REQUIRE(plan["variants"].size() == 2);
  CHECK(plan["variants"][0]["label"] == "bn");
  CHECK(plan["variants"][1]["label"] == "gn");
  CHECK(plan["seeds"].get<std::vector<int>>() == std::vector<int>{0, 1});
  const auto rows = read_lines(out / "results.csv");
  REQUIRE(rows.size() == 5);
  int ok = 0, missing = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    ok += rows[i].find(",\"ok\",") != std::string::npos;
    missing += rows[i].find(",\"missing\",") != std::string::npos;
  }
  CHECK(ok == 2);
  CHECK(missing == 2);

  // export-results takes both parts, and a later export of another directory adds to DEST.
  const fs::path dest = temp_root() / "results" / "sweep-in-parts";
  REQUIRE(run_normlab("export-results " + out.string() + " " + dest.string()).exit_code == 0);
  CHECK(fs::exists(dest / "bn-b4-s0" / "summary.json"));
  CHECK(fs::exists(dest / "gn-b4-s1" / "summary.json"));
  const fs::path other = temp_root() / "sweep-in-parts-elsewhere";
  REQUIRE(part("--norms ln --seeds 0", other).exit_code == 0);
  REQUIRE(run_normlab("export-results " + other.string() + " " + dest.string()).exit_code == 0);
  CHECK(read_json_file(dest / "sweep.json")["variants"].size() == 3);
  CHECK(read_lines(dest / "results.csv").size() == 1 + 3 * 2);
  const Run rep = run_normlab("report " + other.string() + " --results " + dest.string());
  INFO(rep.err);
  REQUIRE(rep.exit_code == 0);
  const std::string md = slurp(other / "report.md");
  for (const char* row : {"| bn |", "| gn |", "| ln |"}) CHECK(md.find(row) != std::string::npos);

  // Another recipe in the same directory would mix incomparable runs: refused, nothing changed.
  const std::string before = slurp(out / "sweep.json");
  const Run refused = part("--norms bn --seeds 0 --lr-scaling none", out);
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("trains differently") != std::string::npos);
  const Run refused_steps =
      run_normlab("sweep --model mlp --dataset mnist --data-dir " + data_dir() + " --groups 4 --batch-sizes 4 --steps 7 " +
                  "--norms bn --jobs 1 --no-eval-modes --out " + out.string());
  CHECK(refused_steps.exit_code == 2);
  CHECK(refused_steps.err.find("--steps 7") != std::string::npos);
  CHECK(slurp(out / "sweep.json") == before);
}

TEST_CASE("a flag given with a preset overrides it, or is refused where the preset sets it per variant", "[sweep]") {
  // ln-batch is an MLP on MNIST; --model cnn must reach the runs (it used to be dropped silently).
  const fs::path out = temp_root() / "preset-override";
  const Run r = run_normlab("sweep --preset ln-batch --model cnn --data-dir " + data_dir() +
                            " --norms bn --batch-sizes 4 --steps 3 --jobs 1 --no-eval-modes --out " + out.string());
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(read_json_file(out / "bn-b4-s0" / "config.json")["model"]["name"] == "cnn");
  // quick sets --model per variant (mlp-*, cnn-*): an override cannot apply, so it is an error.
  const Run refused = run_normlab("sweep --preset quick --model cnn --out " + (temp_root() / "x").string());
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("--model") != std::string::npos);
}

TEST_CASE("sweep and report reject bad input with exit code 2 or a clear error", "[sweep][report]") {
  const Run preset = run_normlab("sweep --preset no-such-preset --out " + (temp_root() / "x").string());
  CHECK(preset.exit_code == 2);
  CHECK(preset.err.find("gn-batch") != std::string::npos);  // lists the valid presets
  const Run norm = run_normlab("sweep --norms bn,nonorm --out " + (temp_root() / "x").string());
  CHECK(norm.exit_code == 2);
  CHECK(norm.err.find("nonorm") != std::string::npos);
  const Run sizes = run_normlab("sweep --batch-sizes 2,0 --out " + (temp_root() / "x").string());
  CHECK(sizes.exit_code == 2);
  const Run report = run_normlab("report " + (temp_root() / "not-a-sweep").string());
  CHECK(report.exit_code == 1);
  CHECK(report.err.find("sweep.json") != std::string::npos);
}
