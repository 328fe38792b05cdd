// normlab apps: shards of a sweep and claims on its runs (see shard.hpp).
#include "apps/shard.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "apps/train_config.hpp"

namespace nl::app {

namespace fs = std::filesystem;

namespace {

bool parse_int(const std::string& s, int& out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  out = std::stoi(s);
  return true;
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

Shard from_variables(const char* index_name, const char* index, const char* count_name, const char* count,
                     int index_offset, const std::string& source) {
  Shard s;
  int i = 0, k = 0;
  if (!parse_int(index, i) || !parse_int(count, k))
    throw UsageError(fmt::format("sweep: {}='{}' and {}='{}' must be non-negative integers", index_name, index,
                                 count_name, count));
  s.index = i - index_offset;
  s.count = k;
  s.source = source;
  if (s.count < 1 || s.index < 0 || s.index >= s.count)
    throw UsageError(fmt::format("sweep: {}={} (minus the array's first id {}) is not a shard of {}={}", index_name,
                                 i, index_offset, count_name, k));
  return s;
}

}  // namespace

Shard parse_shard(const std::string& spec) {
  const auto slash = spec.find('/');
  int i = -1, k = 0;
  if (slash == std::string::npos || !parse_int(spec.substr(0, slash), i) || !parse_int(spec.substr(slash + 1), k))
    throw UsageError(fmt::format("--shard '{}': expected I/K, shard I (counted from 0) of K, e.g. 0/4", spec));
  if (k < 1 || i >= k)
    throw UsageError(fmt::format("--shard {}: shard {} does not exist among {} shards (I/K needs 0 <= I < K)", spec,
                                 i, k));
  return {i, k, "--shard"};
}

Shard resolve_shard(const std::string& spec) {
  if (!spec.empty()) return parse_shard(spec);
  if (const char* id = env("SLURM_ARRAY_TASK_ID")) {
    const char* count = env("SLURM_ARRAY_TASK_COUNT");
    if (!count) throw UsageError("sweep: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not");
    int first = 0;
    if (const char* min = env("SLURM_ARRAY_TASK_MIN")) parse_int(min, first);
    return from_variables("SLURM_ARRAY_TASK_ID", id, "SLURM_ARRAY_TASK_COUNT", count, first, "SLURM_ARRAY_TASK_ID");
  }
  if (const char* rank = env("OMPI_COMM_WORLD_RANK")) {
    const char* size = env("OMPI_COMM_WORLD_SIZE");
    if (!size) throw UsageError("sweep: OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not");
    return from_variables("OMPI_COMM_WORLD_RANK", rank, "OMPI_COMM_WORLD_SIZE", size, 0, "Open MPI rank");
  }
  return {};
}

// ---------------------------------------------------------------- claims

namespace {

struct ClaimFile {
  int generation = -1;  // -1: no claim file
  fs::path path;
  std::string host;
  long pid = 0;
  std::string text;
};

// The newest claim of `run`: the file <run>.<g> with the highest g.
ClaimFile newest_claim(const fs::path& dir, const std::string& run) {
  ClaimFile c;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= run.size() + 1 || name.compare(0, run.size() + 1, run + ".") != 0) continue;
    int g = 0;
    if (!parse_int(name.substr(run.size() + 1), g) || g <= c.generation) continue;
    c.generation = g;
    c.path = entry.path();
  }
  if (c.generation < 0) return c;
  std::ifstream in(c.path);
  std::getline(in, c.text);
  std::istringstream fields(c.text);  // "host pid ..."
  fields >> c.host >> c.pid;
  return c;
}

double seconds_since_modified(const fs::path& p) {
  struct stat st {};
  if (stat(p.c_str(), &st) != 0) return 0.0;
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration<double>(now).count() - static_cast<double>(st.st_mtim.tv_sec) -
         static_cast<double>(st.st_mtim.tv_nsec) * 1e-9;
}

}  // namespace

ClaimBoard::ClaimBoard(const fs::path& sweep_dir, double lease_seconds)
    : dir_(sweep_dir / "claims"), lease_(lease_seconds) {
  fs::create_directories(dir_);
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  host_ = host;
  me_ = fmt::format("{} {}", host_, static_cast<long>(getpid()));
  heartbeat_ = std::thread(&ClaimBoard::heartbeat_loop, this);
}

ClaimBoard::~ClaimBoard() {
  stop_ = true;
  if (heartbeat_.joinable()) heartbeat_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  std::error_code ec;
  for (const auto& [run, path] : held_) fs::remove(path, ec);
}

bool ClaimBoard::try_claim(const std::string& run, std::string* holder) {
  const ClaimFile current = newest_claim(dir_, run);
  if (current.generation >= 0) {
    const bool holder_gone_here = current.host == host_ && current.pid > 0 && kill(static_cast<pid_t>(current.pid), 0) != 0 &&
                                  errno == ESRCH;
    const bool silent = seconds_since_modified(current.path) > lease_;
    if (!holder_gone_here && !silent) {
      if (holder) *holder = current.text;
      return false;
    }
  }
  const fs::path mine = dir_ / fmt::format("{}.{}", run, current.generation + 1);
  const int fd = open(mine.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd < 0) {
    if (holder) *holder = "another process (claimed it at the same moment)";
    return false;  // EEXIST: someone else claimed (or took over) first
  }
  const std::string text = fmt::format("{} {}\n", me_, shard_label_);
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  NL_CHECK(written, "sweep: could not write the claim ", mine.string());
  std::error_code ec;
  if (current.generation >= 0) fs::remove(current.path, ec);  // the stale claim: ours supersedes it
  std::lock_guard<std::mutex> lock(mutex_);
  held_.emplace_back(run, mine);
  return true;
}

void ClaimBoard::release(const std::string& run) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = held_.begin(); it != held_.end(); ++it)
    if (it->first == run) {
      std::error_code ec;
      fs::remove(it->second, ec);
      held_.erase(it);
      return;
    }
}

void ClaimBoard::heartbeat_loop() {
  const auto period = std::chrono::duration<double>(std::max(0.05, lease_ / 5));
  auto next = std::chrono::steady_clock::now() + period;
  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() < next) continue;
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [run, path] : held_) utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // mtime = now
  }
}

}  // namespace nl::app
