// The SHA-256 of a whole string (see digest.h).
#include "support/digest.h"

#include "tabby/weights/sha256.h"

namespace tabby::testing {

std::string sha256_hex(const std::string& bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}

}  // namespace tabby::testing
