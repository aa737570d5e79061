// run.json as a typed, versioned record. Every command meets at the run
// folder (train, resume, evaluate, predict, report, run, serve, export), so
// its schema lives here once: one struct, one writer, one reader that checks
// the format, the schema version and the type of every field it reads.
//
// Schema history:
//   1  run.json as written by tabby before the record was typed (no "schema" key)
//   2  the same fields plus "schema": 2
//   3  "distributed": how a data-parallel run was launched (absent otherwise)
// A file of a later schema than this build knows is refused with a hint to
// upgrade; earlier ones are read and, when written back, carry today's schema.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tabby/config/train_options.h"
#include "tabby/dataset/data_args.h"
#include "tabby/util/enum_names.h"

namespace tabby {

enum class RunStatus { created, running, finished, failed };
TABBY_ENUM_NAMES(RunStatus, {RunStatus::created, "created"}, {RunStatus::running, "running"},
                 {RunStatus::finished, "finished"}, {RunStatus::failed, "failed"});

// What a run was started with; written by create_run and never changed after.
struct RunSettings {
  std::string model_name;
  std::vector<std::string> class_names;
  int64_t height = 0, width = 0;
  bool crop_to_aspect = false;
  DataArgs data;
  // How the data was found, for people (resolve_data's description).
  nlohmann::json data_resolved = nlohmann::json::object();
  TrainOptions train;
  std::string device = "auto";
};

// The data as decoded when training started.
struct DecodedData {
  int64_t train_images = 0, validation_images = 0, test_images = 0;
  std::vector<int64_t> train_class_counts;
  // Files that could not be decoded, by split ("train", "validation", "test");
  // a split the run does not have is absent.
  std::map<std::string, int64_t> skipped_files;
  double decode_seconds = 0;
};

struct EvalSummary {
  double loss = 0;
  double accuracy = 0;
  int64_t num_images = 0;
};

struct ParameterCounts {
  int64_t total = 0;
  int64_t trainable = 0;
  int64_t trainable_fine_tune = 0;  // 0: no fine-tuning phase
};

// What a finished training produced.
struct RunResults {
  int epochs_completed = 0;
  bool stopped_early = false;
  KeepWeights kept_weights = KeepWeights::last;
  int best_epoch = 0;  // 0: none
  Monitor best_monitor = Monitor::val_accuracy;
  double best_value = 0;
  bool feature_cache = false;
  double train_seconds = 0;  // of the last process (a resumed run's earlier epochs are in history.csv)
  ParameterCounts params;
  std::vector<std::string> warnings;  // as printed
  int collapsed_at_epoch = 0;         // > 0: every validation image got one class from this epoch on
  std::optional<EvalSummary> validation;  // of the kept weights
  std::optional<EvalSummary> test;
};

// How a data-parallel run was trained (train --distributed / --nproc-per-node).
struct DistributedRun {
  std::string backend;            // "gloo" or "nccl"
  int world_size = 1;             // ranks of the latest launch
  int64_t batch_per_rank = 0;     // --batch-size
  int64_t global_batch = 0;       // batch_per_rank x world_size: the rows of one optimiser step
  std::vector<int> world_sizes;   // of every launch, first to last (a resume may change it)
  bool replicas_identical = false;  // checked at the end: every rank held bit-identical weights
};

struct RunRecord {
  static constexpr int kSchema = 3;
  std::string tabby_version;  // that created the run
  std::string created;        // ISO 8601 local time
  RunSettings settings;
  RunStatus status = RunStatus::created;
  int epochs_completed = 0;            // as checkpointed
  std::optional<DecodedData> decoded;  // once training started
  std::optional<RunResults> results;   // once it finished
  std::string error;                   // why it failed (status failed)
  std::optional<DistributedRun> distributed;  // a data-parallel run

  bool finished() const { return status == RunStatus::finished; }
};

// A new record for `settings`: this build's version, created now, status created.
RunRecord new_run_record(RunSettings settings);

nlohmann::json to_json(const RunRecord& record);
// tabby::Error naming `source` when `j` is not a run record this build can
// read (wrong format, later schema, missing or mistyped field).
RunRecord run_record_from_json(const nlohmann::json& j, const std::string& source);

nlohmann::json to_json(const RunResults& results);
nlohmann::json to_json(const DistributedRun& run);
DistributedRun distributed_run_from_json(const nlohmann::json& j, const std::string& source);
RunResults run_results_from_json(const nlohmann::json& j, const std::string& source);

// RUN/run.json, read and checked; a clear error when `dir` is not a run folder
// or the file is damaged.
RunRecord read_run_record(const std::filesystem::path& dir);
// Replaces RUN/run.json atomically.
void write_run_record(const std::filesystem::path& dir, const RunRecord& record);
// Reads RUN/run.json, lets `change` edit the record, writes it back.
template <typename Change>
RunRecord update_run_record(const std::filesystem::path& dir, Change&& change) {
  RunRecord record = read_run_record(dir);
  change(record);
  write_run_record(dir, record);
  return record;
}

// A folder holding run.json and model.toml.
bool is_run_dir(const std::filesystem::path& dir);

}  // namespace tabby
