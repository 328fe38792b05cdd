// normlab apps: run-directory files written so that nothing is ever left half-written.
#include "apps/run_dir.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "core/tensor.hpp"

namespace nl::app {

namespace fs = std::filesystem;

void ensure_directory(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  NL_CHECK(!ec && fs::is_directory(dir), "cannot create output directory '", dir, "': ",
           ec ? ec.message() : std::string("a file of that name exists"));
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  NL_CHECK(fd >= 0, "cannot write '", tmp, "': ", std::strerror(errno));
  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(fmt::format("cannot write '{}': {}", tmp, std::strerror(err)));
    }
    written += static_cast<size_t>(n);
  }
  // fsync before rename: otherwise a power loss could leave the new name on empty data.
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(err)));
  }
}

void write_json_atomic(const std::string& path, const nlohmann::json& j) { write_file_atomic(path, j.dump(2) + "\n"); }

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  NL_CHECK(in.good(), "cannot read '", path, "' (does the run directory exist?)");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw Error(fmt::format("'{}' is not valid JSON: {}", path, e.what()));
  }
}

static std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
  return s;
}

void CsvLog::open_fresh(const std::string& path, const std::vector<std::string>& columns) {
  path_ = path;
  columns_ = columns.size();
  write_file_atomic(path, join(columns) + "\n");
  out_.open(path, std::ios::app);
  NL_CHECK(out_.good(), "cannot open '", path, "' for appending");
}

void CsvLog::open_resume(const std::string& path, const std::vector<std::string>& columns, int64_t keep_upto,
                         size_t key_column) {
  std::ifstream in(path);
  std::string kept = join(columns) + "\n", line;
  bool header = true;
  while (in && std::getline(in, line)) {
    if (header) { header = false; continue; }
    // Keep complete rows up to the checkpoint; a row cut short by a kill has too few fields.
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, ',');) fields.push_back(f);
    if (fields.size() != columns.size()) continue;
    try {
      if (std::stoll(fields[key_column]) <= keep_upto) kept += line + "\n";
    } catch (const std::exception&) {
    }
  }
  path_ = path;
  columns_ = columns.size();
  write_file_atomic(path, kept);
  out_.open(path, std::ios::app);
  NL_CHECK(out_.good(), "cannot open '", path, "' for appending");
}

void CsvLog::row(const std::vector<std::string>& values) {
  NL_CHECK(values.size() == columns_, "internal: ", path_, " row has ", values.size(), " fields, expected ", columns_);
  out_ << join(values) << '\n';
  out_.flush();
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

}  // namespace nl::app
