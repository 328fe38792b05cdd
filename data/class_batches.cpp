// normlab data: K classes per batch (see class_batches.hpp).
#include "data/class_batches.hpp"

#include <algorithm>
#include <numeric>

#include "core/tensor.hpp"

namespace nl::data {

namespace {

// Examples the j-th chosen class of a batch gives (j = 0..K-1): the larger quotas first.
int64_t quota(int64_t batch_size, int64_t classes_per_batch, int64_t j) {
  return batch_size / classes_per_batch + (j < batch_size % classes_per_batch ? 1 : 0);
}

// The K classes with the most examples left, fullest first (ties by `priority`), if they can
// fill a batch; empty otherwise. Fullest first against larger quota first: if these K
// cannot fill a batch, no K classes can.
std::vector<int32_t> choose_classes(const std::vector<int64_t>& left, const std::vector<uint64_t>& priority,
                                    int64_t batch_size, int64_t classes_per_batch) {
  std::vector<int32_t> classes(left.size());
  std::iota(classes.begin(), classes.end(), 0);
  std::sort(classes.begin(), classes.end(), [&](int32_t a, int32_t b) {
    return left[a] != left[b] ? left[a] > left[b] : priority[a] < priority[b];
  });
  classes.resize(classes_per_batch);
  for (int64_t j = 0; j < classes_per_batch; ++j)
    if (left[classes[j]] < quota(batch_size, classes_per_batch, j)) return {};
  return classes;
}

std::vector<int64_t> class_sizes(const std::vector<int32_t>& labels, int32_t num_classes) {
  std::vector<int64_t> sizes(num_classes, 0);
  for (int32_t y : labels) {
    NL_CHECK(y >= 0 && y < num_classes, "classes per batch: label ", y, " is outside 0..", num_classes - 1);
    ++sizes[y];
  }
  return sizes;
}

}  // namespace

void check_classes_per_batch(int64_t classes_per_batch, int32_t num_classes, int64_t batch_size) {
  NL_CHECK(classes_per_batch >= 1, "classes per batch must be >= 1 (0 = off), got ", classes_per_batch);
  NL_CHECK(classes_per_batch <= num_classes, "classes per batch (", classes_per_batch, ") exceeds the ", num_classes,
           " classes of the dataset");
  NL_CHECK(classes_per_batch <= batch_size, "classes per batch (", classes_per_batch,
           ") exceeds the batch size (", batch_size, "): every class of a batch needs at least one example");
}

int64_t class_batches_per_epoch(const std::vector<int32_t>& labels, int32_t num_classes, int64_t batch_size,
                                int64_t classes_per_batch) {
  check_classes_per_batch(classes_per_batch, num_classes, batch_size);
  std::vector<int64_t> left = class_sizes(labels, num_classes);
  const std::vector<uint64_t> no_priority(num_classes, 0);  // ties do not change the counts left
  int64_t batches = 0;
  for (;; ++batches) {
    const auto chosen = choose_classes(left, no_priority, batch_size, classes_per_batch);
    if (chosen.empty()) return batches;
    for (int64_t j = 0; j < classes_per_batch; ++j) left[chosen[j]] -= quota(batch_size, classes_per_batch, j);
  }
}

std::vector<int64_t> class_batches_order(const std::vector<int32_t>& labels, int32_t num_classes, int64_t batch_size,
                                         int64_t classes_per_batch, Generator& gen) {
  check_classes_per_batch(classes_per_batch, num_classes, batch_size);
  auto shuffle = [&gen](auto begin, auto end) {  // Fisher-Yates
    for (auto n = end - begin; n > 1; --n) std::swap(begin[n - 1], begin[gen.below(n)]);
  };
  std::vector<std::vector<int64_t>> members(num_classes);
  for (int64_t i = 0; i < static_cast<int64_t>(labels.size()); ++i) members[labels[i]].push_back(i);
  for (auto& m : members) shuffle(m.begin(), m.end());
  std::vector<int64_t> left = class_sizes(labels, num_classes), used(num_classes, 0);

  std::vector<int64_t> order;
  order.reserve(labels.size());
  std::vector<uint64_t> priority(num_classes);
  while (true) {
    for (auto& p : priority) p = gen.next_u64();
    const auto chosen = choose_classes(left, priority, batch_size, classes_per_batch);
    if (chosen.empty()) break;
    const size_t batch_begin = order.size();
    for (int64_t j = 0; j < classes_per_batch; ++j) {
      const int32_t c = chosen[j];
      const int64_t q = quota(batch_size, classes_per_batch, j);
      order.insert(order.end(), members[c].begin() + used[c], members[c].begin() + used[c] + q);
      used[c] += q;
      left[c] -= q;
    }
    shuffle(order.begin() + batch_begin, order.end());
  }
  for (int32_t c = 0; c < num_classes; ++c)  // the leftovers, after the last full batch
    order.insert(order.end(), members[c].begin() + used[c], members[c].end());
  return order;
}

}  // namespace nl::data
