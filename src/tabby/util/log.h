// Messages for people go to stderr; results go to stdout. `quiet` silences
// informational lines (errors always print).
#pragma once

#include <fmt/format.h>

#include <string>

namespace tabby::log {

void set_quiet(bool quiet);
bool quiet();
// Put before every warning and error line ("[rank 1] " in a distributed job, so
// a person can tell the processes' messages apart).
void set_prefix(const std::string& prefix);
const std::string& prefix();
// Off: warnings are not printed either (only errors), for the ranks of a
// data-parallel job whose warnings rank 0 already gives.
void set_warnings(bool on);

// One informational line on stderr.
void info(const std::string& line);
void warn(const std::string& line);
// "warning: LINE" then "hint: HINT", as errors print theirs.
void warn(const std::string& line, const std::string& hint);
// "error: LINE" (and "hint: HINT"): for a failure a long-running command reports and survives or ends on.
void error(const std::string& line, const std::string& hint = {});

template <typename... Args>
void infof(fmt::format_string<Args...> f, Args&&... args) {
  if (!quiet()) info(fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
void warnf(fmt::format_string<Args...> f, Args&&... args) {
  warn(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tabby::log
