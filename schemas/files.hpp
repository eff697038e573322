#pragma once
// Small key and certificate files on disk (the development issuer, the STI chain): read
// with a size bound, written whole and fsynced, their folder fsynced. Start-up paths
// only; errors are messages naming the file.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "schemas/result.hpp"

namespace schemas {

// The file's bytes; refused when over `max_bytes`.
[[nodiscard]] result<std::string, std::string> read_small_file(const std::filesystem::path& path,
                                                               std::uintmax_t max_bytes = 1 << 20);
// Creates `path` exclusively (it must not exist) with `mode`, writes `contents`, fsyncs;
// on failure nothing is left behind.
[[nodiscard]] status<std::string> write_new_file(const std::filesystem::path& path, std::string_view contents,
                                                 mode_t mode);
// fsyncs a folder, so that a file created or renamed in it survives a crash. Best effort.
void sync_dir(const std::filesystem::path& dir);

}  // namespace schemas
