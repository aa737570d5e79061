#include "tabby/dataset/data_args.h"

#include <fmt/format.h>

#include <utility>

#include "tabby/util/json_fields.h"

namespace tabby {

nlohmann::json data_args_to_json(const DataArgs& a) {
  return {{"data", a.data},   {"split", a.split},           {"val", a.val},
          {"val_split", a.val_split}, {"validation_split", a.validation_split}, {"test", a.test},
          {"test_split", a.test_split}, {"test_fraction", a.test_fraction}, {"stratify", a.stratify},
          {"seed", a.seed}};
}

DataArgs data_args_from_json(const nlohmann::json& j, const std::string& source) {
  namespace jf = json_fields;
  DataArgs a;
  a.data = jf::optional<std::string>(j, "data", "", source);
  a.split = jf::optional<std::string>(j, "split", "", source);
  a.val = jf::optional<std::string>(j, "val", "", source);
  a.val_split = jf::optional<std::string>(j, "val_split", "", source);
  a.validation_split = jf::optional<double>(j, "validation_split", 0.0, source);
  a.test = jf::optional<std::string>(j, "test", "", source);
  a.test_split = jf::optional<std::string>(j, "test_split", "", source);
  a.test_fraction = jf::optional<double>(j, "test_fraction", 0.0, source);
  a.stratify = jf::optional<bool>(j, "stratify", false, source);
  a.seed = jf::optional<uint64_t>(j, "seed", 1337, source);
  return a;
}

std::string describe_data_args(const DataArgs& d) {
  std::string out = d.data;
  const std::pair<const char*, const std::string*> named[] = {
      {"split", &d.split}, {"val", &d.val}, {"val_split", &d.val_split}, {"test", &d.test}, {"test_split", &d.test_split}};
  for (const auto& [key, value] : named) {
    if (!value->empty()) out += fmt::format(", {} {}", key, *value);
  }
  if (d.validation_split > 0) out += fmt::format(", validation_split {}", d.validation_split);
  if (d.test_fraction > 0) out += fmt::format(", test_fraction {}", d.test_fraction);
  return out;
}

}  // namespace tabby
