// normlab apps: the run directory, where a training run leaves everything it produced.
//
//   DIR/config.json        every resolved option (what `--resume` and `eval` read back)
//   DIR/metrics.csv        step,epoch,train_loss,train_acc,lr,seconds   (one row per logging window)
//   DIR/eval.csv           epoch,step,test_loss,test_acc                 (one row per evaluation)
//   DIR/summary.json       the outcome (status, accuracies, speed, peak memory)
//   DIR/model.safetensors  parameters + buffers under their dotted names
//   DIR/train_state.safetensors  model + optimizer + RNG + data position, for --resume
//
// Nothing the user already has may be lost half-written: whole files are written to a
// temporary name and renamed over the old one (rename is atomic on POSIX), and the CSV
// logs are appended line by line and flushed, so a killed run leaves at worst a complete
// prefix of them.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nl::app {

// Create `dir` (and parents) if needed; throws nl::Error if it cannot be created.
void ensure_directory(const std::string& dir);
bool file_exists(const std::string& path);

// Write `contents` to path.tmp.<pid>, fsync, rename over `path`.
void write_file_atomic(const std::string& path, const std::string& contents);
void write_json_atomic(const std::string& path, const nlohmann::json& j);
// Parse a JSON file; throws nl::Error naming the file if it is missing or malformed.
nlohmann::json read_json(const std::string& path);

// An append-only CSV file with a fixed header.
class CsvLog {
 public:
  CsvLog() = default;
  // Fresh: (over)writes the header. Resume: keeps the rows whose first column (a step or
  // epoch number) is <= keep_upto, dropping rows a killed run wrote after its checkpoint.
  void open_fresh(const std::string& path, const std::vector<std::string>& columns);
  void open_resume(const std::string& path, const std::vector<std::string>& columns, int64_t keep_upto,
                   size_t key_column = 0);
  void row(const std::vector<std::string>& values);  // appended and flushed
  bool is_open() const { return out_.is_open(); }

 private:
  std::string path_;
  size_t columns_ = 0;
  std::ofstream out_;
};

// Peak resident set size of this process in MB (getrusage's ru_maxrss).
double peak_rss_mb();

}  // namespace nl::app
