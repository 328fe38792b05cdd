// End-to-end tests of sweeps spread over shards (apps/shard.hpp): --shard I/K, the Slurm and
// Open MPI variables, shards sharing one directory, claims (live ones respected, stale ones
// taken over), and that the shards together write the same results.csv as one process.
// Runs the built normlab binary on the tiny synthetic dataset of tests/support/cli_runner.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli_runner.hpp"

namespace fs = std::filesystem;
using namespace nl::test;
using Catch::Matchers::Contains;

namespace {

// 6 runs (3 norms x 2 batch sizes), 8 steps each, one at a time.
std::string sweep_cmd(const fs::path& out, const std::string& extra = "") {
  return normlab_binary() + " sweep --model mlp --dataset mnist --data-dir " + data_dir() +
         " --norms none,ln,bn --batch-sizes 8,16 --steps 8 --no-eval-modes --jobs 1 --threads 1 --out " +
         out.string() + " " + extra;
}

const std::vector<std::string> kRuns = {"none-b8-s0", "ln-b8-s0", "bn-b8-s0", "none-b16-s0", "ln-b16-s0", "bn-b16-s0"};

bool trained(const fs::path& sweep, const std::string& run) { return fs::exists(sweep / run / "summary.json"); }

// results.csv without the columns that measure time (seconds, ms_per_step, items_per_second, peak_rss_mb).
std::vector<std::string> results_without_timing(const fs::path& sweep) {
  std::vector<std::string> rows;
  for (const std::string& line : read_lines(sweep / "results.csv")) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cells.push_back(c);
    std::string kept;
    for (size_t i = 0; i < cells.size(); ++i)
      if (i != 11 && i != 12 && i != 13 && i != 14) kept += cells[i] + ",";
    rows.push_back(kept);
  }
  return rows;
}

const fs::path& single_process_sweep() {
  static const fs::path out = [] {
    const fs::path dir = temp_root() / "whole";
    const Run r = run_shell(sweep_cmd(dir));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return dir;
  }();
  return out;
}

}  // namespace

TEST_CASE("shard specs that name no shard are usage errors", "[sweep][shard]") {
  const fs::path out = temp_root() / "bad-shard";
  for (const char* spec : {"3/2", "2/2", "1/0", "x/2", "1", "-1/2", "1/2/3"}) {
    INFO(spec);
    const Run r = run_shell(sweep_cmd(out, std::string("--shard ") + spec));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("--shard"));
  }
  const Run slurm = run_shell("SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_COUNT=4 " + sweep_cmd(out));
  CHECK(slurm.exit_code == 2);
  CHECK_THAT(slurm.err, Contains("SLURM_ARRAY_TASK_ID=4") && Contains("SLURM_ARRAY_TASK_COUNT=4"));
  CHECK_FALSE(fs::exists(out / "none-b8-s0"));
}

TEST_CASE("two shards run side by side into one directory give the one-process results.csv", "[sweep][shard]") {
  const fs::path out = temp_root() / "sharded";
  const Run r = run_shell(sweep_cmd(out, "--shard 0/2") + " & " + sweep_cmd(out, "--shard 1/2") + " & wait");
  INFO(r.err);
  for (const auto& run : kRuns) CHECK(trained(out, run));
  CHECK(results_without_timing(out) == results_without_timing(single_process_sweep()));
  CHECK(fs::is_empty(out / "claims"));  // every claim released
  // Each run was trained once: its log holds exactly one "normlab" start line.
  for (const auto& run : kRuns) {
    int starts = 0;
    for (const auto& line : read_lines(out / "logs" / (run + ".log"))) starts += line.rfind("normlab ", 0) == 0;
    CHECK(starts == 1);
  }
}

