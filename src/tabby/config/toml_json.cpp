#include "tabby/config/toml_json.h"

#include <toml++/toml.h>

#include <algorithm>
#include <sstream>

#include "tabby/config/toml_prescan.h"
#include "tabby/util/error.h"

namespace tabby {

namespace {

nlohmann::json node_to_json(const toml::node& node) {
  if (auto* t = node.as_table()) {
    nlohmann::json obj = nlohmann::json::object();
    for (const auto& [key, value] : *t) obj[std::string(key.str())] = node_to_json(value);
    return obj;
  }
  if (auto* a = node.as_array()) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& v : *a) arr.push_back(node_to_json(v));
    return arr;
  }
  if (auto* v = node.as_string()) return v->get();
  if (auto* v = node.as_integer()) return v->get();
  if (auto* v = node.as_floating_point()) return v->get();
  if (auto* v = node.as_boolean()) return v->get();
  // Dates and times have no use in tabby configs; keep their text.
  std::ostringstream s;
  node.visit([&s](const auto& v) { s << v; });
  return s.str();
}

void fill_table(toml::table& table, const nlohmann::json& object);

toml::array to_array(const nlohmann::json& arr);

void insert_value(toml::table& table, const std::string& key, const nlohmann::json& v) {
  if (v.is_null()) return;
  if (v.is_object()) {
    toml::table sub;
    fill_table(sub, v);
    table.insert_or_assign(key, std::move(sub));
  } else if (v.is_array()) {
    table.insert_or_assign(key, to_array(v));
  } else if (v.is_boolean()) {
    table.insert_or_assign(key, v.get<bool>());
  } else if (v.is_number_integer()) {
    table.insert_or_assign(key, v.get<int64_t>());
  } else if (v.is_number()) {
    table.insert_or_assign(key, v.get<double>());
  } else {
    table.insert_or_assign(key, v.get<std::string>());
  }
}

toml::array to_array(const nlohmann::json& arr) {
  toml::array out;
  for (const auto& v : arr) {
    if (v.is_null()) continue;
    if (v.is_object()) {
      toml::table sub;
      fill_table(sub, v);
      out.push_back(std::move(sub));
    } else if (v.is_array()) {
      out.push_back(to_array(v));
    } else if (v.is_boolean()) {
      out.push_back(v.get<bool>());
    } else if (v.is_number_integer()) {
      out.push_back(v.get<int64_t>());
    } else if (v.is_number()) {
      out.push_back(v.get<double>());
    } else {
      out.push_back(v.get<std::string>());
    }
  }
  return out;
}

void fill_table(toml::table& table, const nlohmann::json& object) {
  for (auto it = object.begin(); it != object.end(); ++it) insert_value(table, it.key(), it.value());
}

// A TOML basic string. JSON's escapes are valid TOML escapes; TOML also wants
// DEL escaped, which JSON leaves as it is (0x7F is never part of a multi-byte
// UTF-8 sequence, so replacing the byte is safe).
std::string basic_string(const std::string& text) {
  const std::string json_text = nlohmann::json(text).dump();
  std::string out;
  out.reserve(json_text.size());
  for (char c : json_text) {
    if (c == '\x7f') {
      out += "\\u007f";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string toml_key(const std::string& key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  return bare ? key : basic_string(key);
}

nlohmann::json parse_toml_to_json(const std::string& text, const std::string& source) {
  check_toml_characters(text, source);  // what toml++ 3.3 mishandles (see the header)
  try {
    toml::table table = toml::parse(text, source);
    return node_to_json(table);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw Error(source + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) +
                    ": " + std::string(e.description()),
                "fix the TOML syntax at that line");
  }
}

std::string toml_inline_value(const nlohmann::json& v) {
  if (v.is_object()) {
    std::string out = "{ ";
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.value().is_null()) continue;
      out += (first ? "" : ", ") + toml_key(it.key()) + " = " + toml_inline_value(it.value());
      first = false;
    }
    return out + (first ? "}" : " }");
  }
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + toml_inline_value(v[i]);
    return out + "]";
  }
  if (v.is_number_float()) {
    // TOML floats need a decimal point or exponent; JSON's shortest form may lack one.
    std::string s = v.dump();
    if (s.find_first_of(".eE") == std::string::npos && s.find("inf") == std::string::npos &&
        s.find("nan") == std::string::npos) {
      s += ".0";
    }
    return s;
  }
  if (v.is_string()) return basic_string(v.get<std::string>());
  return v.dump();  // integers and booleans
}

std::string json_to_toml(const nlohmann::json& object) {
  toml::table table;
  fill_table(table, object);
  std::ostringstream out;
  out << table << "\n";
  return out.str();
}

}  // namespace tabby
