#include "tabby/run/run_record.h"

#include <ctime>

#include "tabby/run/run_files.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/json_fields.h"

namespace tabby {

namespace {

using nlohmann::json;
namespace jf = json_fields;

constexpr const char* kFormat = "tabby-run";

std::string now_iso8601() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&t));
  return buf;
}

template <typename E>
E read_choice(const json& j, const std::string& key, E fallback, const std::string& source) {
  const auto word = jf::optional<std::string>(j, key, enum_name(fallback), source);
  if (auto value = enum_from_name<E>(word)) return *value;
  throw Error(source + ": `" + key + "` = '" + word + "' is not one of " + enum_choices<E>());
}

json eval_json(const EvalSummary& e) {
  return {{"loss", e.loss}, {"accuracy", e.accuracy}, {"num_images", e.num_images}};
}

std::optional<EvalSummary> eval_from_json(const json& results, const std::string& key, const std::string& source) {
  const json& e = jf::object(results, key, source);
  if (e.empty()) return std::nullopt;
  const std::string where = source + " " + key;
  return EvalSummary{jf::required<double>(e, "loss", where), jf::required<double>(e, "accuracy", where),
                     jf::required<int64_t>(e, "num_images", where)};
}

json settings_json(const RunSettings& s) {
  json data = data_args_to_json(s.data);
  data["resolved"] = s.data_resolved;
  return {{"model", s.model_name},
          {"classes", s.class_names},
          {"image_size", {s.height, s.width}},
          {"crop_to_aspect", s.crop_to_aspect},
          {"data", data},
          {"train", to_json(s.train)},
          {"device", s.device}};
}

RunSettings settings_from_json(const json& j, const std::string& source) {
  RunSettings s;
  s.model_name = jf::optional<std::string>(j, "model", "", source);
  s.class_names = jf::required<std::vector<std::string>>(j, "classes", source);
  if (s.class_names.empty()) throw Error(source + " lists no classes");
  const auto size = jf::required<std::vector<int64_t>>(j, "image_size", source);
  if (size.size() != 2 || size[0] < 1 || size[1] < 1) throw Error(source + ": `image_size` must be [height, width]");
  s.height = size[0];
  s.width = size[1];
  s.crop_to_aspect = jf::optional<bool>(j, "crop_to_aspect", false, source);
  const json& data = jf::object(j, "data", source);
  s.data = data_args_from_json(data, source + " data");
  s.data_resolved = jf::object(data, "resolved", source + " data");
  s.train = train_options_from_json(jf::object(j, "train", source));
  s.device = jf::optional<std::string>(j, "device", "auto", source);
  return s;
}

void put_decoded(json& j, const DecodedData& d) {
  j["images"] = {{"train", d.train_images}, {"validation", d.validation_images}, {"test", d.test_images}};
  j["train_class_counts"] = d.train_class_counts;
  j["skipped_files"] = d.skipped_files;
  j["decode_seconds"] = d.decode_seconds;
}

std::optional<DecodedData> decoded_from_json(const json& j, const std::string& source) {
  const json& images = jf::object(j, "images", source);
  if (images.empty()) return std::nullopt;
  DecodedData d;
  d.train_images = jf::optional<int64_t>(images, "train", 0, source + " images");
  d.validation_images = jf::optional<int64_t>(images, "validation", 0, source + " images");
  d.test_images = jf::optional<int64_t>(images, "test", 0, source + " images");
  d.train_class_counts = jf::optional<std::vector<int64_t>>(j, "train_class_counts", {}, source);
  d.skipped_files = jf::optional<std::map<std::string, int64_t>>(j, "skipped_files", {}, source);
  d.decode_seconds = jf::optional<double>(j, "decode_seconds", 0.0, source);
  return d;
}

}  // namespace

RunRecord new_run_record(RunSettings settings) {
  RunRecord r;
  r.tabby_version = TABBY_VERSION;
  r.created = now_iso8601();
  r.settings = std::move(settings);
  return r;
}

json to_json(const RunResults& r) {
  json j = {{"epochs_completed", r.epochs_completed},
            {"stopped_early", r.stopped_early},
            {"kept_weights", enum_name(r.kept_weights)},
            {"best_epoch", r.best_epoch},
            {"best_monitor", enum_name(r.best_monitor)},
            {"best_value", r.best_value},
            {"feature_cache", r.feature_cache},
            {"train_seconds", r.train_seconds},
            {"params", {{"total", r.params.total}, {"trainable", r.params.trainable}}}};
  if (r.params.trainable_fine_tune > 0) j["params"]["trainable_fine_tune"] = r.params.trainable_fine_tune;
  if (!r.warnings.empty()) j["warnings"] = r.warnings;
  if (r.collapsed_at_epoch > 0) j["collapsed_at_epoch"] = r.collapsed_at_epoch;
  if (r.validation) j["validation"] = eval_json(*r.validation);
  if (r.test) j["test"] = eval_json(*r.test);
  return j;
}

