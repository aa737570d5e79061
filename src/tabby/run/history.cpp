#include "tabby/run/history.h"

#include <cmath>
#include <sstream>

#include <fmt/format.h>

#include "tabby/run/run_files.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/json_fields.h"

namespace tabby {

double EpochRecord::metric(Monitor monitor) const {
  switch (monitor) {
    case Monitor::loss: return loss;
    case Monitor::accuracy: return accuracy;
    case Monitor::val_loss: return val_loss;
    case Monitor::val_accuracy: return val_accuracy;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

namespace {

std::string number(double v) {
  if (std::isnan(v)) return "";
  return fmt::format("{:.6g}", v);
}

double parse_number(const std::string& s, const std::string& source, int line) {
  if (s.empty()) return std::numeric_limits<double>::quiet_NaN();
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size()) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw Error(source + ":" + std::to_string(line) + ": '" + s + "' is not a number");
  }
}

TrainPhase parse_phase(const std::string& word, const std::string& where) {
  if (auto phase = enum_from_name<TrainPhase>(word)) return *phase;
  throw Error(where + ": unknown training phase '" + word + "'", "expected " + enum_choices<TrainPhase>());
}

const char* kHeader = "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,phase";

}  // namespace

std::string history_to_csv(const std::vector<EpochRecord>& history) {
  std::string out = std::string(kHeader) + "\n";
  for (const auto& r : history) {
    out += fmt::format("{},{},{},{},{},{},{:.3f},{}\n", r.epoch, number(r.loss), number(r.accuracy), number(r.val_loss),
                       number(r.val_accuracy), number(r.lr), r.seconds, enum_name(r.phase));
  }
  return out;
}

std::vector<EpochRecord> history_from_csv(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  std::string line;
  std::vector<EpochRecord> out;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1) {
      if (line.rfind("epoch,", 0) != 0) throw Error(source + ": not a tabby history.csv (bad header)");
      continue;
    }
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) f.push_back(cell);
    if (!line.empty() && line.back() == ',') f.push_back("");
    if (f.size() < 7) throw Error(source + ":" + std::to_string(line_no) + ": expected 8 columns");
    EpochRecord r;
    r.epoch = static_cast<int>(parse_number(f[0], source, line_no));
    r.loss = parse_number(f[1], source, line_no);
    r.accuracy = parse_number(f[2], source, line_no);
    r.val_loss = parse_number(f[3], source, line_no);
    r.val_accuracy = parse_number(f[4], source, line_no);
    r.lr = parse_number(f[5], source, line_no);
    r.seconds = parse_number(f[6], source, line_no);
    if (f.size() > 7 && !f[7].empty()) r.phase = parse_phase(f[7], source + ":" + std::to_string(line_no));
    out.push_back(r);
  }
  return out;
}

std::vector<EpochRecord> read_history_if_present(const std::filesystem::path& run_dir) {
  const std::filesystem::path file = run_dir / run_files::kHistory;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return {};
  return history_from_csv(read_file(file), file.string());
}

nlohmann::json history_to_json(const std::vector<EpochRecord>& history) {
  auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& r : history) {
    arr.push_back({{"epoch", r.epoch},
                   {"loss", num(r.loss)},
                   {"accuracy", num(r.accuracy)},
                   {"val_loss", num(r.val_loss)},
                   {"val_accuracy", num(r.val_accuracy)},
                   {"lr", r.lr},
                   {"seconds", r.seconds},
                   {"phase", enum_name(r.phase)}});
  }
  return arr;
}

std::vector<EpochRecord> history_from_json(const nlohmann::json& j, const std::string& source) {
  namespace jf = json_fields;
  // Epochs without a value (no validation data) are null.
  auto metric = [&](const nlohmann::json& e, const char* key) {
    return jf::optional<double>(e, key, std::numeric_limits<double>::quiet_NaN(), source);
  };
  if (!j.is_array()) throw Error(source + ": the history must be a list of epochs");
  std::vector<EpochRecord> out;
  for (const auto& e : j) {
    EpochRecord r;
    r.epoch = jf::required<int>(e, "epoch", source);
    r.loss = metric(e, "loss");
    r.accuracy = metric(e, "accuracy");
    r.val_loss = metric(e, "val_loss");
    r.val_accuracy = metric(e, "val_accuracy");
    r.lr = jf::optional<double>(e, "lr", 0.0, source);
    r.seconds = jf::optional<double>(e, "seconds", 0.0, source);
    r.phase = parse_phase(jf::optional<std::string>(e, "phase", "train", source), source);
    out.push_back(r);
  }
  return out;
}

}  // namespace tabby
