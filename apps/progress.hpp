// normlab apps: training progress on stderr.
//
// On a terminal (isatty(stderr)) one status line is redrawn in place at most ~10 times a
// second: a bar, step/total, epoch, loss, accuracy, throughput and ETA. When stderr is a
// file or a pipe (CI logs, `2> log.txt`), a bar full of '\r' would be unreadable, so a
// plain line is printed every `log_every` steps instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace nl::app {

struct ProgressStats {
  int64_t step = 0;           // completed steps (1-based after the first update)
  int64_t epoch = 0;          // 0-based
  double loss = 0.0;          // running mean over the current logging window
  double accuracy = -1.0;     // in [0, 1]; < 0 = not shown
  double items_per_second = 0.0;
  double lr = 0.0;
};

class Progress {
 public:
  // total_steps: the run's planned steps (for the bar and ETA); unit: "img" or "tok".
  // first_step: where this process starts (a resumed run), so ETA uses this process's speed.
  // quiet: prints nothing (ranks 1.. of a data-parallel run; rank 0 reports for all).
  Progress(int64_t total_steps, std::string unit, int64_t log_every, int64_t first_step = 0, bool quiet = false);
  ~Progress();
  void update(const ProgressStats& stats);
  // Print a full line (e.g. an evaluation result) without garbling the bar.
  void message(const std::string& line);
  void finish();  // ends the bar's line
  bool interactive() const { return interactive_; }

 private:
  std::string format_line(const ProgressStats& s, bool with_bar) const;

  int64_t total_, log_every_, first_step_;
  std::string unit_;
  bool interactive_, quiet_;
  bool bar_visible_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1h02m", "3m05s", "12s"
std::string format_duration(double seconds);

}  // namespace nl::app
