#pragma once

#include <string>
#include <string_view>
#include <vector>

// Small string helpers the parsers and messages share.
namespace tabby::util {

// `text` without the given characters at either end (spaces and tabs unless told).
std::string trim(std::string_view text, std::string_view characters = " \t");

// The items with `separator` between them: {"a", "b"} -> "a, b".
std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");

}  // namespace tabby::util
