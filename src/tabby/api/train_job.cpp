#include "tabby/api/train_job.h"

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "tabby/config/model_spec.h"
#include "tabby/nn/network.h"
#include "tabby/nn/summary.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/pipeline/image_cache.h"
#include "tabby/train/device.h"
#include "tabby/train/precision.h"
#include "tabby/train/run.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"
#include "tabby/util/rng.h"

namespace tabby {

namespace {

constexpr uint64_t kInitSeedPurpose = 0x494e4954;  // "INIT"


// Applies --weights / --freeze-backbone / --include-top to the Backbone layer.
void apply_backbone_overrides(ModelSpec& spec, const TrainJob& job) {
  if (!job.weights && !job.freeze_backbone && !job.include_top) return;
  auto idx = spec.backbone_index();
  if (!idx) {
    throw UsageError("--weights / --freeze-backbone / --include-top apply only to models with a backbone",
                     "use --model mobilenet_v2 (or another backbone name)");
  }
  LayerSpec& bb = spec.layers[*idx];
  if (job.weights) bb.params["weights"] = *job.weights;
  if (job.freeze_backbone) bb.params["trainable"] = !*job.freeze_backbone;
  if (job.include_top && *job.include_top != bb.get_bool("include_top", false)) {
    if (*job.include_top) {
      // The backbone's own classifier replaces the head.
      spec.layers.resize(*idx + 1);
      spec.layers[*idx].params["include_top"] = true;
    } else {
      throw UsageError("--include-top false: the model file already decides its head");
    }
  }
}

std::string class_counts_text(const std::vector<std::string>& names, const std::vector<int64_t>& counts) {
  std::string out;
  for (size_t k = 0; k < names.size() && k < counts.size(); ++k) {
    if (k == 8 && names.size() > 10) {
      out += fmt::format(", ... ({} classes)", names.size());
      break;
    }
    out += (k ? ", " : "") + fmt::format("{} {}", counts[k], names[k]);
  }
  return out;
}

nlohmann::json eval_json(const EvalResult& r) {
  return {{"loss", r.loss}, {"accuracy", r.accuracy}, {"num_images", r.count}};
}

struct Prepared {
  RunConfig config;
  ResolvedData data;
  torch::Device device = torch::kCPU;
};

ImageCache cache_for(const Dataset& d, const RunConfig& c, const std::string& what) {
  ImageCacheOptions o;
  o.height = c.height;
  o.width = c.width;
  o.crop_to_aspect = c.crop_to_aspect;
  o.what = what;
  return build_image_cache(d, o);
}

TrainOutcome train_prepared(const Prepared& p, const std::filesystem::path& dir, bool resume, int stop_after) {
  const RunConfig& c = p.config;
  std::error_code ec;
  if (resume && !std::filesystem::is_regular_file(dir / run_files::kCheckpoint, ec)) {
    log::info("the run had not finished an epoch: starting it from the beginning");
    resume = false;
  }
  TrainOutcome outcome;
  outcome.run_dir = dir;

  ImageCache train_cache = cache_for(p.data.train, c, "training images");
  std::optional<ImageCache> val_cache, test_cache;
  if (p.data.validation) val_cache = cache_for(*p.data.validation, c, "validation images");
  if (p.data.test) test_cache = cache_for(*p.data.test, c, "test images");
  const double decode_seconds =
      train_cache.seconds + (val_cache ? val_cache->seconds : 0) + (test_cache ? test_cache->seconds : 0);
  const size_t decoded = train_cache.size() + (val_cache ? val_cache->size() : 0) + (test_cache ? test_cache->size() : 0);
  log::infof("decoded and resized {} images to {}x{} in {} ({:.0f} images/s)", decoded, c.width, c.height,
             format_duration(decode_seconds), decoded / std::max(decode_seconds, 1e-9));
  if (!val_cache) log::info("no validation data: val_* metrics are not computed (use --val or --validation-split)");

  // Initial weights come from the seed too.
  torch::manual_seed(derive_seed(c.train.seed, {kInitSeedPurpose}));
  nn::Network net(c.model, static_cast<int64_t>(c.class_names.size()), c.height, c.width);
  if (!resume) net->load_pretrained_weights();
  net->to(p.device);
  net->set_channels_last(c.train.channels_last != "off");
  auto summary = nn::summarize(*net);
  log::infof("model {}: {} parameters ({} trainable), {} classes, on {}", c.model.name, summary.total,
             summary.trainable, c.class_names.size(), describe_device(p.device));

  nlohmann::json skipped = {{"train", train_cache.skipped.size()}};
  if (val_cache) skipped["validation"] = val_cache->skipped.size();
  if (test_cache) skipped["test"] = test_cache->skipped.size();
  update_run_json(dir, {{"status", "running"},
                        {"images", {{"train", train_cache.size()},
                                    {"validation", val_cache ? val_cache->size() : 0},
                                    {"test", test_cache ? test_cache->size() : 0}}},
                        {"train_class_counts", train_cache.class_counts()},
                        {"skipped_files", skipped},
                        {"decode_seconds", decode_seconds}});

  FitContext ctx;
  ctx.device = p.device;
  ctx.run_dir = dir;
  ctx.resume = resume;
  ctx.stop_after_epochs = stop_after;
  outcome.fit = fit(*net, train_cache, val_cache ? &*val_cache : nullptr, c.train, ctx);
  save_weights(dir / run_files::kWeights, *net, {{"kept", outcome.fit.kept}});

  nlohmann::json results = {{"epochs_completed", outcome.fit.history.size()},
                            {"stopped_early", outcome.fit.stopped_early},
                            {"kept_weights", outcome.fit.kept},
                            {"best_epoch", outcome.fit.best_epoch},
                            {"best_monitor", c.train.best_monitor},
                            {"best_value", outcome.fit.best_value},
                            {"feature_cache", outcome.fit.feature_cache_used},
                            {"train_seconds", outcome.fit.seconds},
                            {"params", {{"total", summary.total}, {"trainable", summary.trainable}}}};
  if (!outcome.fit.warnings.empty()) results["warnings"] = outcome.fit.warnings;
  if (outcome.fit.collapsed_epoch > 0) results["collapsed_at_epoch"] = outcome.fit.collapsed_epoch;
  // A fine-tuning phase unfreezes part of the backbone: record what it trained too.
  const auto trained_last = nn::summarize(*net);
  if (trained_last.trainable != summary.trainable) results["params"]["trainable_fine_tune"] = trained_last.trainable;
  auto evaluate_cache = [&](const ImageCache& cache) {
    BatchLoader loader(cache.images, cache.labels, LoaderOptions{c.train.batch_size, false, 0, p.device, 2, false});
    return evaluate_network(*net, loader, 0, /*keep_outputs=*/true, resolve_precision(c.train.precision, p.device));
  };
  if (val_cache) {
    // fit evaluated the kept weights already (from cached features when it could).
    outcome.validation = outcome.fit.validation ? *outcome.fit.validation : evaluate_cache(*val_cache);
    results["validation"] = eval_json(*outcome.validation);
  }
  if (test_cache) {
    outcome.test = evaluate_cache(*test_cache);
    results["test"] = eval_json(*outcome.test);
    log::infof("test: accuracy {:.4f}, loss {:.4f} on {} images", outcome.test->accuracy, outcome.test->loss,
               outcome.test->count);
  }
  outcome.summary = results;
  update_run_json(dir, {{"status", "finished"}, {"results", results}});
  return outcome;
}

// Any failure is written into run.json, so `tabby run` tables and later readers see
// why the run stopped; the checkpoint, if an epoch finished, stays for --resume.
TrainOutcome train_recording_failure(const Prepared& p, const std::filesystem::path& dir, bool resume,
                                     int stop_after) {
  auto record = [&](const std::string& what) {
    try {
      update_run_json(dir, {{"status", "failed"}, {"error", what}});
    } catch (const std::exception&) {
      // The folder itself may be what failed (full disk, removed); the error still reaches the user.
    }
  };
  try {
    return train_prepared(p, dir, resume, stop_after);
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    record("LibTorch: " + msg.substr(0, msg.find('\n')));
    throw;
  } catch (const std::bad_alloc&) {
    record("out of memory");
    throw;
  } catch (const std::exception& e) {
    record(e.what());
    throw;
  }
}

}  // namespace

int configure_threads(int threads) {
  const int n = threads > 0 ? threads : default_thread_count();
  torch::set_num_threads(n);
  return n;
}

TrainOutcome run_train_job(const TrainJob& job) {
  if (job.out.empty()) throw UsageError("--out is required: the run folder to write");
  Prepared p;
  RunConfig& c = p.config;
  c.model = resolve_model(job.model);
  apply_backbone_overrides(c.model, job);
  apply_train_table(c.train, c.model.train, c.model.source + " [train]");
  apply_train_table(c.train, job.train_overrides, "command line");
  validate(c.train);

  // Image size: flag, else the model file's [train] image_size, else a default.
  int64_t size_default = c.model.backbone_index() ? 224 : 180;
  if (c.model.train.contains("image_size") && c.model.train["image_size"].is_number_integer()) {
    size_default = c.model.train["image_size"].get<int64_t>();
  }
  c.height = job.image_height.value_or(size_default);
  c.width = job.image_width.value_or(c.height);
  c.crop_to_aspect = job.crop_to_aspect || c.model.train.value("crop_to_aspect", false);
  c.device = job.device;
  configure_threads(job.threads > 0 ? job.threads : c.train.threads);
  p.device = resolve_device(job.device);
  resolve_precision(c.train.precision, p.device);  // e.g. fp16 without CUDA: refused before any work

  DataArgs data_args = job.data;
  data_args.seed = c.train.seed;
  p.data = resolve_data(data_args);
  require_trainable(p.data.train);
  c.class_names = p.data.train.class_names;
  c.data = data_args_to_json(data_args);
  c.data["resolved"] = p.data.description;

  // Validate the model and its pretrained weights against the data before any decoding.
  {
    nn::Network probe(c.model, static_cast<int64_t>(c.class_names.size()), c.height, c.width);
    probe->load_pretrained_weights();
  }

  log::infof("training {} on {} images ({}) from {}", c.model.name, p.data.train.size(),
             class_counts_text(c.class_names, p.data.train.class_counts()), p.data.train.source);
  if (p.data.validation) log::infof("validating on {} images", p.data.validation->size());
  create_run(job.out, c, job.overwrite);
  log::infof("run folder: {}", job.out.string());
  return train_recording_failure(p, job.out, /*resume=*/false, job.stop_after_epochs);
}

std::optional<TrainOutcome> finished_run(const std::filesystem::path& run_dir) {
  read_run_config(run_dir);  // the clear error for a folder that is not a run
  const nlohmann::json run = read_run_json(run_dir);
  if (run.value("status", std::string()) != "finished") return std::nullopt;
  TrainOutcome outcome;
  outcome.run_dir = run_dir;
  outcome.summary = run.value("results", nlohmann::json::object());
  return outcome;
}

TrainOutcome resume_train_job(const std::filesystem::path& run_dir, const std::string& device, int threads) {
  Prepared p;
  p.config = read_run_config(run_dir);
  nlohmann::json run = read_run_json(run_dir);
  if (run.value("status", std::string()) == "finished") {
    throw UsageError("run '" + run_dir.string() + "' already finished", "train a new run with --out");
  }
  if (!device.empty()) p.config.device = device;
  configure_threads(threads > 0 ? threads : p.config.train.threads);
  p.device = resolve_device(p.config.device);
  DataArgs args = data_args_from_json(p.config.data);
  args.class_names = p.config.class_names;
  p.data = resolve_data(args);
  if (p.data.train.class_names != p.config.class_names) {
    throw Error("the training data's classes changed since the run started", "resume needs the same data");
  }
  log::infof("resuming run {} ({})", run_dir.string(), p.config.model.name);
  return train_recording_failure(p, run_dir, /*resume=*/true, 0);
}

}  // namespace tabby
