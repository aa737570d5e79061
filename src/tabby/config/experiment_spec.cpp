// Experiment files: TOML -> ExperimentSpec, with every mistake reported
// against the file before any training starts (a typo found after three hours
// of training would be expensive).
#include "tabby/config/experiment_spec.h"

#include <fmt/format.h>

#include <cctype>
#include <set>

#include "tabby/config/presets.h"
#include "tabby/config/toml_json.h"
#include "tabby/config/train_options.h"
#include "tabby/dataset/split_spec.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/settings.h"
#include "tabby/util/text.h"

namespace tabby {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string> kTopKeys = {"name", "description", "out", "data", "train", "models"};
const std::vector<std::string> kDataKeys = {"data",          "split",      "val",  "val_split", "validation_split",
                                            "test",          "test_split", "test_fraction", "stratify", "seed",
                                            "image_size",    "crop_to_aspect"};
// Keys of a [[models]] entry besides [train] keys.
const std::vector<std::string> kModelKeys = {"name",    "model",           "description", "image_size",
                                             "weights", "freeze_backbone", "include_top"};

bool contains(const std::vector<std::string>& list, const std::string& key) {
  return std::find(list.begin(), list.end(), key) != list.end();
}

// A checker for one table of the file: where it is ("<file> [data]") and typed reads.
struct Table {
  const json& j;
  std::string where;

  void only(const std::vector<std::string>& allowed) const {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!contains(allowed, it.key())) {
        throw Error(where + ": unknown key '" + it.key() + "'", "allowed keys: " + util::join(allowed));
      }
    }
  }
  [[noreturn]] void bad(const std::string& key, const std::string& expected) const {
    throw Error(where + ": `" + key + "` must be " + expected);
  }
  bool has(const std::string& key) const { return j.contains(key); }
  std::string str(const std::string& key, const std::string& fallback = {}) const {
    if (!has(key)) return fallback;
    if (!j[key].is_string()) bad(key, "a string");
    return j[key].get<std::string>();
  }
  bool boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j[key].is_boolean()) bad(key, "true or false");
    return j[key].get<bool>();
  }
  double fraction(const std::string& key) const {
    if (!has(key)) return 0;
    if (!j[key].is_number()) bad(key, "a number from 0 to 1 (e.g. 0.2)");
    const double v = j[key].get<double>();
    if (!(v >= 0 && v < 1)) bad(key, "a number from 0 to 1 (e.g. 0.2), got " + j[key].dump());
    return v;
  }
  uint64_t seed(const std::string& key, uint64_t fallback) const {
    if (!has(key)) return fallback;
    if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0) bad(key, "a non-negative integer");
    return j[key].get<uint64_t>();
  }
  // N, [H, W] or "HxW": sizes from 8 to 4096.
  std::pair<int64_t, int64_t> image_size(const std::string& key) const {
    const json& v = j[key];
    const std::string expected = "N, [H, W] or \"HxW\" with sizes from 8 to 4096 (e.g. 150 or [160, 120])";
    auto check = [&](int64_t n) {
      if (n < 8 || n > 4096) bad(key, expected + ", got " + v.dump());
      return n;
    };
    if (v.is_number_integer()) {
      const int64_t n = check(v.get<int64_t>());
      return {n, n};
    }
    if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer()) {
      return {check(v[0].get<int64_t>()), check(v[1].get<int64_t>())};
    }
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      const auto x = s.find_first_of("xX");
      try {
        size_t used = 0;
        if (x == std::string::npos) {
          const int64_t n = std::stoll(s, &used);
          if (used == s.size()) return {check(n), check(n)};
        } else {
          const std::string hs = s.substr(0, x), ws = s.substr(x + 1);
          size_t used_w = 0;
          const int64_t h = std::stoll(hs, &used), w = std::stoll(ws, &used_w);
          if (used == hs.size() && used_w == ws.size()) return {check(h), check(w)};
        }
      } catch (const std::logic_error&) {
      }
    }
    bad(key, expected);
  }
};

void check_split(const Table& t, const std::string& key) {
  const std::string text = t.str(key);
  if (text.empty()) {
    if (t.has(key)) t.bad(key, "a split spec such as 'train[:40%]', not empty");
    return;
  }
  try {
    parse_split_union(text);
  } catch (const Error& e) {
    throw Error(t.where + ": `" + key + "` = '" + text + "': " + e.what(), e.hint());
  }
}

