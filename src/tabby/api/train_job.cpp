#include "tabby/api/train_job.h"

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <cmath>

#include "tabby/config/augment_spec.h"
#include "tabby/config/backbone_table.h"
#include "tabby/report/chart.h"
#include "tabby/config/model_spec.h"
#include "tabby/config/recipes.h"
#include "tabby/distributed/shard.h"
#include "tabby/nn/network.h"
#include "tabby/nn/summary.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/pipeline/image_cache.h"
#include "tabby/inference/device.h"
#include "tabby/inference/precision.h"
#include "tabby/train/run.h"
#include "tabby/util/fs.h"
#include "tabby/util/json_fields.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"
#include "tabby/util/rng.h"
#include "tabby/weights/sha256.h"

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

EvalSummary summary_of(const EvalResult& r) { return {r.loss, r.accuracy, r.count}; }

struct Prepared {
  std::filesystem::path rank_weights_dir;  // test hook
  ModelSpec model;
  RunSettings settings;
  ResolvedData data;
  torch::Device device = torch::kCPU;
  Collective* group = nullptr;  // data parallel

  // Rank 0 of a data-parallel job, or a process training alone: it writes the run.
  bool writes_run() const { return group == nullptr || group->is_main(); }
};

// The decoded splits of a run.
struct DecodedSplits {
  ImageCache train;
  std::optional<ImageCache> validation, test;

  DecodedData summary() const {
    DecodedData d;
    d.train_images = train.size();
    d.validation_images = validation ? validation->size() : 0;
    d.test_images = test ? test->size() : 0;
    d.train_class_counts = train.class_counts();
    d.skipped_files["train"] = static_cast<int64_t>(train.skipped.size());
    if (validation) d.skipped_files["validation"] = static_cast<int64_t>(validation->skipped.size());
    if (test) d.skipped_files["test"] = static_cast<int64_t>(test->skipped.size());
    d.decode_seconds = train.seconds + (validation ? validation->seconds : 0) + (test ? test->seconds : 0);
    return d;
  }
};

// Data parallel, each rank decodes its share of the files (distributed/shard.h).
ImageCache decode_split(const Dataset& d, const Prepared& p, const std::string& what) {
  const RunSettings& s = p.settings;
  const auto options = ImageCacheOptions::model_input(s.height, s.width, s.crop_to_aspect, what);
  return p.group ? build_image_cache_sharded(d, options, *p.group) : build_image_cache(d, options);
}

DecodedSplits decode_splits(const Prepared& p) {
  DecodedSplits splits{decode_split(p.data.train, p, "training images"), std::nullopt, std::nullopt};
  if (p.data.validation) splits.validation = decode_split(*p.data.validation, p, "validation images");
  // Only rank 0 evaluates on the test data.
  if (p.data.test && p.writes_run()) splits.test = decode_split(*p.data.test, p, "test images");
  const DecodedData d = splits.summary();
  const int64_t decoded = d.train_images + d.validation_images + d.test_images;
  const CacheMode storage = splits.train.storage;
  if (d.decode_seconds > 0) {
    log::infof("decoded and resized {} images to {}x{} in {} ({:.0f} images/s), {}", decoded, p.settings.width,
               p.settings.height, format_duration(d.decode_seconds), decoded / d.decode_seconds,
               storage == CacheMode::disk   ? "kept in the disk cache (--cache)"
               : storage == CacheMode::none ? "checked, to be decoded again every epoch (--cache none)"
                                            : "kept in memory (--cache)");
  }
  if (!splits.validation) log::info("no validation data: val_* metrics are not computed (use --val or --validation-split)");
  return splits;
}

// The network to train: initial weights from the seed, pretrained ones unless resuming.
nn::Network build_network(const Prepared& p, bool resume) {
  const RunSettings& s = p.settings;
  torch::manual_seed(derive_seed(s.train.seed, {kInitSeedPurpose}));
  nn::Network net(p.model, static_cast<int64_t>(s.class_names.size()), s.height, s.width);
  if (!resume) net->load_pretrained_weights();
  net->to(p.device);
  net->set_channels_last(s.train.uses_channels_last());
  return net;
}

RunResults results_of(const FitResult& fit, const TrainOptions& o, const nn::ModelSummary& before,
                      const nn::ModelSummary& after) {
  RunResults r;
  r.epochs_completed = static_cast<int>(fit.history.size());
  r.stopped_early = fit.stopped_early;
  r.kept_weights = fit.kept;
  r.best_epoch = fit.best_epoch;
  r.best_monitor = o.best_monitor;
  r.best_value = fit.best_value;
  r.feature_cache = fit.feature_cache_used;
  r.train_seconds = fit.seconds;
  r.params = {before.total, before.trainable, 0};
  // A fine-tuning phase unfreezes part of the backbone: record what it trained too.
  if (after.trainable != before.trainable) r.params.trainable_fine_tune = after.trainable;
  r.warnings = fit.warnings;
  r.collapsed_at_epoch = fit.collapsed_epoch;
  return r;
}

