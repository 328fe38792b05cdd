// Test helpers for PyTorch fixtures: loading, case parameters, and require_close. See fixtures.hpp.
#include "tests/support/fixtures.hpp"

#include <algorithm>
#include <cmath>

#include <catch2/catch.hpp>
#include <fmt/format.h>

namespace nl::test {

TensorFile load_fixture(const std::string& relative_path) {
  return load_safetensors(std::string(NORMLAB_FIXTURE_DIR) + "/" + relative_path);
}

std::vector<std::string> fixture_cases(const TensorFile& file) {
  std::vector<std::string> cases;
  for (const auto& [key, value] : file.metadata)
    if (!key.empty() && key[0] != '_') cases.push_back(key);  // std::map: already sorted
  return cases;
}

nlohmann::json case_params(const TensorFile& file, const std::string& case_name) {
  const std::string& text = file.meta(case_name);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat(file.path, ": metadata of case '", case_name, "' is not valid JSON: ", e.what()));
  }
}

// "[1, 0, 2]" for flat index 5 of shape [2, 2, 3]: mismatches are easier to read this way.
static std::string unravel(int64_t flat, const Shape& shape) {
  Shape idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  return shape_str(idx);
}

std::string compare_close(const Tensor& actual, const Tensor& expected, double atol, double rtol,
                          const std::string& what) {
  if (!actual.defined() || !expected.defined())
    return fmt::format("{}: {} tensor is undefined", what, actual.defined() ? "expected" : "actual");
  if (actual.shape() != expected.shape())
    return fmt::format("{}: shape {} but expected {}", what, shape_str(actual.shape()), shape_str(expected.shape()));

  const std::vector<float> a = actual.to_vector(), e = expected.to_vector();
  constexpr int kShown = 8;  // like llm.c: the first few mismatches tell the story
  int64_t mismatches = 0, worst = -1;
  double max_diff = 0.0;
  std::string shown;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = e[i];
    const double diff = (x == y) ? 0.0 : std::fabs(x - y);  // x == y covers equal infinities
    const bool ok = x == y || diff <= atol + rtol * std::fabs(y);  // false for NaN
    // The worst element: the largest diff, or the first NaN (after which nothing is worse).
    if (!std::isnan(max_diff) && (worst < 0 || std::isnan(diff) || diff > max_diff)) {
      max_diff = diff;
      worst = static_cast<int64_t>(i);
    }
    if (!ok) {
      if (mismatches < kShown)
        shown += fmt::format("  at {} (flat {}): actual {:.8g}, expected {:.8g}, diff {:.3g}\n",
                             unravel(static_cast<int64_t>(i), expected.shape()), i, x, y, diff);
      ++mismatches;
    }
  }
  if (mismatches == 0) return "";
  std::string report = fmt::format("{}: {} of {} elements differ (shape {}, atol {:g}, rtol {:g})\n", what, mismatches,
                                   a.size(), shape_str(expected.shape()), atol, rtol);
  report += shown;
  if (mismatches > kShown) report += fmt::format("  ... and {} more\n", mismatches - kShown);
  report += fmt::format("  max abs diff {:.3g} at {}", max_diff, unravel(worst, expected.shape()));
  return report;
}

void require_close(const Tensor& actual, const Tensor& expected, double atol, double rtol, const std::string& what) {
  const std::string report = compare_close(actual, expected, atol, rtol, what);
  if (!report.empty()) FAIL(report);
  SUCCEED(what);
}

}  // namespace nl::test
