#pragma once
// FUZZ_CHECK: a property of the code under test. A violation prints the property and
// aborts, which libFuzzer reports as a crash and saves the input (artifact_prefix).
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "fuzz property violated: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)
