// normlab data: DataLoader with a one-batch-ahead background thread (see loader.hpp).
//
// The producer/consumer protocol, all under mutex_:
//   worker:  waits until the slot is empty and batches remain, takes (generation, epoch,
//            index, order), builds the batch *without* the lock, then stores it only if the
//            generation is unchanged (start_epoch was not called meanwhile).
//   next():  waits until the slot is full, takes the batch, frees the slot.
// Because the worker produces indices strictly in order and the batch content is a pure
// function of (seed, epoch, index), timing can change only *when* a batch is ready, never
// *what* it contains.
#include "data/loader.hpp"

#include <numeric>

#include "data/class_batches.hpp"

namespace nl::data {

namespace {
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
// Domain tags so the order stream and the augmentation streams never coincide.
constexpr uint64_t kOrderStream = 0x6f72646572ull;   // "order"
constexpr uint64_t kAugmentStream = 0x6175676dull;   // "augm"
}  // namespace

uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ a);
  h = splitmix64(h ^ b);
  return splitmix64(h ^ c);
}

DataLoader::DataLoader(const ImageDataset& dataset, LoaderOptions options)
    : dataset_(dataset), options_(std::move(options)) {
  const int64_t n = dataset_.n, bs = options_.batch_size;
  NL_CHECK(bs > 0, "DataLoader('", dataset_.name, "'): batch_size must be positive, got ", bs);
  NL_CHECK(n > 0, "DataLoader('", dataset_.name, "'): the dataset is empty");
  NL_CHECK(static_cast<int64_t>(dataset_.pixels.size()) == n * dataset_.image_size() &&
               static_cast<int64_t>(dataset_.labels.size()) == n,
           "DataLoader('", dataset_.name, "'): inconsistent dataset (pixels/labels do not match n = ", n, ")");
  NL_CHECK(options_.augment.crop_padding >= 0, "DataLoader: crop_padding must be >= 0");
  NL_CHECK(options_.part_count >= 1 && options_.part_index >= 0 && options_.part_index < options_.part_count,
           "DataLoader: part ", options_.part_index, " of ", options_.part_count, " does not exist");
  if (options_.classes_per_batch != 0) {
    NL_CHECK(options_.shuffle, "DataLoader('", dataset_.name, "'): classes_per_batch needs shuffle");
    batches_per_epoch_ =
        class_batches_per_epoch(dataset_.labels, dataset_.num_classes, bs, options_.classes_per_batch);
    NL_CHECK(batches_per_epoch_ > 0, "DataLoader('", dataset_.name, "'): not even one batch of ", bs,
             " examples from ", options_.classes_per_batch, " classes can be made from ", n, " examples");
  } else {
    batches_per_epoch_ = options_.drop_last ? n / bs : (n + bs - 1) / bs;
  }
  NL_CHECK(batches_per_epoch_ > 0, "DataLoader('", dataset_.name, "'): drop_last with batch_size ", bs,
           " larger than the dataset (", n, " examples) would yield no batches");
  if (options_.normalization.scale.empty()) options_.normalization = Normalization::unit_range(dataset_.channels);
  NL_CHECK(options_.normalization.channels() == dataset_.channels, "DataLoader('", dataset_.name,
           "'): normalization has ", options_.normalization.channels(), " channels, images have ",
           dataset_.channels);
  lut_ = normalization_lut(options_.normalization);
  start_epoch(0);
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  Generator gen(mix_seed(options_.seed, kOrderStream, static_cast<uint64_t>(epoch)));
  if (options_.classes_per_batch != 0)
    return class_batches_order(dataset_.labels, dataset_.num_classes, options_.batch_size, options_.classes_per_batch,
                               gen);
  std::vector<int64_t> order(dataset_.n);
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) {
    for (int64_t i = dataset_.n - 1; i > 0; --i) std::swap(order[i], order[gen.below(i + 1)]);  // Fisher-Yates
  }
  return order;
}

