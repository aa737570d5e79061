#include "tabby/util/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace tabby::log {

namespace {
std::atomic<bool> g_quiet{false};
std::mutex g_mutex;
}  // namespace

void set_quiet(bool q) { g_quiet = q; }
bool quiet() { return g_quiet; }

void info(const std::string& line) {
  if (g_quiet) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void warn(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "warning: %s\n", line.c_str());
  std::fflush(stderr);
}

void warn(const std::string& line, const std::string& hint) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "warning: %s\nhint: %s\n", line.c_str(), hint.c_str());
  std::fflush(stderr);
}

void error(const std::string& line, const std::string& hint) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "error: %s\n", line.c_str());
  if (!hint.empty()) std::fprintf(stderr, "hint: %s\n", hint.c_str());
  std::fflush(stderr);
}

}  // namespace tabby::log
