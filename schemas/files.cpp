#include "schemas/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace schemas {

namespace fs = std::filesystem;

result<std::string, std::string> read_small_file(const fs::path& path, std::uintmax_t max_bytes) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return failure{"cannot stat " + path.string() + ": " + ec.message()};
  if (size > max_bytes) return failure{path.string() + " is too large (" + std::to_string(size) + " bytes)"};
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return failure{"cannot read " + path.string()};
  return text.str();
}

status<std::string> write_new_file(const fs::path& path, std::string_view contents, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return failure{"cannot create " + path.string() + ": " + std::strerror(errno)};
  std::size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  const bool ok = done == contents.size() && ::fsync(fd) == 0;
  const std::string error = ok ? std::string() : "cannot write " + path.string() + ": " + std::strerror(errno);
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return failure{error};
  }
  return {};
}

void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace schemas
