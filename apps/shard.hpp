// normlab apps: a sweep spread over many machines. Each machine (a Slurm array task, an
// mpirun rank, or any process started with --shard I/K) runs shard I of K of the same
// deterministic plan, and all of them write into one sweep directory on a shared filesystem.
//
// Share: run i of the plan (in the plan's fixed order) belongs to shard i mod K, so every
// shard gets a mix of batch sizes and seeds.
//
// Claims: before a shard starts a run it claims it by creating OUT/claims/<run>.<g> with
// O_CREAT|O_EXCL (atomic on local and NFS v3+ filesystems), generation g = 0 first. Only one
// process can create a given file, so a run is never started twice. The holder rewrites its
// claim's modification time every lease/5 seconds (a heartbeat thread) and deletes it when the
// run ends. A claim is stale when its holder is on this host and its pid is gone, or when it
// was not refreshed for a whole lease (a crashed or unreachable machine). A stale claim of
// generation g is taken over by creating generation g + 1, again with O_EXCL, so of several
// processes that see the same stale claim exactly one wins.
#pragma once

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nl::app {

struct Shard {
  int index = 0, count = 1;  // shard `index` of `count`, 0 <= index < count
  std::string source;        // "--shard" | "SLURM_ARRAY_TASK_ID" | "Open MPI rank" | "" (whole plan)
  bool owns(size_t run_index) const { return static_cast<int>(run_index % count) == index; }
};

// "I/K" with 0 <= I < K; anything else throws UsageError naming the spec.
Shard parse_shard(const std::string& spec);
// --shard if given, else Slurm's array variables (task id minus SLURM_ARRAY_TASK_MIN, of
// SLURM_ARRAY_TASK_COUNT), else Open MPI's OMPI_COMM_WORLD_RANK / _SIZE, else 0 of 1.
Shard resolve_shard(const std::string& spec);

class ClaimBoard {
 public:
  // Claims live in <sweep_dir>/claims; lease_seconds: how long a silent claim stays valid.
  ClaimBoard(const std::filesystem::path& sweep_dir, double lease_seconds);
  ~ClaimBoard();  // stops the heartbeat and releases every claim still held
  ClaimBoard(const ClaimBoard&) = delete;
  ClaimBoard& operator=(const ClaimBoard&) = delete;

  // True if this process now holds the run: it was unclaimed, or its claim was stale.
  // `holder` receives a description of the live claim that made it fail ("host:pid shard I/K").
  bool try_claim(const std::string& run, std::string* holder = nullptr);
  void release(const std::string& run);
  std::string me() const { return me_; }
  void set_shard_label(const std::string& label) { shard_label_ = label; }

 private:
  void heartbeat_loop();
  std::filesystem::path dir_;
  double lease_;
  std::string host_, me_, shard_label_;
  std::mutex mutex_;
  std::vector<std::pair<std::string, std::filesystem::path>> held_;  // run -> claim file
  std::atomic<bool> stop_{false};
  std::thread heartbeat_;
};

}  // namespace nl::app
