// normlab data: a DataLoader turning an ImageDataset into shuffled, augmented, normalized
// float batches, prepared one batch ahead on a background thread.
//
// Determinism: the content of batch i of epoch e depends only on (seed, e, i), never on
// thread timing or on what was loaded before:
//   * the example order of epoch e is a permutation drawn from Generator(mix(seed, e));
//   * the augmentation of the example at position p of that order draws from its own
//     Generator(mix(seed, e, p)), so it does not depend on which batch or part it lands in.
// With classes_per_batch = K > 0 the order of epoch e comes from the same Generator but
// groups the examples into batches of exactly K classes (data/class_batches.hpp).
// So a run resumed with start_epoch(e, i) sees exactly the batches the original run saw.
//
// Data parallelism: with part_count = K, every batch of batch_size examples is cut into K
// contiguous parts and this loader yields part part_index only. K loaders with part_index
// 0..K-1 (one per rank) together yield exactly the batches of one loader with part_count 1,
// example for example, augmentation included.
//
// Usage:
//   DataLoader loader(split.train, {.batch_size = 128, .shuffle = true, .seed = 1,
//                                   .augment = Augmentation::cifar(), .normalization = norm});
//   for (int64_t e = 0; e < epochs; ++e) {
//     loader.start_epoch(e);
//     Batch b;
//     while (loader.next(b)) { /* b.x: [B, C, H, W] float32, b.y: B labels */ }
//   }
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset.hpp"
#include "data/transforms.hpp"

namespace nl::data {

struct Batch {
  Tensor x;                      // [B, C, H, W] float32, normalized
  std::vector<int32_t> y;        // B labels
  int64_t epoch = 0, index = 0;  // which batch of which epoch this is
  std::vector<int64_t> indices;  // the dataset examples in it, in order
  int64_t batch_examples = 0;    // examples in the whole batch (all parts); x holds this loader's part
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;       // skip the last, smaller batch
  int64_t classes_per_batch = 0;  // > 0: every batch from exactly K classes (needs shuffle;
                                  // the examples no K-class batch can take are skipped)
  uint64_t seed = 0;
  Augmentation augment{};       // none by default (use none for evaluation)
  Normalization normalization;  // default (empty): p / 255
  bool background = true;       // prepare the next batch on a worker thread
  int64_t part_index = 0;       // data parallelism: yield part part_index of part_count
  int64_t part_count = 1;       //   of each batch (rank r of K ranks)
};

// Deterministic seed derivation (SplitMix64 finalizer over the parts).
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0);

class DataLoader {
 public:
  // `dataset` is referenced, not copied: it must outlive the loader. Starts at epoch 0.
  DataLoader(const ImageDataset& dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t num_examples() const { return dataset_.n; }
  const ImageDataset& dataset() const { return dataset_; }
  const LoaderOptions& options() const { return options_; }

  // Position the loader at batch `batch_index` of `epoch` (0 for a fresh epoch; a saved
  // position for a resumed run). Discards any batch prepared in advance.
  void start_epoch(int64_t epoch, int64_t batch_index = 0);
  void next_epoch() { start_epoch(epoch_ + 1); }
  // The next batch of the current epoch; false once the epoch is exhausted.
  bool next(Batch& out);

  int64_t epoch() const { return epoch_; }
  int64_t batch_index() const { return consume_next_; }  // index of the batch next() returns

  // The example order of an epoch (identity when shuffle is off; K-class batches first, then
  // the skipped leftovers, with classes_per_batch).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Build batch `index` of an epoch whose order is `order`, synchronously (what the worker runs).
  Batch make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t index) const;

 private:
  void worker_loop();

  const ImageDataset& dataset_;
  LoaderOptions options_;
  std::vector<float> lut_;  // normalization lookup table, C x 256
  int64_t batches_per_epoch_ = 0;

  // State shared with the worker, guarded by mutex_.
  std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;  // bumped by start_epoch: in-flight work of an older one is dropped
  int64_t epoch_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
  int64_t produce_next_ = 0, consume_next_ = 0;
  bool slot_full_ = false;  // the one-slot queue
  Batch slot_;
  std::exception_ptr slot_error_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace nl::data
