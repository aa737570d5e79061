// Reading the JSON records tabby writes (run.json, checkpoints, evaluations)
// into typed structs. A field that is present must have the expected type: a
// wrong type is a tabby::Error naming the file and the key, never a silent
// default. Integers must fit the target type (a negative seed does not wrap).
#pragma once

#include <nlohmann/json.hpp>

#include <limits>
#include <string>
#include <type_traits>

#include "tabby/util/error.h"

namespace tabby::json_fields {

namespace detail {

template <typename T>
bool integer_fits(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  const int64_t i = v.get<int64_t>();
  if constexpr (std::is_unsigned_v<T>) {
    return i >= 0 && static_cast<uint64_t>(i) <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  } else {
    return i >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
           i <= static_cast<int64_t>(std::numeric_limits<T>::max());
  }
}

template <typename T>
const char* kind_of() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else return "of another type";
}

template <typename T>
bool has_type(const nlohmann::json& v) {
  if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
  else if constexpr (std::is_integral_v<T>) return v.is_number_integer();
  else if constexpr (std::is_floating_point_v<T>) return v.is_number();
  else if constexpr (std::is_same_v<T, std::string>) return v.is_string();
  else return true;  // containers and structs: get<T>() checks
}

}  // namespace detail

// `value` converted to T; tabby::Error "<source>: `key` must be ..." otherwise.
template <typename T>
T as(const nlohmann::json& value, const std::string& key, const std::string& source) {
  if (!detail::has_type<T>(value)) {
    throw Error(source + ": `" + key + "` must be " + detail::kind_of<T>());
  }
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!detail::integer_fits<T>(value)) {
      throw Error(source + ": `" + key + "` = " + value.dump() + " is out of range",
                  "use an integer from " + std::to_string(std::numeric_limits<T>::min()) + " to " +
                      std::to_string(std::numeric_limits<T>::max()));
    }
  }
  try {
    return value.get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(source + ": `" + key + "` has the wrong type");
  }
}

// obj[key], which must be there.
template <typename T>
T required(const nlohmann::json& obj, const std::string& key, const std::string& source) {
  const auto it = obj.is_object() ? obj.find(key) : obj.end();
  if (!obj.is_object() || it == obj.end()) throw Error(source + ": `" + key + "` is missing");
  return as<T>(*it, key, source);
}

// obj[key] when it is there (and not null), else `fallback`.
template <typename T>
T optional(const nlohmann::json& obj, const std::string& key, T fallback, const std::string& source) {
  if (!obj.is_object()) return fallback;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  return as<T>(*it, key, source);
}

// obj[key] as an object (empty when absent); an error when it is something else.
inline const nlohmann::json& object(const nlohmann::json& obj, const std::string& key, const std::string& source) {
  static const nlohmann::json empty = nlohmann::json::object();
  if (!obj.is_object()) return empty;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return empty;
  if (!it->is_object()) throw Error(source + ": `" + key + "` must be a table");
  return *it;
}

}  // namespace tabby::json_fields
