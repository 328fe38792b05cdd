// normlab data: non-i.i.d. batches, every batch drawn from exactly K classes
// (`normlab train --classes-per-batch K`). BatchNorm assumes the examples of a batch are a
// fair sample of the data; batches of few classes break that assumption on purpose (the
// Batch Renormalization paper's non-i.i.d. experiment), while batch-independent norms
// (GN, LN, ...) do not care.
//
// The rule, for batch size B and K classes:
//   * each class's examples are shuffled once per epoch and used front to back;
//   * for each batch, the K classes with the most examples still unused this epoch are
//     chosen (ties broken by a fresh random draw per batch); the first B mod K of them give
//     ceil(B/K) examples, the others floor(B/K), so the batch is as even as B allows;
//   * the B examples are shuffled within the batch (so sub-batches such as Ghost BN's or
//     --stat-batch groups are not single-class by construction);
//   * the epoch ends when the K fullest classes can no longer fill a batch. The examples
//     left then are not visited in that epoch: on a balanced dataset fewer than
//     (num_classes + K) x ceil(B/K), different ones each epoch since the class orders are
//     reshuffled (MNIST's 60,000 training images: 96 at B = 32, K = 2; 352 at B = 64, K = 1;
//     plain shuffling with drop_last skips 0 and 32). A class holding more than 1/K of the data leaves its surplus out: a batch
//     never holds more than ceil(B/K) examples of one class.
// Draining the fullest classes first keeps every class emptying at the same pace, which is
// what makes an epoch visit nearly every example once. Only the class sizes decide when an
// epoch ends (ties change which class is picked, never the counts left), so every epoch
// has the same number of batches whatever the seed: class_batches_per_epoch().
//
// Determinism: the order is a pure function of the Generator passed in; the DataLoader seeds
// it from (seed, epoch), so batch i of epoch e depends only on (seed, e, i), as without K.
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.hpp"

namespace nl::data {

// Throws nl::Error naming the problem: K < 1, K > num_classes, K > B.
void check_classes_per_batch(int64_t classes_per_batch, int32_t num_classes, int64_t batch_size);

// How many full K-class batches one epoch yields (0 if not even one can be made).
int64_t class_batches_per_epoch(const std::vector<int32_t>& labels, int32_t num_classes, int64_t batch_size,
                                int64_t classes_per_batch);

// The epoch's example order: class_batches_per_epoch() batches of B examples, each from
// exactly K classes, then the examples left over (a permutation of 0..n-1 in all).
std::vector<int64_t> class_batches_order(const std::vector<int32_t>& labels, int32_t num_classes, int64_t batch_size,
                                         int64_t classes_per_batch, Generator& gen);

}  // namespace nl::data