RunResults run_results_from_json(const json& j, const std::string& source) {
  RunResults r;
  r.epochs_completed = jf::optional<int>(j, "epochs_completed", 0, source);
  r.stopped_early = jf::optional<bool>(j, "stopped_early", false, source);
  r.kept_weights = read_choice(j, "kept_weights", KeepWeights::last, source);
  r.best_epoch = jf::optional<int>(j, "best_epoch", 0, source);
  r.best_monitor = read_choice(j, "best_monitor", Monitor::val_accuracy, source);
  r.best_value = jf::optional<double>(j, "best_value", 0.0, source);
  r.feature_cache = jf::optional<bool>(j, "feature_cache", false, source);
  r.train_seconds = jf::optional<double>(j, "train_seconds", 0.0, source);
  const json& params = jf::object(j, "params", source);
  r.params.total = jf::optional<int64_t>(params, "total", 0, source + " params");
  r.params.trainable = jf::optional<int64_t>(params, "trainable", 0, source + " params");
  r.params.trainable_fine_tune = jf::optional<int64_t>(params, "trainable_fine_tune", 0, source + " params");
  r.warnings = jf::optional<std::vector<std::string>>(j, "warnings", {}, source);
  r.collapsed_at_epoch = jf::optional<int>(j, "collapsed_at_epoch", 0, source);
  r.validation = eval_from_json(j, "validation", source);
  r.test = eval_from_json(j, "test", source);
  return r;
}

json to_json(const DistributedRun& d) {
  return {{"backend", d.backend},           {"world_size", d.world_size},
          {"batch_per_rank", d.batch_per_rank}, {"global_batch", d.global_batch},
          {"world_sizes", d.world_sizes},   {"replicas_identical", d.replicas_identical}};
}

DistributedRun distributed_run_from_json(const json& j, const std::string& source) {
  DistributedRun d;
  d.backend = jf::optional<std::string>(j, "backend", "", source);
  d.world_size = jf::optional<int>(j, "world_size", 1, source);
  d.batch_per_rank = jf::optional<int64_t>(j, "batch_per_rank", 0, source);
  d.global_batch = jf::optional<int64_t>(j, "global_batch", 0, source);
  d.world_sizes = jf::optional<std::vector<int>>(j, "world_sizes", {}, source);
  d.replicas_identical = jf::optional<bool>(j, "replicas_identical", false, source);
  return d;
}

json to_json(const RunRecord& r) {
  json j = settings_json(r.settings);
  j["format"] = kFormat;
  j["schema"] = RunRecord::kSchema;
  j["tabby_version"] = r.tabby_version;
  j["created"] = r.created;
  j["status"] = enum_name(r.status);
  if (r.epochs_completed > 0) j["epochs_completed"] = r.epochs_completed;
  if (r.decoded) put_decoded(j, *r.decoded);
  if (r.results) j["results"] = to_json(*r.results);
  if (!r.error.empty()) j["error"] = r.error;
  if (r.distributed) j["distributed"] = to_json(*r.distributed);
  return j;
}

RunRecord run_record_from_json(const json& j, const std::string& source) {
  if (!j.is_object() || jf::optional<std::string>(j, "format", "", source) != kFormat) {
    throw Error(source + " is not a tabby run record", "give the --out folder of a `tabby train`");
  }
  const int schema = jf::optional<int>(j, "schema", 1, source);
  if (schema > RunRecord::kSchema) {
    throw Error(source + " was written by a newer tabby (run record schema " + std::to_string(schema) +
                    "; this one reads up to " + std::to_string(RunRecord::kSchema) + ")",
                "upgrade tabby to read this run");
  }
  RunRecord r;
  r.settings = settings_from_json(j, source);
  r.tabby_version = jf::optional<std::string>(j, "tabby_version", "", source);
  r.created = jf::optional<std::string>(j, "created", "", source);
  r.status = read_choice(j, "status", RunStatus::created, source);
  r.epochs_completed = jf::optional<int>(j, "epochs_completed", 0, source);
  r.decoded = decoded_from_json(j, source);
  if (const json& results = jf::object(j, "results", source); !results.empty()) {
    r.results = run_results_from_json(results, source + " results");
  }
  r.error = jf::optional<std::string>(j, "error", "", source);
  if (const json& d = jf::object(j, "distributed", source); !d.empty()) {
    r.distributed = distributed_run_from_json(d, source + " distributed");
  }
  return r;
}

bool is_run_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / run_files::kRunJson, ec) && fs::is_regular_file(dir / run_files::kModel, ec);
}

RunRecord read_run_record(const fs::path& dir) {
  if (!is_run_dir(dir)) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw UsageError("run folder '" + dir.string() + "' does not exist");
    throw UsageError("'" + dir.string() + "' is not a tabby run folder (no run.json / model.toml)",
                     "give the --out folder of a `tabby train`");
  }
  const fs::path file = dir / run_files::kRunJson;
  const json j = json::parse(read_file(file), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(file.string() + " is damaged: it is not valid JSON");
  return run_record_from_json(j, file.string());
}

void write_run_record(const fs::path& dir, const RunRecord& record) {
  write_file_atomic(dir / run_files::kRunJson, to_json(record).dump(2) + "\n");
}

}  // namespace tabby
