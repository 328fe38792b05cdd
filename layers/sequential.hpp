// normlab layers: Sequential, a list of modules run in order with children named "0", "1",
// ... like torch.nn.Sequential (so checkpoint names read "0.weight", "3.bias").
//
// The class itself lives in layers/activation.hpp, next to the activation modules it is
// mostly filled with; this header is the name a reader looks for.
#pragma once

#include "layers/activation.hpp"
