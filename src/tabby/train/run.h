// Starting a run folder (run/run_files.h); its weights and loading it for
// inference are in inference/saved_run.h.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "tabby/config/model_spec.h"
#include "tabby/inference/saved_run.h"
#include "tabby/run/run_files.h"
#include "tabby/run/run_record.h"

namespace tabby {

namespace fs = std::filesystem;

// Starts a run folder (model.toml, classes.txt, run.json with status created).
// Refuses a folder that already holds a run unless `overwrite` (then the old
// run's files are removed) or that run failed before its first epoch.
void create_run(const fs::path& dir, const ModelSpec& model, const RunSettings& settings, bool overwrite);

}  // namespace tabby
