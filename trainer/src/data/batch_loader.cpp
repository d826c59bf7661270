// BatchLoader: batch b of epoch e is a pure function of (seed, e, b), so workers may produce
// batches in any order; next() hands them out in order. Workers claim batch indices up to a bounded
// distance ahead of the consumer; start_epoch and skip bump a generation counter so batches still
// in flight for the old position are dropped.
#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "data.h"
#include "random.h"
#include "sample_pipeline.h"

namespace lowbit::trainer {

using data::Rng;
using data::SamplePipeline;
using data::Stream;

struct BatchLoader::Impl {
  struct ProducedBatch {
    Batch batch;
    std::exception_ptr error;
  };

  Impl(const ImageSet& set, const Preprocess& preprocess, const std::vector<Augmentation>& augmentations,
       int batch_size, bool shuffle, bool drop_last, uint64_t seed)
      : set(set), pipeline(set, preprocess, augmentations), batch_size(batch_size), shuffle(shuffle), seed(seed) {
    const auto full = static_cast<int64_t>(set.size()) / batch_size;
    const bool partial = static_cast<int64_t>(set.size()) % batch_size != 0;
    batch_count = full + (partial && !drop_last ? 1 : 0);
  }

  const ImageSet& set;
  const SamplePipeline pipeline;
  const int batch_size;
  const bool shuffle;
  const uint64_t seed;
  int64_t batch_count = 0;
  int64_t prefetch_depth = 1;  // batches produced ahead of the consumer

  // Shared with the workers and guarded by `mutex` (the consumer thread alone writes `started`).
  std::mutex mutex;
  std::condition_variable work_available, batch_ready;
  bool stopping = false;
  bool started = false;
  int64_t epoch = 0;
  std::vector<int64_t> order;  // the epoch's sample order
  int64_t next_batch = 0;      // what next() returns next
  int64_t next_claim = 0;      // what a worker produces next
  uint64_t generation = 0;
  std::map<int64_t, ProducedBatch> ready;
  std::vector<std::thread> workers;
  SamplePipeline::Scratch caller_scratch;  // for workers = 0

  std::vector<int64_t> epoch_order(int64_t e) const {
    std::vector<int64_t> indices(set.size());
    std::iota(indices.begin(), indices.end(), 0);
    if (shuffle) {
      Rng rng(data::derive_seed(seed, Stream::kEpochOrder, {static_cast<uint64_t>(e)}));
      data::shuffle(indices, rng);
    }
    return indices;
  }

  // Batch `index` of epoch `e` from its sample indices; each sample's randomness comes from its
  // position in the epoch.
  void produce(int64_t e, int64_t index, const std::vector<int64_t>& samples, SamplePipeline::Scratch& scratch,
               Batch& out) const {
    out.n = static_cast<int>(samples.size());
    out.c = pipeline.channels();
    out.h = pipeline.height();
    out.w = pipeline.width();
    const size_t sample_size = pipeline.sample_size();
    const size_t image_size = static_cast<size_t>(set.height) * set.width * set.channels;
    out.images.resize(samples.size() * sample_size);
    out.labels.resize(samples.size());
    for (size_t j = 0; j < samples.size(); ++j) {
      const auto position = static_cast<uint64_t>(index * batch_size + static_cast<int64_t>(j));
      Rng rng(data::derive_seed(seed, Stream::kSample, {static_cast<uint64_t>(e), position}));
      const auto sample = static_cast<size_t>(samples[j]);
      pipeline.run(set.pixels.data() + sample * image_size, rng, scratch, out.images.data() + j * sample_size);
      out.labels[j] = set.labels[sample];
    }
  }

  // Called with the mutex held.
  std::vector<int64_t> batch_samples(int64_t index) const {
    const auto begin = order.begin() + index * batch_size;
    const auto end = order.begin() + std::min<int64_t>((index + 1) * batch_size, static_cast<int64_t>(order.size()));
    return {begin, end};
  }

  // Called with the mutex held: forget produced and in-flight batches, resume at next_batch.
  void restart_production() {
    ++generation;
    ready.clear();
    next_claim = next_batch;
    work_available.notify_all();
  }

