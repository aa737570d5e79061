// Silences informational lines while it lives, e.g. when a job re-reads data it
// already announced; restores the previous setting after.
#pragma once

#include "tabby/util/log.h"

namespace tabby::log {

class QuietScope {
 public:
  QuietScope() : previous_(quiet()) { set_quiet(true); }
  ~QuietScope() { set_quiet(previous_); }
  QuietScope(const QuietScope&) = delete;
  QuietScope& operator=(const QuietScope&) = delete;

 private:
  bool previous_;
};

}  // namespace tabby::log
