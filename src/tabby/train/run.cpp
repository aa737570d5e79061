#include "tabby/train/run.h"

#include <chrono>
#include <ctime>

#include "tabby/nn/state_dict.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/weights/safetensors.h"

namespace tabby {

namespace {

std::string now_iso8601() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&t));
  return buf;
}

}  // namespace

bool is_run_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / run_files::kRunJson, ec) && fs::is_regular_file(dir / run_files::kModel, ec);
}

void create_run(const fs::path& dir, const RunConfig& c, bool overwrite) {
  std::error_code ec;
  if (is_run_dir(dir)) {
    // A run that failed before finishing an epoch holds nothing to lose: running the
    // same command again after fixing the cause just works.
    bool failed_empty = false;
    if (!overwrite && !fs::exists(dir / run_files::kCheckpoint, ec)) {
      try {
        failed_empty = read_run_json(dir).value("status", std::string()) == "failed";
      } catch (const std::exception&) {
      }
      if (failed_empty) log::infof("replacing the run in '{}': it failed before finishing an epoch", dir.string());
    }
    if (!overwrite && !failed_empty) {
      throw UsageError("'" + dir.string() + "' already holds a run",
                       "use --resume to continue it, --overwrite to replace it, or another --out folder");
    }
    for (const char* f : {run_files::kModel, run_files::kRunJson, run_files::kClasses, run_files::kWeights,
                          run_files::kHistory, run_files::kCheckpoint, run_files::kBest}) {
      fs::remove(dir / f, ec);
    }
  } else if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw UsageError("--out '" + dir.string() + "' is a file, not a folder");
  }
  ensure_directory(dir);
  write_file_atomic(dir / run_files::kModel, model_to_toml(c.model));
  std::string classes;
  for (const auto& name : c.class_names) classes += name + "\n";
  write_file_atomic(dir / run_files::kClasses, classes);
  nlohmann::json j = {
      {"format", "tabby-run"},
      {"tabby_version", TABBY_VERSION},
      {"created", now_iso8601()},
      {"model", c.model.name},
      {"classes", c.class_names},
      {"image_size", {c.height, c.width}},
      {"crop_to_aspect", c.crop_to_aspect},
      {"data", c.data},
      {"train", to_json(c.train)},
      {"device", c.device},
      {"status", "created"},
  };
  write_file_atomic(dir / run_files::kRunJson, j.dump(2) + "\n");
}

nlohmann::json read_run_json(const fs::path& dir) {
  if (!is_run_dir(dir)) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw UsageError("run folder '" + dir.string() + "' does not exist");
    throw UsageError("'" + dir.string() + "' is not a tabby run folder (no run.json / model.toml)",
                     "give the --out folder of a `tabby train`");
  }
  try {
    return nlohmann::json::parse(read_file(dir / run_files::kRunJson));
  } catch (const nlohmann::json::exception& e) {
    throw Error((dir / run_files::kRunJson).string() + " is damaged: " + e.what());
  }
}

RunConfig read_run_config(const fs::path& dir) {
  nlohmann::json j = read_run_json(dir);
  RunConfig c;
  try {
    c.model = load_model_file(dir / run_files::kModel);
    c.class_names = j.at("classes").get<std::vector<std::string>>();
    c.height = j.at("image_size").at(0).get<int64_t>();
    c.width = j.at("image_size").at(1).get<int64_t>();
    c.crop_to_aspect = j.value("crop_to_aspect", false);
    c.data = j.value("data", nlohmann::json::object());
    c.train = train_options_from_json(j.value("train", nlohmann::json::object()));
    c.device = j.value("device", std::string("auto"));
  } catch (const nlohmann::json::exception& e) {
    throw Error((dir / run_files::kRunJson).string() + " is missing a field: " + e.what());
  }
  if (c.class_names.empty()) throw Error((dir / run_files::kRunJson).string() + " lists no classes");
  return c;
}

void update_run_json(const fs::path& dir, const nlohmann::json& patch) {
  nlohmann::json j = read_run_json(dir);
  j.merge_patch(patch);
  write_file_atomic(dir / run_files::kRunJson, j.dump(2) + "\n");
}

void save_weights(const fs::path& file, const nn::NetworkImpl& net, const std::map<std::string, std::string>& metadata) {
  RawTensorMap raw;
  for (const auto& [name, tensor] : net.named_state()) raw.emplace(name, nn::to_raw(tensor));
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "tabby";
  meta["model"] = net.spec().name;
  write_safetensors(file, raw, meta);
}

void load_weights(const fs::path& file, nn::NetworkImpl& net) {
  auto st = read_safetensors(file);
  try {
    net.load_named_state(nn::to_torch(st.tensors), /*strict=*/true);
  } catch (const Error& e) {
    throw Error(file.string() + ": " + e.what(), "the weights belong to another model; check the run folder");
  }
}

LoadedRun load_run(const fs::path& dir, const torch::Device& device, const std::string& weights_file) {
  LoadedRun run;
  run.dir = dir;
  run.config = read_run_config(dir);
  const fs::path weights = dir / weights_file;
  std::error_code ec;
  if (!fs::is_regular_file(weights, ec)) {
    throw Error("run '" + dir.string() + "' has no " + weights_file + " yet",
                "the training did not finish; `tabby train --resume " + dir.string() + "` continues it");
  }
  run.net = nn::Network(run.config.model, static_cast<int64_t>(run.config.class_names.size()), run.config.height,
                        run.config.width);
  load_weights(weights, *run.net);
  run.net->to(device);
  run.net->set_channels_last(run.config.train.channels_last != "off");
  run.net->eval();
  return run;
}

}  // namespace tabby