Batch DataLoader::make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t index) const {
  const int64_t bs = options_.batch_size;
  const int64_t batch_begin = index * bs;
  const int64_t batch_count = std::min(bs, dataset_.n - batch_begin);
  NL_CHECK(index >= 0 && index < batches_per_epoch_ && batch_count > 0, "DataLoader: batch index ", index,
           " is outside 0..", batches_per_epoch_ - 1);
  // This loader's part of the batch: [begin, begin + count) of the epoch order.
  const int64_t K = options_.part_count, r = options_.part_index;
  const int64_t begin = batch_begin + batch_count * r / K;
  const int64_t count = batch_begin + batch_count * (r + 1) / K - begin;
  NL_CHECK(count > 0, "DataLoader('", dataset_.name, "'): batch ", index, " has ", batch_count,
           " examples, too few to give one to each of ", K, " parts");
  const int64_t C = dataset_.channels, H = dataset_.height, W = dataset_.width, sz = dataset_.image_size();

  Batch b;
  b.epoch = epoch;
  b.index = index;
  b.batch_examples = batch_count;
  b.x = Tensor::empty({count, C, H, W});
  b.y.resize(count);
  b.indices.assign(order.begin() + begin, order.begin() + begin + count);
  float* dst = b.x.data();
  const bool augment = options_.augment.enabled();
  std::vector<uint8_t> tmp(augment ? sz : 0);
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = b.indices[k];
    const uint8_t* img = dataset_.image(i);
    if (augment) {
      Generator gen(mix_seed(options_.seed, kAugmentStream, static_cast<uint64_t>(epoch),
                             static_cast<uint64_t>(begin + k)));
      random_augment(img, tmp.data(), C, H, W, options_.augment, gen);
      img = tmp.data();
    }
    normalize_images(img, 1, C, H * W, lut_, dst + k * sz);
    b.y[k] = dataset_.labels[i];
  }
  return b;
}

void DataLoader::start_epoch(int64_t epoch, int64_t batch_index) {
  NL_CHECK(epoch >= 0, "DataLoader::start_epoch: epoch must be >= 0, got ", epoch);
  NL_CHECK(batch_index >= 0 && batch_index <= batches_per_epoch_, "DataLoader::start_epoch: batch index ",
           batch_index, " is outside 0..", batches_per_epoch_);
  auto order = std::make_shared<const std::vector<int64_t>>(epoch_order(epoch));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    produce_next_ = consume_next_ = batch_index;
    slot_full_ = false;
    slot_ = Batch{};
    slot_error_ = nullptr;
  }
  if (options_.background && !worker_.joinable()) worker_ = std::thread(&DataLoader::worker_loop, this);
  cv_.notify_all();
}

bool DataLoader::next(Batch& out) {
  if (consume_next_ >= batches_per_epoch_) return false;
  if (!options_.background) {
    out = make_batch(*order_, epoch_, consume_next_);
    ++consume_next_;
    return true;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return slot_full_; });
  std::exception_ptr error = slot_error_;
  out = std::move(slot_);
  slot_ = Batch{};
  slot_error_ = nullptr;
  slot_full_ = false;
  ++consume_next_;
  lock.unlock();
  cv_.notify_all();  // the worker may start on the following batch
  if (error) std::rethrow_exception(error);
  return true;
}

void DataLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || (!slot_full_ && produce_next_ < batches_per_epoch_); });
    if (stop_) return;
    const uint64_t generation = generation_;
    const int64_t epoch = epoch_, index = produce_next_;
    std::shared_ptr<const std::vector<int64_t>> order = order_;
    lock.unlock();

    Batch batch;
    std::exception_ptr error;
    try {
      batch = make_batch(*order, epoch, index);
    } catch (...) {
      error = std::current_exception();  // handed to next(), which rethrows it
    }

    lock.lock();
    if (generation != generation_) continue;  // start_epoch moved on: drop this batch
    slot_ = std::move(batch);
    slot_error_ = error;
    slot_full_ = true;
    ++produce_next_;
    cv_.notify_all();
  }
}

}  // namespace nl::data
