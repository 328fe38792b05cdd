// See require_gradcheck.hpp.
#include "tests/support/require_gradcheck.hpp"

#include <catch2/catch.hpp>

namespace nl::test {

void require_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
                       const GradcheckOptions& options) {
  const GradcheckResult r = gradcheck(fn, inputs, options);
  INFO(r.report);
  REQUIRE(r.ok);
}

}  // namespace nl::test
