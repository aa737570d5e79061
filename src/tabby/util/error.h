// Errors a user can act on. Every failure that reaches the command line is a
// tabby::Error: `what()` says what went wrong in one line, `hint()` says what to
// do about it. The CLI prints both and exits non-zero; nothing prints a stack trace.
#pragma once

#include <stdexcept>
#include <string>

namespace tabby {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string hint = {})
      : std::runtime_error(what), hint_(std::move(hint)) {}
  const std::string& hint() const { return hint_; }

 private:
  std::string hint_;
};

// A mistake in how tabby was called (unknown flag value, missing option).
// The CLI exits with status 2 for these, 1 for everything else.
class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace tabby
