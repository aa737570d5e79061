// Bridges TOML text and nlohmann::json values: tabby keeps configs as JSON
// internally (easy to validate, print and store) and speaks TOML to people.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace tabby {

// Parses TOML into a JSON object. Syntax errors become a tabby::Error naming
// `source` with line and column.
nlohmann::json parse_toml_to_json(const std::string& text, const std::string& source);

// Writes a JSON object as TOML (tables, arrays of tables for arrays of
// objects). Nulls are dropped: TOML has no null.
std::string json_to_toml(const nlohmann::json& object);

// One JSON value as inline TOML: strings quoted, arrays, objects as inline
// tables ({ a = 1, b = "x" }). For hand-laid-out files such as model.toml.
std::string toml_inline_value(const nlohmann::json& value);

// A key as TOML text: bare when it is one (A-Za-z0-9_-, not empty), else a
// quoted string with escapes, so "a.b", "two words" or "" stay one key.
std::string toml_key(const std::string& key);

}  // namespace tabby
