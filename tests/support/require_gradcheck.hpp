// Catch2 assertion around core/gradcheck.hpp: fails the current test with the gradcheck's
// report (first mismatches, max abs error) when analytic and numeric gradients disagree.
#pragma once

#include <functional>
#include <vector>

#include "core/gradcheck.hpp"
#include "core/tensor.hpp"

namespace nl::test {

void require_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
                       const GradcheckOptions& options = {});

}  // namespace nl::test
