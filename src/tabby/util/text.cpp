#include "tabby/util/text.h"

namespace tabby::util {

std::string trim(std::string_view text, std::string_view characters) {
  const size_t begin = text.find_first_not_of(characters);
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(characters);
  return std::string(text.substr(begin, end - begin + 1));
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += separator;
    out += items[i];
  }
  return out;
}

}  // namespace tabby::util
