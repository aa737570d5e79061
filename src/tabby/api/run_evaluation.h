// The evaluation a run's report shows, computed once and cached as
// RUN/evaluation.json: the kept weights on the run's own test data (else its
// validation data) — metrics, confusion matrix, the most confidently wrong
// files and a fixed random sample of predictions for the grid. Training
// leaves its final evaluation there when its rows can be matched to files, so
// a report after training does not run the model again; the cache is stale
// once weights.safetensors is newer.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tabby/api/evaluate_job.h"
#include "tabby/api/report_options.h"
#include "tabby/api/train_job.h"

namespace tabby {

// One shown prediction.
struct PredictionSample {
  std::filesystem::path file;
  int label = 0;
  int predicted = 0;
  double probability = 0;  // of the predicted class
};

// An evaluation as a report shows it: the metrics (EvaluateOutcome; its
// tensors are empty when read back from JSON) and the sample for the grid.
struct RunEvaluation {
  std::string split;  // "test", "validation", or "evaluation" (tabby evaluate)
  EvaluateOutcome outcome;
  std::vector<PredictionSample> samples;
};

// Picks `grid_size` predictions at random (seeded) from outcome.result
// (which must hold the probabilities; rows map to files through
// result.indices and outcome.paths) for the prediction grid.
RunEvaluation make_run_evaluation(const EvaluateOutcome& outcome, const std::string& split, size_t grid_size = 16,
                                  uint64_t seed = 1337);
nlohmann::json to_json(const RunEvaluation& evaluation);
// tabby::Error naming `source` when the JSON is not an evaluation.
RunEvaluation run_evaluation_from_json(const nlohmann::json& j, const std::string& source);

// The cached RUN/evaluation.json when it is fresh, else (options.evaluate) the
// kept weights evaluated on the run's test data (else validation data) and
// cached for next time. nullopt when the run has neither, or evaluating is off
// and nothing is cached. `evaluated` says whether the model ran.
std::optional<RunEvaluation> run_evaluation(const std::filesystem::path& run_dir, const ReportOptions& options,
                                            bool* evaluated = nullptr);

// After training: caches the outcome's final evaluation (test when there is
// test data, else validation) as RUN/evaluation.json when its rows can be
// matched to the run's files (no file was skipped while decoding). Returns
// whether it did.
bool cache_training_evaluation(const TrainOutcome& outcome);

}  // namespace tabby
