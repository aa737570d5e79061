#include "tabby/cli/train_option_flags.h"

#include <cerrno>
#include <cstdlib>

#include "tabby/config/train_options.h"
#include "tabby/util/error.h"

namespace tabby::cli {

namespace {

nlohmann::json flag_value(const TrainOptionDef& d, const std::string& text) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  switch (d.kind) {
    case OptionKind::integer: {
      const long long v = std::strtoll(begin, &end, 10);
      if (text.empty() || *end != '\0' || errno == ERANGE) {
        throw UsageError(d.flag + " expects a whole number, got '" + text + "'");
      }
      return static_cast<int64_t>(v);
    }
    case OptionKind::number: {
      const double v = std::strtod(begin, &end);
      if (text.empty() || *end != '\0' || errno == ERANGE) {
        throw UsageError(d.flag + " expects a number, got '" + text + "'");
      }
      return v;
    }
    default:
      return text;
  }
}

const char* type_name(OptionKind kind) {
  switch (kind) {
    case OptionKind::integer: return "INT";
    case OptionKind::number: return "FLOAT";
    default: return "TEXT";
  }
}

}  // namespace

TrainOptionFlags::TrainOptionFlags(CLI::App* app, const std::set<std::string>& only) : app_(app), only_(only) {
  for (const auto& d : train_option_defs()) {
    if (d.flag.empty() || !has_flag(d.key)) continue;
    if (d.kind == OptionKind::boolean) {
      app->add_flag(d.flag, d.help)->group(d.group);
    } else {
      app->add_option(d.flag, text_[d.key], d.help)->group(d.group)->type_name(type_name(d.kind));
    }
  }
}

nlohmann::json TrainOptionFlags::given() const {
  nlohmann::json t = nlohmann::json::object();
  for (const auto& d : train_option_defs()) {
    if (d.flag.empty() || !has_flag(d.key) || app_->count(d.flag) == 0) continue;
    const nlohmann::json value = d.kind == OptionKind::boolean ? nlohmann::json(d.flag_value) : flag_value(d, text_.at(d.key));
    const auto dot = d.key.find('.');
    if (dot == std::string::npos) {
      if (t.contains(d.key) && t[d.key].is_object()) t[d.key]["enabled"] = value;
      else t[d.key] = value;
      continue;
    }
    const std::string table = d.key.substr(0, dot);
    if (!t.contains(table) || !t[table].is_object()) t[table] = {{"enabled", true}};
    t[table][d.key.substr(dot + 1)] = value;
  }
  return t;
}

}  // namespace tabby::cli
