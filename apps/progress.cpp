// normlab apps: the progress bar / log lines. See progress.hpp.
#include "apps/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace nl::app {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

Progress::Progress(int64_t total_steps, std::string unit, int64_t log_every, int64_t first_step, bool quiet)
    : total_(total_steps), log_every_(log_every > 0 ? log_every : 50), first_step_(first_step),
      unit_(std::move(unit)), interactive_(isatty(STDERR_FILENO) == 1), quiet_(quiet),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() { finish(); }

std::string Progress::format_line(const ProgressStats& s, bool with_bar) const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t done_here = s.step - first_step_;
  const double eta = done_here > 0 ? elapsed / done_here * (total_ - s.step) : NAN;
  std::string line;
  if (with_bar) {
    constexpr int kWidth = 24;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * s.step / total_) : 0;
    line += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
  }
  line += fmt::format("step {}/{} epoch {} loss {:.4f}", s.step, total_, s.epoch + 1, s.loss);
  if (s.accuracy >= 0) line += fmt::format(" acc {:.2f}%", 100.0 * s.accuracy);
  line += fmt::format(" lr {:.3g} {:.0f} {}/s ETA {}", s.lr, s.items_per_second, unit_, format_duration(eta));
  return line;
}

void Progress::update(const ProgressStats& s) {
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  if (interactive_) {
    // ~10 redraws a second: often enough to look live, rare enough to cost nothing.
    if (s.step != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    // \r returns to the line start, \x1b[K clears what a longer previous line left behind.
    std::fprintf(stderr, "\r%s\x1b[K", format_line(s, true).c_str());
    std::fflush(stderr);
    bar_visible_ = true;
  } else if (s.step % log_every_ == 0 || s.step == total_) {
    std::fprintf(stderr, "%s\n", format_line(s, false).c_str());
    std::fflush(stderr);
  }
}

void Progress::message(const std::string& line) {
  if (quiet_) return;
  if (bar_visible_) std::fprintf(stderr, "\r\x1b[K");
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  bar_visible_ = false;
}

void Progress::finish() {
  if (bar_visible_) std::fprintf(stderr, "\n");
  bar_visible_ = false;
}

}  // namespace nl::app
