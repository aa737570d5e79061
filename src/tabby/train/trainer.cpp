// fit() in named pieces: a Trainer holds what lasts across epochs (the
// checkpointed state, the best weights, the run writer); a phase builds its
// optimiser, callbacks and loaders; an epoch is train_one_epoch
// (train_epoch.h), then validation, then the callbacks, then the files.
#include "tabby/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "tabby/distributed/replica_sync.h"
#include "tabby/distributed/shard.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/run/run_files.h"
#include "tabby/train/callbacks.h"
#include "tabby/train/checkpoint.h"
#include "tabby/train/collapse.h"
#include "tabby/train/criterion.h"
#include "tabby/train/ema.h"
#include "tabby/inference/evaluate.h"
#include "tabby/train/optimizer.h"
#include "tabby/train/param_groups.h"
#include "tabby/inference/precision.h"
#include "tabby/train/schedule.h"
#include "tabby/train/run.h"
#include "tabby/train/run_writer.h"
#include "tabby/train/train_epoch.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"

namespace tabby {

namespace {

constexpr int64_t kDeviceImageCacheLimitBytes = int64_t{8} << 30;

struct Phase {
  TrainPhase kind;
  int first_epoch;  // 1-based, inclusive
  int last_epoch;
  double lr;
};

std::vector<Phase> plan_phases(const TrainOptions& o, const nn::NetworkImpl& net) {
  std::vector<Phase> phases = {{TrainPhase::train, 1, o.epochs, o.lr}};
  if (o.has_fine_tune()) {
    if (!net.backbone()) throw UsageError("--fine-tune-epochs needs a model with a backbone");
    phases.push_back({TrainPhase::fine_tune, o.epochs + 1, o.total_epochs(), o.fine_tune_lr});
  }
  return phases;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// What a phase's epochs read: the decoded images, or (feature cache) the outputs
// of the frozen prefix, computed once per image.
struct EpochSources {
  RowSource train, validation;  // validation undefined without validation data
  size_t prefix = 0;                // layers already applied to the sources
};

// Each rank of a data-parallel job computes its share of the rows (distributed/shard.h).
torch::Tensor prefix_outputs(nn::NetworkImpl& net, const RowSource& images, size_t prefix, const TrainOptions& o,
                             const torch::Device& device, const std::string& what, Collective* group) {
  if (group) return compute_prefix_outputs_sharded(net, images, prefix, device, o.batch_size, what, *group);
  return compute_prefix_outputs(net, images, prefix, device, o.batch_size, what);
}

EpochSources feature_cache_sources(nn::NetworkImpl& net, const ImageCache& train, const ImageCache* validation,
                                   size_t prefix, const TrainOptions& o, const torch::Device& device,
                                   Collective* group) {
  const auto t0 = std::chrono::steady_clock::now();
  EpochSources s;
  s.prefix = prefix;
  s.train = prefix_outputs(net, train.rows(), prefix, o, device, "training images", group);
  if (validation) s.validation = prefix_outputs(net, validation->rows(), prefix, o, device, "validation images", group);
  log::infof("feature cache: the frozen backbone's outputs were computed once ({} images, {}); each epoch "
             "trains only the layers after it",
             train.size() + (validation ? validation->size() : 0), format_duration(seconds_since(t0)));
  return s;
}

EpochSources prepare_sources(nn::NetworkImpl& net, const ImageCache& train, const ImageCache* validation,
                             const TrainOptions& o, const torch::Device& device, Collective* group) {
  // Mixing blends images; the features of a blend are not the blend of features.
  const size_t prefix = o.feature_cache == Toggle::off || o.mixes_images() ? 0 : net.cacheable_prefix();
  if (o.feature_cache == Toggle::on && o.mixes_images()) {
    log::warn("--feature-cache on: not possible with --mixup or --cutmix, which mix the images");
  } else if (o.feature_cache == Toggle::on && prefix == 0) {
    log::warn("--feature-cache on: not possible for this model (augmentation before the backbone, or a "
              "trainable backbone); computing every layer every epoch");
  }
  if (prefix > 0) return feature_cache_sources(net, train, validation, prefix, o, device, group);
  EpochSources s{train.rows(), validation ? validation->rows() : RowSource(), 0};
  // Decoded images that fit comfortably live on the GPU: a batch is then a gather
  // there, with no host copy per step. Larger sets stream from pinned host memory.
  const int64_t bytes = s.train.nbytes() + (validation ? s.validation.nbytes() : 0);
  if (device.is_cuda() && !s.train.streamed() && bytes <= kDeviceImageCacheLimitBytes) {
    s.train = s.train.to(device);
    if (validation) s.validation = s.validation.to(device);
    log::infof("image cache on {}: {:.0f} MiB of uint8 images", device.str(), bytes / 1048576.0);
  }
  return s;
}

// Everything that lives for one phase.
struct PhaseRun {
  const Phase& phase;
  std::vector<torch::Tensor> params;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  double lr;                  // the phase's base rate (lowered by a plateau)
  std::vector<double> ratios;  // of each parameter group (train/param_groups.h)
  EarlyStopping early;
  ReduceLrOnPlateau plateau;
  EpochSources sources;
  std::unique_ptr<BatchLoader> train_loader, val_loader;
  std::unique_ptr<GradientSync> gradients;  // data parallel only
  std::optional<LrSchedule> schedule;       // per step; none: the base rate throughout
  double step_lr = 0;                       // the rate of the last step
};

class Trainer {
 public:
  Trainer(nn::NetworkImpl& net, const ImageCache& train, const ImageCache* validation, const TrainOptions& options,
          const FitContext& ctx);
  FitResult run();

 private:
  void resume();
  void run_phase(const Phase& phase);
  std::unique_ptr<PhaseRun> start_phase(const Phase& phase);
  bool run_epoch(PhaseRun& p, int epoch);
  std::optional<std::string> validate_epoch(PhaseRun& p, int epoch, EpochRecord& rec);
  bool apply_callbacks(PhaseRun& p, const EpochRecord& rec);
  void save_epoch(PhaseRun& p, int epoch, bool improved);
  void stop_early(const Phase& phase, int epoch);
  void unfreeze_for_fine_tuning();
  std::unique_ptr<BatchLoader> validation_loader(const EpochSources& sources) const;
  void check_replicas();
  void finish();
  void set_step_lr(PhaseRun& p, int epoch, int64_t step);

  nn::NetworkImpl& net_;
  const ImageCache& train_;
  const ImageCache* validation_;  // null without validation data
  const TrainOptions& options_;
  const FitContext& ctx_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  const std::vector<Phase> phases_;
  const Precision precision_;
  const int total_epochs_;
  EarlyStoppingOptions es_options_;
  ReduceLrOptions rl_options_;
  RunWriter writer_;
  LossScaler scaler_;
  BestTracker best_;
  CollapseDetector collapse_;
  const Criterion criterion_;
  std::optional<WeightAverage> average_;   // with --ema
  TrainerState state_;                     // what the checkpoint carries
  std::optional<CheckpointData> resumed_;  // weights still to load while set
  nn::TensorMap best_weights_;             // a copy of the best epoch's weights
  EpochSources last_sources_;              // the last phase's, for the final validation
  int epochs_this_process_ = 0;
  FitResult result_;
};

const ImageCache* usable(const ImageCache* validation) {
  return validation != nullptr && validation->size() > 0 ? validation : nullptr;
}

// Without validation data the val_* monitors fall back to training metrics.
Monitor usable_monitor(Monitor m, const ImageCache* validation) { return validation ? m : without_validation(m); }

Trainer::Trainer(nn::NetworkImpl& net, const ImageCache& train, const ImageCache* validation,
                 const TrainOptions& options, const FitContext& ctx)
    : net_(net),
      train_(train),
      validation_(usable(validation)),
      options_(options),
      ctx_(ctx),
      phases_(plan_phases(options, net)),
      precision_(resolve_precision(options.precision, ctx.device)),
      total_epochs_(options.total_epochs()),
      es_options_(options.early_stopping),
      rl_options_(options.reduce_lr),
      writer_(ctx.run_dir),
      scaler_(precision_ == Precision::fp16),
      criterion_(criterion_for(net, options.label_smoothing)),
      best_(usable_monitor(options.best_monitor, validation_)),
      collapse_(validation_ ? validation_->class_counts() : std::vector<int64_t>{},
                validation_ ? validation_->class_names : std::vector<std::string>{}, CollapseState{}) {
  es_options_.monitor = usable_monitor(es_options_.monitor, validation_);
  rl_options_.monitor = usable_monitor(rl_options_.monitor, validation_);
  if (precision_ != Precision::fp32) {
    log::infof("mixed precision: forward pass in {}{}", precision_name(precision_),
               precision_ == Precision::fp16 ? " with dynamic loss scaling" : "");
  }
}

void Trainer::resume() {
  resumed_ = ctx_.group ? writer_.read_checkpoint(*ctx_.group) : writer_.read_checkpoint();
  state_ = resumed_->state;
  best_.restore(state_.best);
  scaler_.restore(state_.loss_scaler);
  // Warnings said before the interruption stay in run.json, and the collapse
  // detector's memory lets a run interrupted between its two epochs still warn.
  collapse_ = CollapseDetector(validation_ ? validation_->class_counts() : std::vector<int64_t>{},
                               validation_ ? validation_->class_names : std::vector<std::string>{}, state_.collapse);
  best_weights_ = ctx_.group ? writer_.read_best_weights(*ctx_.group) : writer_.read_best_weights();
  if (!resumed_->averaged_weights.empty()) {
    average_.emplace(resumed_->averaged_weights, options_.ema, state_.ema_updates);
  }
  log::infof("resuming after epoch {}/{} from {}", state_.epochs_done, total_epochs_,
             (ctx_.run_dir / run_files::kCheckpoint).string());
}

FitResult Trainer::run() {
  if (ctx_.resume) resume();
  if (options_.ema > 0 && !average_) average_.emplace(net_, options_.ema);
  for (const Phase& phase : phases_) {
    // A phase finished before the interruption needs nothing; later phases set their own parameters.
    if (phase.last_epoch > state_.epochs_done) run_phase(phase);
  }
  finish();
  return std::move(result_);
}

void Trainer::unfreeze_for_fine_tuning() {
  const auto bb = net_.backbone();
  net_.set_backbone_trainable_blocks(options_.fine_tune_last, bb->bn_inference() || bb->trainable_blocks() == 0);
}

void Trainer::run_phase(const Phase& phase) {
  auto p = start_phase(phase);
  bool stop = false;
  for (int epoch = std::max(phase.first_epoch, state_.epochs_done + 1); epoch <= phase.last_epoch && !stop; ++epoch) {
    stop = run_epoch(*p, epoch);
    if (ctx_.stop_after_epochs > 0 && ++epochs_this_process_ >= ctx_.stop_after_epochs && epoch < total_epochs_) {
      throw Error("stopped after " + std::to_string(ctx_.stop_after_epochs) + " epochs (test hook)");
    }
  }
  last_sources_ = p->sources;
}

std::unique_ptr<PhaseRun> Trainer::start_phase(const Phase& phase) {
  if (phase.kind == TrainPhase::fine_tune) {
    unfreeze_for_fine_tuning();
    log::infof("fine-tuning: unfroze the last {} blocks of {} ({} trainable parameters), learning rate {}",
               options_.fine_tune_last, net_.backbone()->arch(), net_.count_trainable(), phase.lr);
  }
  if (resumed_) {
    // After the phase's freezing, so parameters and batch-norm modes match the checkpoint's.
    net_.load_named_state(resumed_->weights, /*strict=*/true);
  }
  if (ctx_.group) broadcast_model(net_, *ctx_.group);
  const std::vector<ParamGroup> groups = parameter_groups(net_, options_);
  std::vector<torch::Tensor> params;
  for (const auto& g : groups) params.insert(params.end(), g.params.begin(), g.params.end());
  auto optimizer = make_optimizer(options_, phase.lr, groups);
  auto p = std::unique_ptr<PhaseRun>(new PhaseRun{phase, std::move(params), std::move(optimizer), phase.lr,
                                                  lr_ratios(groups), EarlyStopping(es_options_),
                                                  ReduceLrOnPlateau(rl_options_), {}, {}, {}, {}, {}});
  if (groups.size() > 1) {
    log::infof("discriminative learning rates: {} parameter groups, from {} (head) down to {}", groups.size(),
               phase.lr, phase.lr * p->ratios.back());
  }
  if (resumed_ && state_.phase == phase.kind && state_.epochs_done >= phase.first_epoch) {
    load_optimizer_state(*p->optimizer, resumed_->optimizer_state);
    p->lr = state_.lr;
    set_learning_rates(*p->optimizer, p->lr, p->ratios);
    p->early.restore(state_.early_stopping);
    p->plateau.restore(state_.reduce_lr);
  }
  resumed_.reset();
  p->sources = prepare_sources(net_, train_, validation_, options_, ctx_.device, ctx_.group);
  result_.feature_cache_used = result_.feature_cache_used || p->sources.prefix > 0;
  LoaderOptions training = LoaderOptions::training(options_.batch_size, options_.seed, ctx_.device);
  if (ctx_.group) {
    training = training.sharded(ctx_.group->rank(), ctx_.group->world_size());
    p->gradients = std::make_unique<GradientSync>(p->params);
  }
  p->train_loader = std::make_unique<BatchLoader>(p->sources.train, train_.labels, training);
  if (validation_) p->val_loader = validation_loader(p->sources);
  if (options_.schedule != Schedule::constant || options_.warmup_epochs > 0) {
    p->schedule = phase_schedule(options_, phase.last_epoch - phase.first_epoch + 1, p->train_loader->num_batches());
  }
  p->step_lr = p->lr;
  return p;
}

// Validation after each epoch; data parallel, each rank evaluates its share of the rows.
std::unique_ptr<BatchLoader> Trainer::validation_loader(const EpochSources& sources) const {
  const auto options = LoaderOptions::in_order(options_.batch_size, ctx_.device);
  if (!ctx_.group) return std::make_unique<BatchLoader>(sources.validation, validation_->labels, options);
  const RowRange mine = shard_rows(sources.validation.size(), ctx_.group->rank(), ctx_.group->world_size());
  return std::make_unique<BatchLoader>(sources.validation.narrow(mine.begin, mine.size()),
                                       validation_->labels.narrow(0, mine.begin, mine.size()), options);
}

// One epoch: train, validate, callbacks, files. True when training should stop.
bool Trainer::run_epoch(PhaseRun& p, int epoch) {
  const auto epoch_start = std::chrono::steady_clock::now();
  ProgressLine progress(fmt::format("epoch {}/{}", epoch, total_epochs_), p.train_loader->num_batches());
  EpochTraining training{net_,        *p.optimizer,   scaler_,          p.params, precision_, p.sources.prefix,
                         options_.seed, ctx_.device.is_cuda() ? 16 : 1, p.lr};
  training.criterion = &criterion_;
  training.mix = {options_.mixup, options_.cutmix};
  training.average = average_ ? &*average_ : nullptr;
  if (p.schedule) training.before_step = [this, &p, epoch](int64_t step) { set_step_lr(p, epoch, step); };
  std::optional<BufferSync> buffers;
  if (ctx_.group) {
    net_.train();  // which batch-norm layers update their statistics depends on the mode
    buffers.emplace(net_, p.sources.prefix);
    training.group = ctx_.group;
    training.gradients = p.gradients.get();
    training.buffers = &*buffers;
  }
  const EpochTotals totals = train_one_epoch(training, *p.train_loader, epoch, progress);
  EpochRecord rec;
  rec.epoch = epoch;
  rec.phase = p.phase.kind;
  rec.loss = totals.loss;
  rec.accuracy = totals.accuracy;
  rec.lr = p.step_lr;
  const std::optional<std::string> collapse = validate_epoch(p, epoch, rec);
  rec.seconds = seconds_since(epoch_start);
  std::string line = fmt::format("accuracy: {:.4f} - loss: {:.4f}", rec.accuracy, rec.loss);
  if (validation_) line += fmt::format(" - val_accuracy: {:.4f} - val_loss: {:.4f}", rec.val_accuracy, rec.val_loss);
  progress.finish(line);
  if (collapse) {
    log::warn(*collapse, collapse_hint());
    state_.warnings.push_back(*collapse);
  }
  state_.history.push_back(rec);
  const bool improved = best_.update(rec);
  const bool stop = apply_callbacks(p, rec);
  if (improved) best_weights_ = copy_weights(average_ ? average_->weights() : net_.named_state());
  save_epoch(p, epoch, improved);
  if (stop) stop_early(p.phase, epoch);
  return stop;
}

// Validation metrics into `rec`; the collapse warning to give, if this epoch completes a streak.
std::optional<std::string> Trainer::validate_epoch(PhaseRun& p, int epoch, EpochRecord& rec) {
  if (!validation_) return std::nullopt;
  std::optional<SwappedWeights> averaged;  // the average is what the run keeps, so it is what validation measures
  if (average_) averaged.emplace(net_, average_->weights());
  EvalResult v = evaluate_network(net_, *p.val_loader, p.sources.prefix, /*keep_outputs=*/false, precision_);
  if (ctx_.group) v = sum_evaluations(v, static_cast<int64_t>(validation_->class_names.size()), *ctx_.group);
  rec.val_loss = v.loss;
  rec.val_accuracy = v.accuracy;
  return collapse_.observe(epoch, v.predicted_counts, v.count, v.accuracy);
}

// Early stopping and the learning-rate plateau; true when training should stop.
bool Trainer::apply_callbacks(PhaseRun& p, const EpochRecord& rec) {
  const bool stop = p.early.on_epoch_end(rec);
  const double next_lr = p.plateau.on_epoch_end(rec, p.lr);
  if (next_lr != p.lr) {
    log::infof("ReduceLROnPlateau: {} has not improved for {} epochs; learning rate {} -> {}",
               enum_name(rl_options_.monitor), rl_options_.patience, p.lr, next_lr);
    p.lr = next_lr;
    p.step_lr = next_lr;
    set_learning_rates(*p.optimizer, p.lr, p.ratios);
  }
  return stop;
}

void Trainer::set_step_lr(PhaseRun& p, int epoch, int64_t step) {
  const int64_t index = static_cast<int64_t>(epoch - p.phase.first_epoch) * p.train_loader->num_batches() + step - 1;
  p.step_lr = p.lr * p.schedule->factor(index);
  set_learning_rates(*p.optimizer, p.step_lr, p.ratios);
}

void Trainer::save_epoch(PhaseRun& p, int epoch, bool improved) {
  state_.epochs_done = epoch;
  state_.phase = p.phase.kind;
  state_.lr = p.lr;
  state_.best = best_.state();
  state_.early_stopping = p.early.state();
  state_.reduce_lr = p.plateau.state();
  state_.loss_scaler = scaler_.state();
  state_.collapse = collapse_.state();
  state_.ema_updates = average_ ? average_->updates() : 0;
  writer_.epoch_finished(net_, *p.optimizer, state_, improved, average_ ? &average_->weights() : nullptr);
}

void Trainer::stop_early(const Phase& phase, int epoch) {
  log::infof("EarlyStopping: {} has not improved for {} epochs; stopping {} after epoch {}",
             enum_name(es_options_.monitor), es_options_.patience,
             phase.kind == TrainPhase::train ? "training" : "fine-tuning", epoch);
  result_.stopped_early = true;
  if (es_options_.restore_best_weights && !best_weights_.empty()) {
    net_.load_named_state(best_weights_, /*strict=*/true);
    log::infof("restored the weights of epoch {} ({} = {:.4f})", best_.best_epoch(), enum_name(best_.monitor()),
               best_.best());
  }
}

// Every rank must end with the same weights: each one's digest is compared with rank 0's.
void Trainer::check_replicas() {
  const std::vector<std::string> digests = ctx_.group->allgather_bytes(model_digest(net_));
  for (size_t r = 1; r < digests.size(); ++r) {
    if (digests[r] != digests[0]) {
      throw Error(fmt::format("rank {}'s weights differ from rank 0's after training (digest {} vs {})", r,
                              digests[r].substr(0, 12), digests[0].substr(0, 12)),
                  "this is a bug in tabby's data-parallel training; please report it with the command");
    }
  }
  result_.replicas_identical = true;
  log::infof("all {} ranks hold identical weights (SHA-256 {})", digests.size(), digests[0].substr(0, 16));
}

void Trainer::finish() {
  if (resumed_) {
    // Every epoch had finished before the interruption (it came while the final
    // weights were being written): the trained weights are the checkpoint's, in
    // the last phase's set-up.
    if (phases_.back().kind == TrainPhase::fine_tune) unfreeze_for_fine_tuning();
    net_.load_named_state(resumed_->weights, /*strict=*/true);
    resumed_.reset();
  }
  result_.best_epoch = best_.best_epoch();
  result_.best_value = best_.best();
  if (options_.keep == KeepWeights::best && !best_weights_.empty()) {
    net_.load_named_state(best_weights_, /*strict=*/true);
    result_.kept = KeepWeights::best;
    log::infof("keeping the weights of epoch {} ({} = {:.4f})", best_.best_epoch(), enum_name(best_.monitor()),
               best_.best());
  } else if (average_) {
    net_.load_named_state(average_->weights(), /*strict=*/true);
    log::infof("keeping the moving average of the weights (decay {}, {} updates)", options_.ema, average_->updates());
  }
  writer_.save_kept_weights(net_, result_.kept);
  if (ctx_.group) check_replicas();
  if (ctx_.group && !ctx_.rank_weights_dir.empty()) {
    ensure_directory(ctx_.rank_weights_dir);
    save_weights(ctx_.rank_weights_dir / fmt::format("rank{}.safetensors", ctx_.group->rank()), net_);
  }
  // The kept weights' outputs are for the run's report, which rank 0 writes.
  const bool reports = !ctx_.group || ctx_.group->is_main();
  if (reports && validation_ && last_sources_.validation.defined()) {
    BatchLoader loader(last_sources_.validation, validation_->labels,
                       LoaderOptions::in_order(options_.batch_size, ctx_.device));
    result_.validation = evaluate_network(net_, loader, last_sources_.prefix, /*keep_outputs=*/true, precision_);
  }
  if (scaler_.skipped_steps() > 0) {
    log::infof("fp16 loss scaling skipped {} steps with inf/NaN gradients (final scale {})", scaler_.skipped_steps(),
               scaler_.scale());
  }
  result_.history = state_.history;
  result_.warnings = state_.warnings;
  result_.collapsed_epoch = collapse_.state().collapsed_epoch;
  result_.seconds = seconds_since(start_);
  net_.eval();
}

}  // namespace

FitResult fit(nn::NetworkImpl& net, const ImageCache& train, const ImageCache* validation, const TrainOptions& options,
              const FitContext& ctx) {
  validate(options);
  return Trainer(net, train, validation, options, ctx).run();
}

}  // namespace tabby
