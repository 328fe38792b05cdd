// Helpers for end-to-end tests of the normlab binary. See cli_runner.hpp.
#include "tests/support/cli_runner.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace nl::test {

namespace fs = std::filesystem;
using json = nlohmann::json;


std::string normlab_binary() {
  if (const char* env = std::getenv("NORMLAB_BIN")) return env;
  return (fs::read_symlink("/proc/self/exe").parent_path() / "normlab").string();
}

// A fresh directory for this test process, removed at exit (kept if NORMLAB_KEEP_TEST_DIR is set).
namespace {
struct TempRoot {
  fs::path path;
  TempRoot() {
    std::string tmpl = (fs::temp_directory_path() / "normlab_test_app_XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempRoot() {
    std::error_code ec;
    if (!std::getenv("NORMLAB_KEEP_TEST_DIR")) fs::remove_all(path, ec);
  }
};
}  // namespace

const fs::path& temp_root() {
  static const TempRoot root;
  return root.path;
}

static void write_be32(std::ofstream& f, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  f.write(reinterpret_cast<const char*>(b), 4);
}

// An MNIST-shaped IDX dataset (10 classes, 12x12 images): class k is a bright 3x3 square at
// a position of its own plus pixel noise, so a small network learns it within a few steps.
void write_idx_split(const fs::path& dir, const std::string& prefix, int count, unsigned seed) {
  constexpr int kSide = 12;
  std::ofstream images(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
  std::ofstream labels(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  write_be32(images, 2051);
  write_be32(images, count);
  write_be32(images, kSide);
  write_be32(images, kSide);
  write_be32(labels, 2049);
  write_be32(labels, count);
  unsigned state = seed;
  auto rnd = [&state] { return (state = state * 1103515245u + 12345u) >> 16; };
  for (int i = 0; i < count; ++i) {
    const int label = static_cast<int>(rnd() % 10);
    std::vector<unsigned char> px(kSide * kSide);
    for (auto& p : px) p = static_cast<unsigned char>(rnd() % 60);
    const int r0 = (label / 4) * 4, c0 = (label % 4) * 3;
    for (int r = r0; r < r0 + 3; ++r)
      for (int c = c0; c < c0 + 3; ++c) px[r * kSide + c] = 255;
    images.write(reinterpret_cast<const char*>(px.data()), px.size());
    const auto l = static_cast<unsigned char>(label);
    labels.write(reinterpret_cast<const char*>(&l), 1);
  }
}

// <root>/data/mnist with 512 training and 200 test images (written once).
std::string data_dir() {
  static const std::string dir = [] {
    const fs::path mnist = temp_root() / "data" / "mnist";
    fs::create_directories(mnist);
    write_idx_split(mnist, "train", 512, 1);
    write_idx_split(mnist, "t10k", 200, 2);
    return (temp_root() / "data").string();
  }();
  return dir;
}

// Runs `normlab <args>` with stdout discarded and stderr captured.
Run run_normlab(const std::string& args) { return run_shell(normlab_binary() + " " + args); }

std::string mpirun(int ranks) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none "
         "mpirun --oversubscribe -np " + std::to_string(ranks) + " ";
}

Run run_shell(const std::string& command) {
  const fs::path err_file = temp_root() / "stderr.txt";
  const std::string cmd = "(" + command + ") > /dev/null 2> " + err_file.string();
  const int status = std::system(cmd.c_str());
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ss.str()};
}

std::string train_args(const std::string& out, const std::string& extra) {
  return "train --dataset mnist --data-dir " + data_dir() + " --threads 1 --out " + (temp_root() / out).string() +
         " " + extra;
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

json read_json_file(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}


}  // namespace nl::test
