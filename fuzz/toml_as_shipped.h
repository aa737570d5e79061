// Force-included into the fuzz build: compiles toml++'s internal assertions
// out, as in the library tabby ships with (Debian's libtomlplusplus, built
// with NDEBUG; tabby's Release builds define NDEBUG too).
//
// Why: toml++ 3.3 asserts a precondition its own table-header parser can
// break on malformed input such as "[[=" or "[&" (upstream: marzer/tomlplusplus
// issue 294, pull request 301). With the assertion compiled out the parser
// reports a normal parse error, which tabby turns into one clear message;
// with it compiled in, every fuzz run would stop at this known upstream bug.
// tabby's own assertions stay on in the fuzz build.
#pragma once

#define TOML_ASSERT(expr) static_cast<void>(0)