ExperimentData parse_data(const json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": [data] must be a table");
  Table t{j, source + " [data]"};
  t.only(kDataKeys);
  ExperimentData d;
  d.data = t.str("data");
  if (d.data.empty()) {
    throw Error(t.where + ": `data` is required",
                "a folder with one sub-folder per class, a CSV of path,label, or a folder of split folders");
  }
  d.split = t.str("split");
  d.val = t.str("val");
  d.val_split = t.str("val_split");
  d.validation_split = t.fraction("validation_split");
  d.test = t.str("test");
  d.test_split = t.str("test_split");
  d.test_fraction = t.fraction("test_fraction");
  d.stratify = t.boolean("stratify", false);
  d.seed = t.seed("seed", 1337);
  d.crop_to_aspect = t.boolean("crop_to_aspect", false);
  if (t.has("image_size")) {
    auto [h, w] = t.image_size("image_size");
    d.image_height = h;
    d.image_width = w;
  }
  for (const char* key : {"split", "val_split", "test_split"}) check_split(t, key);
  const int val_ways = !d.val.empty() + !d.val_split.empty() + (d.validation_split > 0);
  const int test_ways = !d.test.empty() + !d.test_split.empty() + (d.test_fraction > 0);
  if (val_ways > 1) throw Error(t.where + ": give only one of val, val_split and validation_split");
  if (test_ways > 1) throw Error(t.where + ": give only one of test, test_split and test_fraction");
  if ((!d.val_split.empty() || !d.test_split.empty()) && d.split.empty()) {
    throw Error(t.where + ": val_split / test_split need `split` for the training part",
                "e.g. split = \"train[:40%]\" and val_split = \"train[40%:50%]\"");
  }
  if (d.validation_split + d.test_fraction >= 1) {
    throw Error(t.where + ": validation_split + test_fraction must be less than 1");
  }
  return d;
}

// Checks a [train] table the way `tabby train` would, naming the file.
void check_train(const json& train, const std::string& where) {
  if (train.contains("seed")) {
    throw Error(where + ": `seed` belongs in [data]", "every model of an experiment uses the same split and seed");
  }
  for (const char* key : {"image_size", "crop_to_aspect"}) {
    if (train.contains(key)) {
      throw Error(where + ": `" + std::string(key) + "` belongs in [data] (or image_size in a [[models]] entry)");
    }
  }
  TrainOptions options;
  try {
    apply_train_table(options, train, where);
    validate(options);
  } catch (const Error& e) {
    std::string what = e.what();
    if (what.rfind(where, 0) != 0) what = where + ": " + what;
    throw Error(what, e.hint());
  }
}

bool is_safe_name(const std::string& name) {
  if (name.empty() || name.size() > 100 || name[0] == '.' || name[0] == '-') return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

ExperimentModel parse_model(const json& j, size_t index, const json& shared_train, const std::string& source) {
  const std::string where0 = fmt::format("{} [[models]] #{}", source, index + 1);
  if (!j.is_object()) throw Error(where0 + ": must be a table");
  Table t{j, where0};
  ExperimentModel m;
  m.name = t.str("name");
  if (m.name.empty()) throw Error(where0 + ": `name` is required", "a short name; it becomes the model's run folder");
  t.where = fmt::format("{} model '{}'", source, m.name);
  if (!is_safe_name(m.name)) {
    throw Error(t.where + ": the name must be usable as a folder name",
                "use letters, digits, '-', '_' and '.', e.g. \"2-cnn-augmented\"");
  }
  m.model = t.str("model");
  if (m.model.empty()) {
    throw Error(t.where + ": `model` is required", "a preset (`tabby summary --list`) or a model .toml file");
  }
  m.description = t.str("description");
  if (t.has("image_size")) {
    auto [h, w] = t.image_size("image_size");
    m.image_height = h;
    m.image_width = w;
  }
  if (t.has("weights")) m.weights = t.str("weights");
  if (t.has("freeze_backbone")) m.freeze_backbone = t.boolean("freeze_backbone", true);
  if (t.has("include_top")) m.include_top = t.boolean("include_top", false);
  json own = json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!contains(kModelKeys, it.key())) own[it.key()] = it.value();
  }
  m.train = shared_train;
  m.train.merge_patch(own);
  try {
    check_train(m.train, t.where);
  } catch (const Error& e) {
    std::string what = e.what();
    // apply_train_table says "[train] has an unknown key"; in a model entry the
    // key may as well be a misspelt model key.
    if (what.find("unknown key") != std::string::npos) {
      throw Error(what, "model keys: " + util::join(kModelKeys) + "; or a [train] key (epochs, lr, batch_size, ...)");
    }
    throw;
  }
  return m;
}

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// See the header: cwd, then the file's folder, then shared roots for shared/... paths.
std::string resolve_path(const std::string& text, const fs::path& file_dir) {
  if (text.empty()) return text;
  const fs::path p(text);
  if (p.is_absolute() || path_exists(p)) return text;
  if (!file_dir.empty() && path_exists(file_dir / p)) return (file_dir / p).lexically_normal().string();
  // "../shared/datasets/x" or "shared/datasets/x": the part after "shared".
  fs::path rest;
  bool after_shared = false;
  for (const auto& part : p) {
    if (after_shared) {
      rest /= part;
    } else if (part == "shared") {
      after_shared = true;
    } else if (part != "..") {
      break;
    }
  }
  if (after_shared && !rest.empty()) {
    for (const auto& root : shared_roots()) {
      if (path_exists(root / rest)) return (root / rest).string();
    }
  }
  return text;
}

}  // namespace