  void begin_epoch(int64_t e) {
    std::vector<int64_t> new_order = epoch_order(e);
    std::lock_guard<std::mutex> lock(mutex);
    epoch = e;
    order = std::move(new_order);
    next_batch = 0;
    started = true;
    restart_production();
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    work_available.notify_all();
    for (std::thread& worker : workers) worker.join();
  }

  void worker_loop() {
    SamplePipeline::Scratch scratch;
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      work_available.wait(lock, [&] {
        return stopping || (started && next_claim < batch_count && next_claim < next_batch + prefetch_depth);
      });
      if (stopping) return;
      const int64_t index = next_claim++;
      const uint64_t claimed_generation = generation;
      const int64_t claimed_epoch = epoch;
      const std::vector<int64_t> samples = batch_samples(index);
      lock.unlock();
      ProducedBatch produced;
      try {
        produce(claimed_epoch, index, samples, scratch, produced.batch);
      } catch (...) {
        produced.error = std::current_exception();
      }
      lock.lock();
      if (claimed_generation == generation) {
        ready.emplace(index, std::move(produced));
        batch_ready.notify_all();
      }
    }
  }
};

BatchLoader::BatchLoader(const ImageSet& set, const Preprocess& preprocess, std::vector<Augmentation> augmentations,
                         int batch_size, bool shuffle, bool drop_last, uint64_t seed, int workers) {
  if (batch_size < 1) throw std::invalid_argument("batch size must be positive, got " + std::to_string(batch_size));
  if (workers < 0) throw std::invalid_argument("worker count must not be negative, got " + std::to_string(workers));
  const size_t image_size = static_cast<size_t>(set.height) * set.width * set.channels;
  if (set.pixels.size() != set.size() * image_size)
    throw std::invalid_argument("image set holds " + std::to_string(set.pixels.size()) + " pixel bytes for " +
                                std::to_string(set.size()) + " images of " + std::to_string(image_size));
  impl_ = std::make_unique<Impl>(set, preprocess, augmentations, batch_size, shuffle, drop_last, seed);
  // Two batches in flight per worker keep every worker busy while the consumer takes one.
  impl_->prefetch_depth = std::max(1, 2 * workers);
  try {
    for (int i = 0; i < workers; ++i) impl_->workers.emplace_back([this] { impl_->worker_loop(); });
  } catch (...) {
    impl_->stop_workers();  // the destructor does not run for a throwing constructor
    throw;
  }
}

BatchLoader::~BatchLoader() { impl_->stop_workers(); }

int64_t BatchLoader::batches_per_epoch() const { return impl_->batch_count; }

void BatchLoader::start_epoch(int64_t epoch) { impl_->begin_epoch(epoch); }

void BatchLoader::skip(int64_t batches) {
  if (batches < 0) throw std::invalid_argument("cannot skip a negative number of batches");
  if (!impl_->started) impl_->begin_epoch(0);
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const int64_t remaining = impl_->batch_count - impl_->next_batch;
  impl_->next_batch += std::min(batches, remaining);
  impl_->restart_production();
}

bool BatchLoader::next(Batch& out) {
  Impl& impl = *impl_;
  if (!impl.started) impl.begin_epoch(0);
  if (impl.workers.empty()) {
    if (impl.next_batch >= impl.batch_count) return false;
    impl.produce(impl.epoch, impl.next_batch, impl.batch_samples(impl.next_batch), impl.caller_scratch, out);
    ++impl.next_batch;
    return true;
  }
  std::unique_lock<std::mutex> lock(impl.mutex);
  if (impl.next_batch >= impl.batch_count) return false;
  impl.batch_ready.wait(lock, [&] { return impl.ready.count(impl.next_batch) != 0; });
  auto produced = impl.ready.extract(impl.next_batch);
  ++impl.next_batch;
  impl.work_available.notify_all();
  lock.unlock();
  if (produced.mapped().error) std::rethrow_exception(produced.mapped().error);
  out = std::move(produced.mapped().batch);
  return true;
}

}  // namespace lowbit::trainer
