// Test helpers for running the built `normlab` binary end to end: a per-process temp dir,
// a tiny synthetic MNIST-shaped IDX dataset (class k = a bright 3x3 square at its own
// position, so small networks learn it in a few steps), and running the command with its
// stderr captured. The binary is found next to the test executable; NORMLAB_BIN overrides.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nl::test {

std::string normlab_binary();
// A fresh directory for this test process, removed at exit (kept if NORMLAB_KEEP_TEST_DIR is set).
const std::filesystem::path& temp_root();
// Writes <dir>/<prefix>-images-idx3-ubyte and -labels-idx1-ubyte: `count` 12x12 images.
void write_idx_split(const std::filesystem::path& dir, const std::string& prefix, int count, unsigned seed);
// <temp_root>/data with mnist/ holding 512 training and 200 test images (written once).
std::string data_dir();

struct Run {
  int exit_code;
  std::string err;  // stderr
};
// Runs `normlab <args>` with stdout discarded and stderr captured.
Run run_normlab(const std::string& args);
// Runs a shell command line (pipes, &, env assignments) with stdout discarded and stderr captured.
Run run_shell(const std::string& command);
// "mpirun -np <ranks>" with what Open MPI needs as root and in containers (see CMakeLists.txt).
std::string mpirun(int ranks);
// "train --dataset mnist --data-dir <synthetic> --threads 1 --out <temp_root>/<out> <extra>"
std::string train_args(const std::string& out, const std::string& extra);
std::vector<std::string> read_lines(const std::filesystem::path& p);
nlohmann::json read_json_file(const std::filesystem::path& p);

}  // namespace nl::test