EvalResult evaluate_split(nn::NetworkImpl& net, const ImageCache& cache, const Prepared& p) {
  BatchLoader loader(cache.rows(), cache.labels, LoaderOptions::in_order(p.settings.train.batch_size, p.device));
  return evaluate_network(net, loader, 0, /*keep_outputs=*/true, resolve_precision(p.settings.train.precision, p.device));
}

// The kept weights on the validation data (fit evaluated them already, from cached
// features when it could) and on the test data.
void evaluate_kept_weights(nn::NetworkImpl& net, const DecodedSplits& splits, const Prepared& p, TrainOutcome& out) {
  if (splits.validation) {
    out.validation = out.fit.validation ? *out.fit.validation : evaluate_split(net, *splits.validation, p);
    out.results.validation = summary_of(*out.validation);
  }
  if (splits.test) {
    out.test = evaluate_split(net, *splits.test, p);
    out.results.test = summary_of(*out.test);
    log::infof("test: accuracy {:.4f}, loss {:.4f} on {} images", out.test->accuracy, out.test->loss, out.test->count);
  }
}

// What every rank of a data-parallel job must agree on: the settings and the
// files (by name and label, so a data folder mounted elsewhere still matches).
nlohmann::json job_fingerprint(const Prepared& p) {
  auto files_digest = [](const Dataset* d) -> std::string {
    if (!d) return "none";
    Sha256 hash;
    for (const auto& sample : d->samples) hash.update(sample.path.filename().string() + "\t" + std::to_string(sample.label) + "\n");
    return std::to_string(d->size()) + " files, " + hash.hex_digest().substr(0, 16);
  };
  return {{"tabby", TABBY_VERSION},
          {"model", p.model.name},
          {"train options", to_json(p.settings.train)},
          {"image size", {p.settings.height, p.settings.width}},
          {"classes", p.settings.class_names},
          {"training files", files_digest(&p.data.train)},
          {"validation files", files_digest(p.data.validation ? &*p.data.validation : nullptr)}};
}

void check_ranks_agree(const Prepared& p) {
  const nlohmann::json mine = job_fingerprint(p);
  const std::vector<std::string> all = p.group->allgather_bytes(mine.dump());
  const nlohmann::json first = nlohmann::json::parse(all[0]);
  for (size_t r = 1; r < all.size(); ++r) {
    const nlohmann::json other = nlohmann::json::parse(all[r]);
    for (const auto& [key, value] : first.items()) {
      if (other.value(key, nlohmann::json()) != value) {
        throw Error(fmt::format("rank {} was started with other {} than rank 0 ({} vs {})", r, key,
                                other.value(key, nlohmann::json()).dump().substr(0, 200), value.dump().substr(0, 200)),
                    "start every rank with the same command and the same data");
      }
    }
  }
}

// How this launch trains, for run.json; a resumed run keeps the world sizes of its earlier launches.
DistributedRun distributed_record(const Prepared& p, const std::optional<DistributedRun>& before) {
  DistributedRun d = before.value_or(DistributedRun{});
  d.backend = p.group->backend();
  d.world_size = p.group->world_size();
  d.batch_per_rank = p.settings.train.batch_size;
  d.global_batch = d.batch_per_rank * d.world_size;
  d.world_sizes.push_back(d.world_size);
  d.replicas_identical = false;
  if (before && before->world_size != d.world_size) {
    log::infof("this run trained on {} ranks before and continues on {}: the global batch changes from {} to {}",
               before->world_size, d.world_size, before->global_batch, d.global_batch);
  }
  return d;
}

// Whether the run has a checkpoint to resume from; data parallel, rank 0 looks and tells the others.
bool has_checkpoint(const Prepared& p, const std::filesystem::path& dir) {
  std::error_code ec;
  bool found = p.writes_run() && std::filesystem::is_regular_file(dir / run_files::kCheckpoint, ec);
  if (p.group) found = p.group->broadcast_bytes(found ? "1" : "0") == "1";
  return found;
}

