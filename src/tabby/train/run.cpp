#include "tabby/train/run.h"

#include "tabby/nn/state_dict.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/weights/safetensors.h"

namespace tabby {

namespace {

// A run that failed before finishing an epoch holds nothing to lose: running the
// same command again after fixing the cause just works.
bool failed_before_first_epoch(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / run_files::kCheckpoint, ec)) return false;
  try {
    return read_run_record(dir).status == RunStatus::failed;
  } catch (const std::exception&) {
    return false;
  }
}

void clear_run_folder(const fs::path& dir, bool overwrite) {
  const bool replaceable = !overwrite && failed_before_first_epoch(dir);
  if (replaceable) log::infof("replacing the run in '{}': it failed before finishing an epoch", dir.string());
  if (!overwrite && !replaceable) {
    throw UsageError("'" + dir.string() + "' already holds a run",
                     "use --resume to continue it, --overwrite to replace it, or another --out folder");
  }
  std::error_code ec;
  for (const char* f : {run_files::kModel, run_files::kRunJson, run_files::kClasses, run_files::kWeights,
                        run_files::kHistory, run_files::kCheckpoint, run_files::kBest}) {
    fs::remove(dir / f, ec);
  }
}

}  // namespace

void create_run(const fs::path& dir, const ModelSpec& model, const RunSettings& settings, bool overwrite) {
  std::error_code ec;
  if (is_run_dir(dir)) {
    clear_run_folder(dir, overwrite);
  } else if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw UsageError("--out '" + dir.string() + "' is a file, not a folder");
  }
  ensure_directory(dir);
  write_file_atomic(dir / run_files::kModel, model_to_toml(model));
  std::string classes;
  for (const auto& name : settings.class_names) classes += name + "\n";
  write_file_atomic(dir / run_files::kClasses, classes);
  write_run_record(dir, new_run_record(settings));
}

}  // namespace tabby
