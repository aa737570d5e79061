// Skips strings and comments the way TOML delimits them and refuses any
// non-ASCII byte left over (see toml_prescan.h for why).
#include "tabby/config/toml_prescan.h"

#include <cstring>

#include "tabby/util/error.h"

namespace tabby {

namespace {

bool is_space_or_newline(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

class Scanner {
 public:
  Scanner(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  void run() {
    if (starts("\xEF\xBB\xBF")) at_ = 3;  // a UTF-8 byte order mark, which toml++ skips
    while (at_ < text_.size()) {
      const char c = text_[at_];
      if (c == '#') {
        while (at_ < text_.size() && text_[at_] != '\n') ++at_;
      } else if (c == '"' || c == '\'') {
        string(c);
      } else {
        if (static_cast<unsigned char>(c) >= 0x80) fail("non-ASCII character outside a string or comment");
        step();
      }
    }
  }

 private:
  bool starts(const char* s) const { return text_.compare(at_, std::strlen(s), s) == 0; }

  // One byte forward, counting lines.
  void step() {
    if (text_[at_] == '\n') {
      ++line_;
      line_start_ = at_ + 1;
    }
    ++at_;
  }

  [[noreturn]] void fail(const std::string& what) const { fail_at(at_, what); }
  // `where` must be on the current line.
  [[noreturn]] void fail_at(size_t where, const std::string& what) const {
    throw Error(source_ + ":" + std::to_string(line_) + ":" + std::to_string(where - line_start_ + 1) + ": " + what,
                "fix the TOML syntax at that line");
  }

  // After a backslash in a basic string toml++ looks for a line-ending
  // backslash by testing the characters that follow for whitespace: one of
  // them being non-ASCII (never a valid escape) is refused here.
  size_t check_after_backslash() const {
    size_t after = at_ + 1;
    while (after < text_.size() && (text_[after] == ' ' || text_[after] == '\t')) ++after;
    if (after < text_.size() && static_cast<unsigned char>(text_[after]) >= 0x80) {
      fail_at(after, "invalid escape: a backslash followed by a non-ASCII character");
    }
    return after;
  }

  void string(char quote) {
    const bool basic = quote == '"';
    const char triple[4] = {quote, quote, quote, '\0'};
    if (!starts(triple)) {
      step();
      // A single-line string ends at its quote or, unterminated, at the line end.
      while (at_ < text_.size() && text_[at_] != quote && text_[at_] != '\n') {
        if (basic && text_[at_] == '\\') {
          check_after_backslash();
          if (at_ + 1 < text_.size() && text_[at_ + 1] != '\n') step();
        }
        step();
      }
      if (at_ < text_.size() && text_[at_] == quote) step();
      return;
    }
    at_ += 3;
    while (at_ < text_.size()) {
      if (starts(triple)) {
        at_ += 3;
        // Up to two more quotes belong to the content ("""a""""" is a"").
        for (int extra = 0; extra < 2 && at_ < text_.size() && text_[at_] == quote; ++extra) ++at_;
        return;
      }
      if (basic && text_[at_] == '\\') {
        escape();
      } else {
        step();
      }
    }
  }

  // In a multi-line basic string: a line-ending backslash trims the
  // whitespace and newlines after it; any other escape covers one character.
  void escape() {
    const size_t after = check_after_backslash();
    const bool line_ending = after < text_.size() && (text_[after] == '\n' || text_.compare(after, 2, "\r\n") == 0);
    if (!line_ending) {
      step();
      if (at_ < text_.size()) step();
      return;
    }
    while (at_ < after) step();
    while (at_ < text_.size() && is_space_or_newline(text_[at_])) step();
    if (at_ < text_.size() && static_cast<unsigned char>(text_[at_]) >= 0x80) {
      fail("a non-ASCII character right after a line-ending backslash is not supported; put it on the line "
           "of the backslash or escape it (\\uXXXX)");
    }
  }

  const std::string& text_;
  const std::string& source_;
  size_t at_ = 0;
  size_t line_ = 1;
  size_t line_start_ = 0;
};

}  // namespace

void check_toml_characters(const std::string& text, const std::string& source) { Scanner(text, source).run(); }

}  // namespace tabby