void record_training_started(const Prepared& p, const std::filesystem::path& dir, const DecodedSplits& splits) {
  update_run_record(dir, [&](RunRecord& r) {
    r.status = RunStatus::running;
    r.error.clear();  // of an earlier attempt that failed
    r.decoded = splits.summary();
    if (p.group) {
      r.distributed = distributed_record(p, r.distributed);
    } else if (r.distributed) {
      // A data-parallel run continued by one process alone.
      r.distributed->backend.clear();
      r.distributed->world_size = 1;
      r.distributed->global_batch = r.distributed->batch_per_rank;
      r.distributed->world_sizes.push_back(1);
      r.distributed->replicas_identical = false;
    }
  });
}

TrainOutcome train_prepared(const Prepared& p, const std::filesystem::path& dir, bool resume, int stop_after) {
  if (resume && !has_checkpoint(p, dir)) {
    log::info("the run had not finished an epoch: starting it from the beginning");
    resume = false;
  }
  if (p.group) check_ranks_agree(p);
  const DecodedSplits splits = decode_splits(p);
  nn::Network net = build_network(p, resume);
  const auto before = nn::summarize(*net);
  log::infof("model {}: {} parameters ({} trainable), {} classes, on {}", p.model.name, before.total,
             before.trainable, p.settings.class_names.size(), describe_device(p.device));
  if (p.writes_run()) record_training_started(p, dir, splits);

  TrainOutcome outcome;
  outcome.run_dir = dir;
  FitContext ctx{p.device, p.writes_run() ? dir : std::filesystem::path(), resume, stop_after, p.group,
                 p.rank_weights_dir};
  outcome.fit = fit(*net, splits.train, splits.validation ? &*splits.validation : nullptr, p.settings.train, ctx);
  if (!p.writes_run()) return outcome;
  outcome.results = results_of(outcome.fit, p.settings.train, before, nn::summarize(*net));
  evaluate_kept_weights(*net, splits, p, outcome);
  update_run_record(dir, [&](RunRecord& r) {
    r.status = RunStatus::finished;
    r.results = outcome.results;
    if (r.distributed) r.distributed->replicas_identical = outcome.fit.replicas_identical;
  });
  return outcome;
}