const ExperimentModel* ExperimentSpec::find_model(const std::string& wanted) const {
  for (const auto& m : models) {
    if (m.name == wanted) return &m;
  }
  return nullptr;
}

ExperimentSpec parse_experiment_toml(const std::string& text, const std::string& source,
                                     const std::string& default_name) {
  const json root = parse_toml_to_json(text, source);
  Table t{root, source};
  t.only(kTopKeys);
  ExperimentSpec spec;
  spec.source = source;
  spec.name = t.str("name", default_name);
  spec.description = t.str("description");
  spec.out = t.str("out");
  if (!root.contains("data")) {
    throw Error(source + ": the [data] table is missing", "add [data] with data = \"FOLDER\" (and val/test settings)");
  }
  spec.data = parse_data(root["data"], source);
  if (root.contains("train")) {
    if (!root["train"].is_object()) throw Error(source + ": [train] must be a table");
    spec.train = root["train"];
    check_train(spec.train, source + " [train]");
  }
  if (!root.contains("models") || !root["models"].is_array() || root["models"].empty()) {
    throw Error(source + ": no models: the file needs at least one [[models]] table",
                "[[models]]\nname = \"cnn\"\nmodel = \"tutorial-cnn\"");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < root["models"].size(); ++i) {
    ExperimentModel m = parse_model(root["models"][i], i, spec.train, source);
    if (!names.insert(m.name).second) {
      throw Error(source + ": two models are named '" + m.name + "'", "each model needs its own name (its run folder)");
    }
    spec.models.push_back(std::move(m));
  }
  return spec;
}

ExperimentSpec load_experiment_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw UsageError("experiment file '" + path.string() + "' not found",
                     "pass a .toml file such as experiments/cats-vs-dogs-tutorial.toml");
  }
  ExperimentSpec spec = parse_experiment_toml(read_file(path), path.string(), path.stem().string());
  const fs::path dir = path.parent_path();
  ExperimentData& d = spec.data;
  for (std::string* p : {&d.data, &d.val, &d.test}) *p = resolve_path(*p, dir);
  for (auto& m : spec.models) {
    if (!preset_toml(m.model)) m.model = resolve_path(m.model, dir);
    if (m.weights && *m.weights != "imagenet" && *m.weights != "none") *m.weights = resolve_path(*m.weights, dir);
  }
  return spec;
}

json to_json(const ExperimentData& d) {
  json j = {{"data", d.data},   {"split", d.split},           {"val", d.val},
            {"val_split", d.val_split}, {"validation_split", d.validation_split}, {"test", d.test},
            {"test_split", d.test_split}, {"test_fraction", d.test_fraction}, {"stratify", d.stratify},
            {"seed", d.seed},   {"crop_to_aspect", d.crop_to_aspect}};
  if (d.image_height) j["image_size"] = {*d.image_height, *d.image_width};
  return j;
}

json model_fingerprint(const ExperimentSpec& spec, const ExperimentModel& m) {
  // Paths compare by where they lead, not how they were written ("../shared/x"
  // from one folder is "/work/shared/x" from another).
  json data = to_json(spec.data);
  for (const char* key : {"data", "val", "test"}) {
    const std::string p = data[key].get<std::string>();
    std::error_code ec;
    if (!p.empty()) data[key] = fs::weakly_canonical(fs::absolute(p), ec).string();
  }
  std::string model = m.model;
  if (!preset_toml(model)) {
    std::error_code ec;
    model = fs::weakly_canonical(fs::absolute(model), ec).string();
  }
  json j = {{"model", model}, {"train", m.train}, {"data", data}};
  if (m.image_height) j["image_size"] = {*m.image_height, *m.image_width};
  if (m.weights) j["weights"] = *m.weights;
  if (m.freeze_backbone) j["freeze_backbone"] = *m.freeze_backbone;
  if (m.include_top) j["include_top"] = *m.include_top;
  return j;
}

json to_json(const ExperimentSpec& spec) {
  json models = json::array();
  for (const auto& m : spec.models) {
    json e = model_fingerprint(spec, m);
    e.erase("data");
    e["name"] = m.name;
    e["description"] = m.description;
    models.push_back(e);
  }
  return {{"name", spec.name}, {"description", spec.description}, {"source", spec.source},
          {"data", to_json(spec.data)}, {"train", spec.train}, {"models", models}};
}

}  // namespace tabby
