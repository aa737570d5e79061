// A pass over TOML text before toml++ parses it, refusing what toml++ 3.3
// cannot be trusted with: non-ASCII characters where TOML expects structure.
//
// TOML allows non-ASCII text only inside strings and comments. Elsewhere
// toml++ asks whether the character is Unicode whitespace, and for many code
// points (U+00A1..U+0499, U+FB26..U+FEFE and others) that check reaches a
// __builtin_unreachable() in its generated tables: undefined behaviour on
// input as ordinary as a stray "¡" (found by fuzz/fuzz_model_config). Such
// text is a syntax error anyway, so refusing it first changes no valid file.
// Strings reach the same check in two places, refused as well: a backslash
// followed (after spaces) by a non-ASCII character, which is never a valid
// escape, and, the one valid corner given up, a non-ASCII character right
// after the whitespace a line-ending backslash trims in a multi-line string.
//
// What is left: a malformed value (a number running into a quote) whose
// lookahead meets such a character. Upstream fixed the check to return false
// (toml++ pull request 305); the library tabby links gives a parse error
// there, for every code point (tests/core/test_hostile_files.cpp).
#pragma once

#include <string>

namespace tabby {

// Throws tabby::Error "SOURCE:LINE:COLUMN: ..." at the first such character.
void check_toml_characters(const std::string& text, const std::string& source);

}  // namespace tabby