// Any failure is written into run.json, so `tabby run` tables and later readers see
// why the run stopped; the checkpoint, if an epoch finished, stays for --resume.
TrainOutcome train_recording_failure(const Prepared& p, const std::filesystem::path& dir, bool resume,
                                     int stop_after) {
  auto record = [&](const std::string& what) {
    if (!p.writes_run()) return;
    try {
      update_run_record(dir, [&](RunRecord& r) {
        r.status = RunStatus::failed;
        r.error = what;
      });
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

// A model file's [train] image_size: N or [H, W], each from 8 to 4096.
std::pair<int64_t, int64_t> train_table_image_size(const ModelSpec& model) {
  const nlohmann::json& v = model.train["image_size"];
  const std::string where = model.source + " [train]";
  auto side = [&](const nlohmann::json& n) {
    const auto x = json_fields::as<int64_t>(n, "image_size", where);
    if (x < 8 || x > 4096) throw Error(where + ": `image_size` must be between 8 and 4096, got " + std::to_string(x));
    return x;
  };
  if (v.is_array() && v.size() == 2) return {side(v[0]), side(v[1])};
  if (v.is_number_integer()) return {side(v), side(v)};
  throw Error(where + ": `image_size` must be an integer N or a list [H, W], got " + v.dump());
}

// Image size: the flag, else the model file's [train] image_size, else the
// backbone's own (config/backbone_table.h: torchvision's crop size for its
// weights), else the tutorials' 180.
void choose_image_size(RunSettings& s, const ModelSpec& model, const TrainJob& job) {
  std::pair<int64_t, int64_t> size_default{180, 180};
  if (const auto index = model.backbone_index()) {
    const BackboneInfo* info = find_backbone(model.layers[*index].get_string("arch", ""));
    const int64_t side = info ? info->default_image_size : 224;
    size_default = {side, side};
  }
  if (model.train.contains("image_size")) size_default = train_table_image_size(model);
  if (job.image_height) {
    s.height = *job.image_height;
    s.width = job.image_width.value_or(s.height);
  } else {
    s.height = size_default.first;
    s.width = size_default.second;
  }
  if (model.train.contains("crop_to_aspect")) {
    s.crop_to_aspect = json_fields::as<bool>(model.train["crop_to_aspect"], "crop_to_aspect", model.source + " [train]");
  }
  s.crop_to_aspect = s.crop_to_aspect || job.crop_to_aspect;
}

// What a recipe asks of the model's backbone (a flag the user gave wins).
void apply_recipe_to_model(ModelSpec& model, const Recipe& recipe, const TrainJob& job) {
  const auto idx = model.backbone_index();
  if (!idx) {
    if (recipe.needs_backbone) {
      throw UsageError("--recipe " + recipe.name + " fine-tunes a pretrained backbone; '" + model.name +
                           "' has none",
                       "use --model mobilenet_v2 (or another backbone), or --recipe scratch");
    }
    return;
  }
  LayerSpec& bb = model.layers[*idx];
  if (recipe.backbone_trainable && !job.freeze_backbone) {
    bb.params["trainable"] = *recipe.backbone_trainable;
    bb.params["bn_inference"] = recipe.bn_inference;
  }
}

// The model and settings a job names, checked before any data is read.
void resolve_settings(Prepared& p, const TrainJob& job) {
  p.model = resolve_model(job.model);
  apply_backbone_overrides(p.model, job);
  // A recipe named on the command line, by an experiment or by the model file's [train] `recipe`.
  std::string recipe_name = job.recipe;
  for (const nlohmann::json* table : std::initializer_list<const nlohmann::json*>{&job.train_overrides, &p.model.train}) {
    if (recipe_name.empty() && table->is_object() && table->contains("recipe")) {
      recipe_name = json_fields::as<std::string>(table->at("recipe"), "recipe", p.model.source + " [train]");
    }
  }
  const Recipe* recipe = recipe_name.empty() ? nullptr : &find_recipe(recipe_name);
  if (recipe) apply_recipe_to_model(p.model, *recipe, job);
  RunSettings& s = p.settings;
  s.model_name = p.model.name;
  apply_train_table(s.train, p.model.train, p.model.source + " [train]");
  if (recipe) {
    apply_train_table(s.train, recipe->train, "recipe " + recipe->name);
    s.train.recipe = recipe->name;
    log::infof("recipe {}: {}; settings {}", recipe->name, recipe->description, recipe->train.dump());
  }
  apply_train_table(s.train, job.train_overrides, "command line");
  validate(s.train);
  if (!s.train.augment.empty()) {
    replace_augmentation(p.model, s.train.augment == "none" ? std::vector<LayerSpec>{}
                                                            : parse_augment_spec(s.train.augment));
  }
  choose_image_size(s, p.model, job);
  s.device = job.device;
  configure_threads(job.threads > 0 ? job.threads : s.train.threads);
  p.device = resolve_device(job.device);
  resolve_precision(s.train.precision, p.device);  // e.g. fp16 without CUDA: refused before any work
}

void resolve_job_data(Prepared& p, const TrainJob& job) {
  RunSettings& s = p.settings;
  s.data = job.data;
  s.data.seed = s.train.seed;
  p.data = resolve_data(s.data);
  require_trainable(p.data.train);
  s.class_names = p.data.train.class_names;
  s.data_resolved = p.data.description;
  // The model and its pretrained weights against the data, before any decoding.
  nn::Network probe(p.model, static_cast<int64_t>(s.class_names.size()), s.height, s.width);
  probe->load_pretrained_weights();
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
  p.group = job.group;
  p.rank_weights_dir = job.rank_weights_dir;
  resolve_settings(p, job);
  resolve_job_data(p, job);
  log::infof("training {} on {} images ({}) from {}", p.model.name, p.data.train.size(),
             class_counts_text(p.settings.class_names, p.data.train.class_counts()), p.data.train.source);
  if (p.data.validation) log::infof("validating on {} images", p.data.validation->size());
  if (p.group) {
    log::infof("data parallel on {} ranks ({}): {} images per rank and step, a global batch of {}",
               p.group->world_size(), p.group->backend(), p.settings.train.batch_size,
               p.settings.train.batch_size * p.group->world_size());
  }
  if (p.writes_run()) {
    create_run(job.out, p.model, p.settings, job.overwrite);
    log::infof("run folder: {}", job.out.string());
  }
  return train_recording_failure(p, job.out, /*resume=*/false, job.stop_after_epochs);
}

namespace {

void write_lr_find_files(const std::filesystem::path& out, const LrFindResult& r, const std::string& model,
                         LrFindOutcome& outcome) {
  ensure_directory(out);
  std::string csv = "step,lr,loss,smoothed_loss\n";
  for (size_t i = 0; i < r.lrs.size(); ++i) {
    csv += fmt::format("{},{:.6e},{:.6f},{:.6f}\n", i, r.lrs[i], r.losses[i], r.smoothed[i]);
  }
  write_file_atomic(out / "lr_find.csv", csv);
  const nlohmann::json j = {{"model", model},
                            {"suggested_lr", r.suggested_lr},
                            {"minimum_lr", r.minimum_lr},
                            {"steepest_lr", r.steepest_lr},
                            {"valley_lr", r.valley_lr},
                            {"diverged", r.diverged},
                            {"steps", r.lrs.size()}};
  write_file_atomic(out / "lr_find.json", j.dump(2) + "\n");
  if (!report::charts_available()) return;
  report::LineChart chart;
  chart.title = "Learning-rate range test: " + model;
  chart.subtitle = fmt::format("suggested {:.1e}: the middle of the longest fall; lowest loss at {:.1e}",
                               r.suggested_lr, r.minimum_lr);
  chart.x_label = "log10 learning rate";
  chart.y_label = "training loss (smoothed)";
  report::Series loss;
  loss.label = "loss";
  loss.y = r.smoothed;
  for (double lr : r.lrs) loss.x.push_back(std::log10(lr));
  // The axis ends a little above the starting loss: the divergence at the end would flatten the rest.
  const double low = *std::min_element(r.smoothed.begin(), r.smoothed.end());
  const double high = std::min(*std::max_element(r.smoothed.begin(), r.smoothed.end()), 1.25 * r.smoothed.front());
  chart.y_min = low - 0.05 * (high - low);
  chart.y_max = high;
  report::Series marker;
  marker.label = "suggested";
  marker.x = {std::log10(r.suggested_lr), std::log10(r.suggested_lr)};
  marker.y = {low, high};
  marker.dashed = true;
  chart.series = {loss, marker};
  outcome.chart = out / "lr_find.png";
  report::render_line_chart(chart, outcome.chart);
}

}  // namespace

LrFindOutcome run_lr_find_job(const TrainJob& job, const LrFindOptions& find) {
  if (job.out.empty()) throw UsageError("--out is required: the folder for the curve and its chart");
  Prepared p;
  resolve_settings(p, job);
  resolve_job_data(p, job);
  log::infof("lr-find: {} on {} images, learning rate {:.0e} to {:.0e} over {} steps", p.model.name,
             p.data.train.size(), find.start_lr, find.end_lr, find.steps);
  const ImageCache train = decode_split(p.data.train, p, "training images");
  nn::Network net = build_network(p, /*resume=*/false);
  LrFindOutcome outcome;
  outcome.result = find_learning_rate(*net, train, p.settings.train, p.device, find);
  write_lr_find_files(job.out, outcome.result, p.model.name, outcome);
  return outcome;
}

std::optional<TrainOutcome> finished_run(const std::filesystem::path& run_dir) {
  const RunRecord record = read_run_record(run_dir);
  read_run_model(run_dir);  // a damaged model.toml is an error here too
  if (!record.finished()) return std::nullopt;
  TrainOutcome outcome;
  outcome.run_dir = run_dir;
  outcome.results = record.results.value_or(RunResults{});
  return outcome;
}

// run.json and model.toml of a run; data parallel, as rank 0 read them.
std::pair<RunRecord, ModelSpec> read_run_files(const std::filesystem::path& run_dir, Collective* group) {
  if (!group) return {read_run_record(run_dir), read_run_model(run_dir)};
  std::string record_text, model_text;
  if (group->is_main()) {
    read_run_record(run_dir);  // rank 0 checks them and stops with their error
    read_run_model(run_dir);
    record_text = read_file(run_dir / run_files::kRunJson);
    model_text = read_file(run_dir / run_files::kModel);
  }
  record_text = group->broadcast_bytes(record_text);
  model_text = group->broadcast_bytes(model_text);
  const std::string source = "run.json of rank 0";
  return {run_record_from_json(nlohmann::json::parse(record_text), source),
          parse_model_toml(model_text, "model.toml of rank 0")};
}

TrainOutcome resume_train_job(const std::filesystem::path& run_dir, const std::string& device, int threads,
                              Collective* group) {
  Prepared p;
  p.group = group;
  auto [record, model] = read_run_files(run_dir, group);
  p.model = std::move(model);
  p.settings = record.settings;
  if (record.finished()) {
    throw UsageError("run '" + run_dir.string() + "' already finished", "train a new run with --out");
  }
  if (!device.empty()) p.settings.device = device;
  configure_threads(threads > 0 ? threads : p.settings.train.threads);
  p.device = resolve_device(p.settings.device);
  DataArgs args = p.settings.data;
  args.class_names = p.settings.class_names;
  p.data = resolve_data(args);
  if (p.data.train.class_names != p.settings.class_names) {
    throw Error("the training data's classes changed since the run started", "resume needs the same data");
  }
  log::infof("resuming run {} ({})", run_dir.string(), p.model.name);
  return train_recording_failure(p, run_dir, /*resume=*/true, 0);
}

}  // namespace tabby
