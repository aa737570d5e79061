// Shared rules of every tabby fuzz target: hostile input may be refused only
// with a tabby::Error (the CLI turns that into one clear line). Any other
// exception, like a crash, is a finding: the target aborts with a message so
// libFuzzer saves the input as a crash-* reproducer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "tabby/util/error.h"
#include "tabby/util/log.h"

namespace tabby::fuzz {

[[noreturn]] inline void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "\n==tabby-fuzz== FINDING: %s: %s\n", what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// Fails loudly when a property that must hold for every accepted input does not.
#define TABBY_FUZZ_CHECK(cond, detail)                                                  \
  do {                                                                                  \
    if (!(cond)) ::tabby::fuzz::finding("property violated: " #cond, std::string(detail)); \
  } while (0)

// Runs `body`; a tabby::Error is a proper refusal, anything else a finding.
// Returns true when `body` completed without throwing.
template <typename Body>
bool refuses_only_with_tabby_errors(const char* api, Body&& body) {
  try {
    body();
    return true;
  } catch (const tabby::Error& e) {
    // Every refusal must say something: an empty message would print "error: ".
    if (std::string_view(e.what()).empty()) finding(api, "tabby::Error with an empty message");
    return false;
  } catch (const std::exception& e) {
    finding(api, std::string("escaped as a non-tabby exception: ") + e.what());
  } catch (...) {
    finding(api, "escaped as a non-std exception");
  }
}

// Splits the input: the first byte picks a mode, the rest is the payload.
struct ModeAndPayload {
  uint8_t mode = 0;
  std::string_view payload;
};
inline ModeAndPayload split_mode(const uint8_t* data, size_t size) {
  if (size == 0) return {};
  return {data[0], std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)};
}

// Warnings the code under test logs for bad input would flood the fuzzer's output.
inline void silence_logs() { tabby::log::set_quiet(true); }

}  // namespace tabby::fuzz
