#include "daemon/control_token.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace freevsa::daemon {

namespace {

constexpr std::size_t kTokenBytes = 32;
constexpr std::size_t kMinTokenChars = 32;
constexpr std::size_t kMaxTokenChars = 1024;

// Closes the descriptor on every path out.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

std::string token_problem(const std::string& token) {
  if (token.size() < kMinTokenChars || token.size() > kMaxTokenChars) {
    return fmt::format("the token must be {} to {} characters, the file holds {}", kMinTokenChars, kMaxTokenChars,
                       token.size());
  }
  if (!std::all_of(token.begin(), token.end(), [](unsigned char c) { return c > ' ' && c < 0x7f; })) {
    return "the token holds spaces or characters that are not printable ASCII";
  }
  return {};
}

// The file's content without the one line end a text editor adds.
std::string read_all(int fd) {
  std::string content;
  std::array<char, 1024> chunk{};
  while (content.size() <= kMaxTokenChars + 2) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::strerror(errno));
    if (n == 0) break;
    content.append(chunk.data(), static_cast<std::size_t>(n));
  }
  if (content.ends_with("\r\n")) {
    content.resize(content.size() - 2);
  } else if (content.ends_with('\n')) {
    content.pop_back();
  }
  return content;
}

void create_token_file(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  FileDescriptor file{::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)};
  if (file.fd < 0 && errno == EEXIST) return;  // made meanwhile: read below like any other
  if (file.fd < 0) throw std::runtime_error(fmt::format("cannot create it: {}", std::strerror(errno)));
  const std::string content = generate_control_token() + "\n";
  if (::write(file.fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()) ||
      ::fsync(file.fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(path.c_str());
    throw std::runtime_error(fmt::format("cannot write it: {}", reason));
  }
}

std::string read_checked(const std::string& path) {
  FileDescriptor file{::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
  if (file.fd < 0 && errno == ELOOP) throw std::runtime_error("it is a symbolic link; give the file itself");
  if (file.fd < 0) throw std::runtime_error(std::strerror(errno));
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) throw std::runtime_error(std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw std::runtime_error("not a regular file");
  if (st.st_uid != ::geteuid()) {
    throw std::runtime_error(fmt::format("owned by uid {}, not by uid {} that the node runs as", st.st_uid, ::geteuid()));
  }
  if ((st.st_mode & 077) != 0) {
    throw std::runtime_error(fmt::format("mode {:04o} lets other users read or change it (chmod 600 it)",
                                         st.st_mode & 07777));
  }
  std::string token = read_all(file.fd);
  if (std::string problem = token_problem(token); !problem.empty()) throw std::runtime_error(problem);
  return token;
}

}  // namespace

std::string generate_control_token() {
  std::array<unsigned char, kTokenBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw std::runtime_error("no random bytes for the control token (OpenSSL RAND_bytes failed)");
  }
  std::string hex;
  for (unsigned char b : bytes) hex += fmt::format("{:02x}", b);
  return hex;
}

std::string ensure_control_token(const std::string& path) {
  try {
    create_token_file(path);
    return read_checked(path);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("control token {}: {}", path, e.what()));
  }
}

ControlTokenRead read_control_token(const std::string& path) {
  FileDescriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) return {"", std::strerror(errno)};
  try {
    std::string token = read_all(file.fd);
    if (std::string problem = token_problem(token); !problem.empty()) return {"", problem};
    return {token, ""};
  } catch (const std::exception& e) {
    return {"", e.what()};
  }
}

}  // namespace freevsa::daemon
