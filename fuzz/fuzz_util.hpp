// normlab fuzz: helpers shared by the libFuzzer targets (and by tests/test_regressions.cpp,
// which compiles the same targets into the normal test build to replay saved inputs).
//
// The readers under test take a path (that is what users give them), so a target writes the
// input to a scratch file and hands that path over; /dev/shm keeps it in memory. The
// contract every target checks: a reader either returns a result that satisfies its
// documented invariants, or throws nl::Error naming the file. Any other exception, a crash,
// a sanitizer report or a failed invariant (FUZZ_REQUIRE) is a bug.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>

namespace nl::fuzz {

// Scratch files made by this process; removed when it exits normally.
inline std::set<std::string>& scratch_files() {
  static std::set<std::string>* files = [] {
    auto* s = new std::set<std::string>;
    std::atexit([] {
      for (const std::string& p : scratch_files()) std::remove(p.c_str());
    });
    return s;
  }();
  return *files;
}

// A file name unique to this process and `tag`, in /dev/shm if writable, else /tmp.
inline std::string scratch_path(const char* tag) {
  const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string path = std::string(dir) + "/normlab_fuzz_" + tag + "_" + std::to_string(getpid());
  scratch_files().insert(path);
  return path;
}

inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("fuzz: cannot create scratch file " + path);
  const bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
  if (std::fclose(f) != 0 || !ok) throw std::runtime_error("fuzz: cannot write scratch file " + path);
}

// Thrown by FUZZ_REQUIRE when built into the tests (NORMLAB_FUZZ_REPLAY), so Catch reports it.
struct InvariantBroken : std::logic_error {
  using std::logic_error::logic_error;
};

}  // namespace nl::fuzz

// An invariant of the reader's result that must hold. Under libFuzzer a violation aborts so
// the input is saved as a crash; in the replay test it throws nl::fuzz::InvariantBroken.
#ifdef NORMLAB_FUZZ_REPLAY
#define FUZZ_REQUIRE(cond)                                                                           \
  do {                                                                                               \
    if (!(cond))                                                                                     \
      throw nl::fuzz::InvariantBroken(std::string("FUZZ_REQUIRE failed: " #cond " (") + __FILE__ + \
                                      ":" + std::to_string(__LINE__) + ")");                        \
  } while (0)
#else
#define FUZZ_REQUIRE(cond)                                                                    \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "FUZZ_REQUIRE failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)
#endif
