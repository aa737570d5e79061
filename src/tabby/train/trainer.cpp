#include "tabby/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "tabby/nn/state_dict.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/train/callbacks.h"
#include "tabby/train/checkpoint.h"
#include "tabby/train/collapse.h"
#include "tabby/train/epoch_metrics.h"
#include "tabby/train/evaluate.h"
#include "tabby/train/optimizer.h"
#include "tabby/train/precision.h"
#include "tabby/train/run.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"
#include "tabby/util/rng.h"
#include "tabby/weights/safetensors.h"

namespace tabby {

namespace {

constexpr uint64_t kStepSeedPurpose = 0x53544550;  // "STEP"
constexpr int64_t kDeviceImageCacheLimitBytes = int64_t{8} << 30;
constexpr int kCollapseEpochs = 2;  // epochs in a row of one-class predictions before fit() warns

struct Phase {
  std::string name;
  int first_epoch;  // 1-based, inclusive
  int last_epoch;
  double lr;
};

std::string metrics_text(double loss, double acc) {
  return fmt::format("accuracy: {:.4f} - loss: {:.4f}", acc, loss);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::vector<torch::Tensor> trainable_parameters(nn::NetworkImpl& net) {
  std::vector<torch::Tensor> params;
  for (auto& p : net.parameters(true)) {
    if (p.requires_grad()) params.push_back(p);
  }
  return params;
}

// Without validation data the val_* monitors fall back to training metrics.
std::string usable_monitor(const std::string& monitor, bool have_validation) {
  if (have_validation || monitor.rfind("val_", 0) != 0) return monitor;
  return monitor.substr(4);
}

}  // namespace

FitResult fit(nn::NetworkImpl& net, const ImageCache& train, const ImageCache* validation, const TrainOptions& options,
              const FitContext& ctx) {
  validate(options);
  const auto fit_start = std::chrono::steady_clock::now();
  const bool have_val = validation != nullptr && validation->size() > 0;
  const std::vector<int64_t> validation_class_counts =
      have_val ? validation->class_counts() : std::vector<int64_t>{};
  int one_class_since = 0;  // first epoch of the current run of one-class validation predictions
  const bool writing = !ctx.run_dir.empty();
  FitResult result;

  std::vector<Phase> phases = {{"train", 1, options.epochs, options.lr}};
  if (options.has_fine_tune()) {
    if (!net.backbone()) throw UsageError("--fine-tune-epochs needs a model with a backbone");
    phases.push_back({"fine-tune", options.epochs + 1, options.total_epochs(), options.fine_tune_lr});
  }
  const int total_epochs = options.total_epochs();
  const Precision precision = resolve_precision(options.precision, ctx.device);
  if (precision != Precision::fp32) {
    log::infof("mixed precision: forward pass in {}{}", precision_name(precision),
               precision == Precision::fp16 ? " with dynamic loss scaling" : "");
  }
  LossScaler scaler(precision == Precision::fp16);

  BestTracker best(usable_monitor(options.best_monitor, have_val));
  EarlyStoppingOptions es_options = options.early_stopping;
  es_options.monitor = usable_monitor(es_options.monitor, have_val);
  ReduceLrOptions rl_options = options.reduce_lr;
  rl_options.monitor = usable_monitor(rl_options.monitor, have_val);

  // Resume: weights, history and callback state from the checkpoint.
  int epochs_done = 0;
  std::optional<CheckpointData> resumed;
  if (ctx.resume) {
    resumed = read_checkpoint(ctx.run_dir / run_files::kCheckpoint);
    epochs_done = resumed->epochs_done;
    result.history = resumed->history;
    best.restore(resumed->state.value("best", nlohmann::json::object()));
    scaler.restore(resumed->state.value("loss_scaler", nlohmann::json::object()));
    // Warnings said before the interruption stay in run.json, and the collapse
    // detector's memory lets a run interrupted between its two epochs still warn.
    result.warnings = resumed->state.value("warnings", std::vector<std::string>{});
    const auto collapse_state = resumed->state.value("collapse", nlohmann::json::object());
    one_class_since = collapse_state.value("one_class_since", 0);
    result.collapsed_epoch = collapse_state.value("collapsed_epoch", 0);
    log::infof("resuming after epoch {}/{} from {}", epochs_done, total_epochs,
               (ctx.run_dir / run_files::kCheckpoint).string());
  }

  bool restore_pending = resumed.has_value();
  nn::TensorMap best_weights;  // a copy of the best epoch's weights, for restore/keep
  auto snapshot = [&net] {
    nn::TensorMap copy;
    for (const auto& [k, v] : net.named_state()) copy.emplace(k, v.detach().clone());
    return copy;
  };
  if (resumed && ctx.resume) {
    std::error_code ec;
    if (fs::is_regular_file(ctx.run_dir / run_files::kBest, ec)) {
      best_weights = nn::to_torch(read_safetensors(ctx.run_dir / run_files::kBest).tensors);
    }
  }
  int epochs_this_process = 0;
  torch::Tensor last_val_source;  // the last phase's validation inputs (images or cached features)
  size_t last_prefix = 0;

  auto unfreeze_for_fine_tuning = [&] {
    const auto bb = net.backbone();
    net.set_backbone_trainable_blocks(options.fine_tune_last, bb->bn_inference() || bb->trainable_blocks() == 0);
  };
  for (const Phase& phase : phases) {
    if (phase.last_epoch <= epochs_done) {
      // Finished before the interruption; only its parameter set-up matters
      // for later phases (the fine-tune phase sets its own).
      continue;
    }
    if (phase.name == "fine-tune") {
      unfreeze_for_fine_tuning();
      log::infof("fine-tuning: unfroze the last {} blocks of {} ({} trainable parameters), learning rate {}",
                 options.fine_tune_last, net.backbone()->arch(), net.count_trainable(), phase.lr);
    }
    if (restore_pending) {
      // After the phase's freezing, so parameters and batch-norm modes match the checkpoint's.
      net.load_named_state(resumed->weights, /*strict=*/true);
      restore_pending = false;
    }

    const std::vector<torch::Tensor> params = trainable_parameters(net);
    auto optimizer = make_optimizer(options, phase.lr, params);
    double lr = phase.lr;
    EarlyStopping early(es_options);
    ReduceLrOnPlateau plateau(rl_options);
    if (resumed && resumed->phase == phase.name && epochs_done >= phase.first_epoch) {
      load_optimizer_state(*optimizer, resumed->optimizer_state);
      lr = resumed->state.value("lr", phase.lr);
      set_learning_rate(*optimizer, lr);
      early.restore(resumed->state.value("early_stopping", nlohmann::json::object()));
      plateau.restore(resumed->state.value("reduce_lr", nlohmann::json::object()));
    }

    // Feature caching: a frozen prefix (preprocessing + frozen backbone, no
    // augmentation before it) is computed once per image and reused.
    size_t prefix = 0;
    if (options.feature_cache != "off") {
      prefix = net.cacheable_prefix();
      if (options.feature_cache == "on" && prefix == 0) {
        log::warn("--feature-cache on: not possible for this model (augmentation before the backbone, or a "
                  "trainable backbone); computing every layer every epoch");
      }
    }
    torch::Tensor train_source = train.images, val_source = have_val ? validation->images : torch::Tensor();
    if (prefix > 0) {
      auto t0 = std::chrono::steady_clock::now();
      train_source = compute_prefix_outputs(net, train.images, prefix, ctx.device, options.batch_size, "training images");
      if (have_val) {
        val_source = compute_prefix_outputs(net, validation->images, prefix, ctx.device, options.batch_size,
                                            "validation images");
      }
      result.feature_cache_used = true;
      log::infof("feature cache: the frozen backbone's outputs were computed once ({} images, {}); each epoch "
                 "trains only the layers after it",
                 train.size() + (have_val ? validation->size() : 0), format_duration(seconds_since(t0)));
    } else if (ctx.device.is_cuda()) {
      // Decoded images that fit comfortably live on the GPU: a batch is then a gather
      // there, with no host copy per step. Larger sets stream from pinned host memory.
      const int64_t bytes = train_source.nbytes() + (have_val ? val_source.nbytes() : 0);
      if (bytes <= kDeviceImageCacheLimitBytes) {
        train_source = train_source.to(ctx.device);
        if (have_val) val_source = val_source.to(ctx.device);
        log::infof("image cache on {}: {:.0f} MiB of uint8 images", ctx.device.str(), bytes / 1048576.0);
      }
    }
    last_val_source = val_source;
    last_prefix = prefix;
    BatchLoader train_loader(train_source, train.labels,
                             LoaderOptions{options.batch_size, true, options.seed, ctx.device, 2, false});
    std::unique_ptr<BatchLoader> val_loader;
    if (have_val) {
      val_loader = std::make_unique<BatchLoader>(
          val_source, validation->labels, LoaderOptions{options.batch_size, false, 0, ctx.device, 2, false});
    }

    bool stop = false;
    for (int epoch = std::max(phase.first_epoch, epochs_done + 1); epoch <= phase.last_epoch && !stop; ++epoch) {
      const auto epoch_start = std::chrono::steady_clock::now();
      net.train();
      train_loader.start_epoch(epoch);
      ProgressLine progress(fmt::format("epoch {}/{}", epoch, total_epochs), train_loader.num_batches());
      EpochMetrics metrics(ctx.device.is_cuda() ? 16 : 1);
      const int64_t steps_in_epoch = train_loader.num_batches();
      int64_t step = 0;
      auto stop_if_diverged = [&](const std::optional<EpochMetrics::NonFinite>& bad) {
        if (!bad) return;
        throw Error(fmt::format("the loss became {} at epoch {}, step {}: training diverged", bad->value, epoch,
                                bad->step),
                    fmt::format("lower the learning rate (--lr {}){}, or check the input scaling of the model; "
                                "the last good checkpoint (epoch {}) is kept",
                                lr / 10, precision == Precision::fp32 ? "" : " or train in --precision fp32",
                                epoch - 1));
      };
      while (auto batch = train_loader.next()) {
        torch::manual_seed(derive_seed(options.seed, {kStepSeedPurpose, static_cast<uint64_t>(epoch),
                                                      static_cast<uint64_t>(step)}));
        torch::Tensor logits;
        {
          AutocastScope autocast(precision, batch->inputs.device());
          logits = net.forward_range(batch->inputs, prefix, net.size());
        }
        // The loss in fp32 whatever the forward pass ran in (CPU autocast keeps softmax in bf16).
        logits = logits.to(torch::kFloat32);
        auto loss = net.loss(logits, batch->labels);
        metrics.add(loss, net.predicted_classes(logits.detach()).eq(batch->labels).sum(), batch->labels.size(0));
        ++step;
        const bool read_now = metrics.due() || step == steps_in_epoch;
        if (read_now) stop_if_diverged(metrics.read());
        optimizer->zero_grad();
        scaler.scale_loss(loss).backward();
        const bool finite_gradients = scaler.unscale_and_check(params);
        if (finite_gradients) optimizer->step();
        scaler.update(finite_gradients);
        if (read_now) progress.update(step, metrics_text(metrics.loss(), metrics.accuracy()));
      }
      stop_if_diverged(metrics.read());
      EpochRecord rec;
      rec.epoch = epoch;
      rec.phase = phase.name;
      rec.loss = metrics.loss();
      rec.accuracy = metrics.accuracy();
      rec.lr = lr;
      std::optional<std::string> collapse;
      if (have_val) {
        EvalResult v = evaluate_network(net, *val_loader, prefix, /*keep_outputs=*/false, precision);
        rec.val_loss = v.loss;
        rec.val_accuracy = v.accuracy;
        const auto only = single_predicted_class(v.predicted_counts, validation_class_counts);
        one_class_since = only ? (one_class_since > 0 ? one_class_since : epoch) : 0;
        // A first epoch can start this way and recover; a second in a row rarely does. Said once.
        if (only && epoch - one_class_since + 1 >= kCollapseEpochs && result.collapsed_epoch == 0) {
          const auto c = static_cast<size_t>(*only);
          collapse = collapse_warning(
              one_class_since, c < validation->class_names.size() ? validation->class_names[c] : std::to_string(c),
              v.count, v.accuracy);
          result.collapsed_epoch = one_class_since;
        }
      }
      rec.seconds = seconds_since(epoch_start);
      std::string line = metrics_text(rec.loss, rec.accuracy);
      if (have_val) line += fmt::format(" - val_accuracy: {:.4f} - val_loss: {:.4f}", rec.val_accuracy, rec.val_loss);
      progress.finish(line);
      if (collapse) {
        log::warn(*collapse, collapse_hint());
        result.warnings.push_back(*collapse);
      }
      result.history.push_back(rec);

      // Callbacks.
      const bool improved = best.update(rec);
      stop = early.on_epoch_end(rec);
      const double next_lr = plateau.on_epoch_end(rec, lr);
      if (next_lr != lr) {
        log::infof("ReduceLROnPlateau: {} has not improved for {} epochs; learning rate {} -> {}", rl_options.monitor,
                   rl_options.patience, lr, next_lr);
        lr = next_lr;
        set_learning_rate(*optimizer, lr);
      }

      if (improved) best_weights = snapshot();
      if (writing) {
        if (improved) save_weights(ctx.run_dir / run_files::kBest, net, {{"epoch", std::to_string(epoch)}});
        write_file_atomic(ctx.run_dir / run_files::kHistory, history_to_csv(result.history));
        nlohmann::json state = {{"lr", lr},
                                {"best", best.state()},
                                {"early_stopping", early.state()},
                                {"reduce_lr", plateau.state()},
                                {"loss_scaler", scaler.state()},
                                {"warnings", result.warnings},
                                {"collapse",
                                 {{"one_class_since", one_class_since}, {"collapsed_epoch", result.collapsed_epoch}}}};
        write_checkpoint(ctx.run_dir / run_files::kCheckpoint, net, *optimizer,
                         CheckpointInfo{epoch, phase.name, result.history, state});
        update_run_json(ctx.run_dir, {{"status", "running"}, {"epochs_completed", epoch}});
      }
      if (stop) {
        log::infof("EarlyStopping: {} has not improved for {} epochs; stopping {} after epoch {}", es_options.monitor,
                   es_options.patience, phase.name == "train" ? "training" : "fine-tuning", epoch);
        result.stopped_early = true;
        if (es_options.restore_best_weights && !best_weights.empty()) {
          net.load_named_state(best_weights, /*strict=*/true);
          log::infof("restored the weights of epoch {} ({} = {:.4f})", best.best_epoch(), best.monitor(), best.best());
        }
      }
      if (ctx.stop_after_epochs > 0 && ++epochs_this_process >= ctx.stop_after_epochs && epoch < total_epochs) {
        throw Error("stopped after " + std::to_string(ctx.stop_after_epochs) + " epochs (test hook)");
      }
    }
  }

  if (restore_pending) {
    // Every epoch had finished before the interruption (it came while the final
    // weights were being written): the trained weights are the checkpoint's, in
    // the last phase's set-up.
    if (phases.back().name == "fine-tune") unfreeze_for_fine_tuning();
    net.load_named_state(resumed->weights, /*strict=*/true);
    restore_pending = false;
  }
  result.best_epoch = best.best_epoch();
  result.best_value = best.best();
  if (options.keep == "best" && !best_weights.empty()) {
    net.load_named_state(best_weights, /*strict=*/true);
    result.kept = "best";
    log::infof("keeping the weights of epoch {} ({} = {:.4f})", best.best_epoch(), best.monitor(), best.best());
  }
  if (have_val && last_val_source.defined()) {
    BatchLoader loader(last_val_source, validation->labels,
                       LoaderOptions{options.batch_size, false, 0, ctx.device, 2, false});
    result.validation = evaluate_network(net, loader, last_prefix, /*keep_outputs=*/true, precision);
  }
  if (scaler.skipped_steps() > 0) {
    log::infof("fp16 loss scaling skipped {} steps with inf/NaN gradients (final scale {})", scaler.skipped_steps(),
               scaler.scale());
  }
  result.seconds = seconds_since(fit_start);
  net.eval();
  return result;
}

}  // namespace tabby
