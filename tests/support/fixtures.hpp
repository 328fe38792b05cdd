// Test helpers for comparing normlab against PyTorch fixtures (llm.c's test_gpt2.c idea).
//
// Fixtures are safetensors files under tests/fixtures/ written by scripts/make_fixtures.py
// with PyTorch. One file holds several cases; a case's tensors are named "<case>.<role>"
// ("case0.x", "case0.out", "case0.dout", "case0.grad_x", ...) and its parameters are a
// JSON string in the file's metadata under the case name. Metadata keys starting with "_"
// (e.g. "_generator") describe the file, not a case. Integer inputs (class ids, embedding
// ids) are stored as F32 holding exact integer values.
//
//   TensorFile f = load_fixture("ops/softmax.safetensors");
//   for (const std::string& c : fixture_cases(f)) {
//     nlohmann::json p = case_params(f, c);
//     Tensor y = softmax(f.get(c + ".x"), p["dim"]);
//     require_close(y, f.get(c + ".out"), 1e-5, 1e-4, c + " softmax output");
//   }
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/safetensors.hpp"
#include "core/tensor.hpp"

namespace nl::test {

// Loads NORMLAB_FIXTURE_DIR/<relative_path> (throws nl::Error if missing or corrupt).
TensorFile load_fixture(const std::string& relative_path);

// The case names in a fixture file: its metadata keys not starting with "_", sorted.
std::vector<std::string> fixture_cases(const TensorFile& file);

// The parameters of `case_name`, parsed from its metadata JSON string.
nlohmann::json case_params(const TensorFile& file, const std::string& case_name);

// Compares two float tensors elementwise with PyTorch's allclose rule
//   |actual - expected| <= atol + rtol * |expected|
// (NaN never matches; equal infinities do). Returns "" when they are close, otherwise a
// report: the shapes if they differ, else the number of mismatches, the first ones as
// (index, actual, expected, diff), and the max abs diff with where it happened.
std::string compare_close(const Tensor& actual, const Tensor& expected, double atol, double rtol,
                          const std::string& what);

// Catch2 assertion around compare_close: FAILs the current test with the report (`what`
// names the quantity, e.g. "conv2d case3 grad_w"), or counts one passed assertion.
void require_close(const Tensor& actual, const Tensor& expected, double atol, double rtol, const std::string& what);

}  // namespace nl::test
