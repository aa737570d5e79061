#include "tabby/util/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace tabby::log {

namespace {
std::atomic<bool> g_quiet{false};
std::atomic<bool> g_warnings{true};
std::mutex g_mutex;
std::string g_prefix;  // guarded by g_mutex
}  // namespace

void set_prefix(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_prefix = prefix;
}

const std::string& prefix() { return g_prefix; }
void set_warnings(bool on) { g_warnings = on; }

void set_quiet(bool q) { g_quiet = q; }
bool quiet() { return g_quiet; }

void info(const std::string& line) {
  if (g_quiet) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s%s\n", g_prefix.c_str(), line.c_str());
  std::fflush(stderr);
}

void warn(const std::string& line) {
  if (!g_warnings) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%swarning: %s\n", g_prefix.c_str(), line.c_str());
  std::fflush(stderr);
}

void warn(const std::string& line, const std::string& hint) {
  if (!g_warnings) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%swarning: %s\n%shint: %s\n", g_prefix.c_str(), line.c_str(), g_prefix.c_str(), hint.c_str());
  std::fflush(stderr);
}

void error(const std::string& line, const std::string& hint) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%serror: %s\n", g_prefix.c_str(), line.c_str());
  if (!hint.empty()) std::fprintf(stderr, "%shint: %s\n", g_prefix.c_str(), hint.c_str());
  std::fflush(stderr);
}

}  // namespace tabby::log
