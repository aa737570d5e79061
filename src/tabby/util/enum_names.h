// Option values that are a closed set of words (an optimizer, a monitor, a
// phase) are enums in the code and words in files and flags. One table per
// enum, EnumNames<E>::table, lists the pairs; these helpers read and write
// them so no enum is ever compared as a string.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tabby {

// Specialised next to each enum by TABBY_ENUM_NAMES.
template <typename E>
struct EnumNames;

// TABBY_ENUM_NAMES(Toggle, {Toggle::on, "on"}, {Toggle::off, "off"}): the word of each value.
#define TABBY_ENUM_NAMES(E, ...)                                         \
  template <>                                                            \
  struct EnumNames<E> {                                                  \
    static constexpr std::pair<E, const char*> table[] = {__VA_ARGS__}; \
  }

template <typename E>
const char* enum_name(E value) {
  for (const auto& [v, name] : EnumNames<E>::table) {
    if (v == value) return name;
  }
  return "?";
}

template <typename E>
std::optional<E> enum_from_name(std::string_view name) {
  for (const auto& [v, n] : EnumNames<E>::table) {
    if (name == n) return v;
  }
  return std::nullopt;
}

// "adam, adamw or sgd"
template <typename E>
std::string enum_choices() {
  std::string out;
  const size_t n = std::size(EnumNames<E>::table);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += i + 1 == n ? " or " : ", ";
    out += EnumNames<E>::table[i].second;
  }
  return out;
}

}  // namespace tabby
