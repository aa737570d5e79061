#include "tabby/util/cpu_features.h"

#include <fstream>
#include <sstream>

namespace tabby {

bool cpuinfo_has_native_bf16(const std::string& cpuinfo) {
  std::istringstream lines(cpuinfo);
  std::string line;
  while (std::getline(lines, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || line.compare(0, 5, "flags") != 0) continue;
    std::istringstream flags(line.substr(colon + 1));
    std::string flag;
    while (flags >> flag) {
      if (flag == "avx512_bf16" || flag == "amx_bf16") return true;
    }
    return false;  // the first processor's flags speak for all
  }
  return false;
}

bool cpu_has_native_bf16() {
  static const bool native = [] {
    std::ifstream in("/proc/cpuinfo");
    std::stringstream text;
    text << in.rdbuf();
    return cpuinfo_has_native_bf16(text.str());
  }();
  return native;
}

}  // namespace tabby