TEST_CASE("the shard comes from SLURM_ARRAY_TASK_ID / COUNT (minus TASK_MIN)", "[sweep][shard]") {
  const fs::path out = temp_root() / "slurm";
  // Array ids 5..6: task 6 is shard 1 of 2, i.e. runs 1, 3, 5 of the plan.
  const Run r = run_shell("SLURM_ARRAY_TASK_ID=6 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_COUNT=2 " + sweep_cmd(out));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, Contains("shard 1/2 (from SLURM_ARRAY_TASK_ID): 3 of the plan's 6 runs"));
  for (size_t i = 0; i < kRuns.size(); ++i) CHECK(trained(out, kRuns[i]) == (i % 2 == 1));
  // --shard wins over the variables; shard 0 completes the sweep.
  const Run rest = run_shell("SLURM_ARRAY_TASK_ID=6 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_COUNT=2 " +
                         sweep_cmd(out, "--shard 0/2"));
  REQUIRE(rest.exit_code == 0);
  CHECK(results_without_timing(out) == results_without_timing(single_process_sweep()));
}

TEST_CASE("the shard comes from the Open MPI rank and size under mpirun", "[sweep][shard][mpi]") {
  INFO("mpirun comes with openmpi-bin (scripts/install_deps.sh)");
  REQUIRE(std::system("command -v mpirun > /dev/null") == 0);
  const fs::path out = temp_root() / "mpirun";
  const Run r = run_shell(mpirun(2) + sweep_cmd(out));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, Contains("shard 0/2 (from Open MPI rank)") && Contains("shard 1/2 (from Open MPI rank)"));
  CHECK(results_without_timing(out) == results_without_timing(single_process_sweep()));
}

TEST_CASE("a live claim is respected, a stale one is taken over", "[sweep][shard]") {
  const fs::path out = temp_root() / "claims";
  fs::create_directories(out / "claims");
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  // A process that has ended: its pid is free (not reused within this test).
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  auto claim = [&](const std::string& run, const std::string& holder, int generation = 0) {
    std::ofstream(out / "claims" / (run + "." + std::to_string(generation))) << holder << "\n";
  };
  claim("none-b8-s0", std::string(host) + " " + std::to_string(getpid()));     // live: this test process
  claim("ln-b8-s0", std::string(host) + " " + std::to_string(dead), 3);        // holder died on this host
  claim("bn-b8-s0", "far-away-host 12345");                                    // refreshed just now elsewhere
  claim("none-b16-s0", "far-away-host 12346");                                 // silent for 10 minutes
  const fs::path old = out / "claims" / "none-b16-s0.0";
  const struct timespec ten_minutes_ago[2] = {{time(nullptr) - 600, 0}, {time(nullptr) - 600, 0}};
  REQUIRE(utimensat(AT_FDCWD, old.c_str(), ten_minutes_ago, 0) == 0);

  const Run r = run_shell(sweep_cmd(out, "--claim-lease 300"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_FALSE(trained(out, "none-b8-s0"));
  CHECK_THAT(r.err, Contains("none-b8-s0 is being run by " + std::string(host)));
  CHECK(trained(out, "ln-b8-s0"));
  CHECK_FALSE(trained(out, "bn-b8-s0"));
  CHECK_THAT(r.err, Contains("bn-b8-s0 is being run by far-away-host 12345"));
  CHECK(trained(out, "none-b16-s0"));
  CHECK(trained(out, "ln-b16-s0"));
  CHECK(trained(out, "bn-b16-s0"));
  // Released claims are gone; the two live ones are still there.
  CHECK(fs::exists(out / "claims" / "none-b8-s0.0"));
  CHECK(fs::exists(out / "claims" / "bn-b8-s0.0"));
  CHECK_FALSE(fs::exists(out / "claims" / "ln-b8-s0.3"));
  CHECK_FALSE(fs::exists(out / "claims" / "ln-b8-s0.4"));
  // Once the live holders are gone (here: their claims removed), a later sweep finishes the plan.
  fs::remove(out / "claims" / "none-b8-s0.0");
  fs::remove(out / "claims" / "bn-b8-s0.0");
  REQUIRE(run_shell(sweep_cmd(out)).exit_code == 0);
  CHECK(results_without_timing(out) == results_without_timing(single_process_sweep()));
}
