#include "replication/file_volume.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "replication/record_file.h"
#include "util/aligned_buffer.h"
#include "util/log.h"

namespace freevsa::replication {
namespace {

// Unaligned buffers and zero-filling go through chunks of this size, so that a large request
// never needs a large allocation on the data path.
constexpr std::size_t kChunkBytes = 1 << 20;

// Per-write O_DSYNC (RWF_DSYNC) needs Linux 4.7; once the kernel said no, every FUA write uses
// write + fdatasync instead of asking again.
std::atomic<bool> g_rwf_dsync_works{true};

std::string error_text(int error) { return std::error_code(error, std::generic_category()).message(); }

[[noreturn]] void fail(const std::string& path, const std::string& reason) {
  throw std::runtime_error(fmt::format("{}: {}", path, reason));
}

class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// Removes a file this open() created if open() then fails, so that a failed start leaves the
// directory as it found it.
class CreatedFile {
 public:
  CreatedFile() = default;
  ~CreatedFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  CreatedFile(const CreatedFile&) = delete;
  CreatedFile& operator=(const CreatedFile&) = delete;
  void arm(std::string path) { path_ = std::move(path); }
  void keep() { path_.clear(); }

 private:
  std::string path_;
};

bool aligned_to(const void* pointer, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(pointer) % alignment == 0;
}

int read_fully(int fd, std::uint8_t* data, std::size_t length, std::uint64_t offset) {
  while (length > 0) {
    ssize_t done = ::pread(fd, data, length, static_cast<off_t>(offset));
    if (done < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (done == 0) return EIO;  // the file was truncated behind our back
    data += done;
    length -= static_cast<std::size_t>(done);
    offset += static_cast<std::uint64_t>(done);
  }
  return 0;
}

// durable: the data is on stable storage when this returns 0 (FUA).
int write_fully(int fd, const std::uint8_t* data, std::size_t length, std::uint64_t offset, bool durable) {
  bool sync_after = false;
  while (length > 0) {
    ssize_t done;
    if (durable && g_rwf_dsync_works.load(std::memory_order_relaxed)) {
      iovec vector{const_cast<std::uint8_t*>(data), length};
      done = ::pwritev2(fd, &vector, 1, static_cast<off_t>(offset), RWF_DSYNC);
      if (done < 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
        g_rwf_dsync_works.store(false, std::memory_order_relaxed);
        continue;
      }
    } else {
      done = ::pwrite(fd, data, length, static_cast<off_t>(offset));
      sync_after = durable;
    }
    if (done < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (done == 0) return EIO;
    data += done;
    length -= static_cast<std::size_t>(done);
    offset += static_cast<std::uint64_t>(done);
  }
  if (sync_after && ::fdatasync(fd) != 0) return errno;
  return 0;
}

util::AlignedBuffer* bounce_buffer() noexcept {
  thread_local util::AlignedBuffer buffer;
  if (buffer.empty()) {
    try {
      buffer = util::AlignedBuffer(kChunkBytes);
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  }
  return &buffer;
}

const util::AlignedBuffer* zero_buffer() noexcept {
  try {
    static const util::AlignedBuffer zeros = [] {
      util::AlignedBuffer buffer(kChunkBytes);
      buffer.zero();
      return buffer;
    }();
    return &zeros;
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

void create_parent_directories(const std::string& path) {
  std::filesystem::path file(path);
  if (file.is_absolute() || !file.has_parent_path()) return;
  std::error_code error;
  std::filesystem::create_directories(file.parent_path(), error);
  if (error) fail(path, fmt::format("cannot create directory {}: {}", file.parent_path().string(), error.message()));
}

// A new file's directory entry is only durable once the directory is synced; without this a
// crash could lose the whole LUN even though every FUA write to it had completed.
void sync_parent_directory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  Descriptor directory(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (directory.get() < 0 || ::fsync(directory.get()) != 0) {
    fail(path, fmt::format("cannot sync directory {}: {}", parent.string(), error_text(errno)));
  }
}

bool set_direct(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  flags = on ? (flags | O_DIRECT) : (flags & ~O_DIRECT);
  return ::fcntl(fd, F_SETFL, flags) == 0;
}

// Offsets and lengths must be whole blocks (the Volume contract). Enforcing it for buffered I/O
// too keeps a caller's bug from passing on tmpfs and failing on a real disk.
bool valid_range(std::uint64_t offset, std::uint64_t length, std::uint32_t block_size, std::uint64_t size) {
  return offset % block_size == 0 && length % block_size == 0 && offset <= size && length <= size - offset;
}

}  // namespace

std::unique_ptr<FileVolume> FileVolume::open(const FileVolumeOptions& options) {
  const std::string& path = options.path;
  if (path.empty()) throw std::runtime_error("volume path is empty");
  const std::uint32_t block_size = options.block_size;
  if (block_size != 512 && block_size != 4096)
    fail(path, fmt::format("block size must be 512 or 4096, got {}", block_size));
  if (options.size_bytes % block_size != 0) {
    fail(path,
         fmt::format("configured size {} is not a multiple of the block size {}", options.size_bytes, block_size));
  }

  // An exclusive open of a block device fails while it is mounted or claimed by md/dm, which
  // is exactly when serving it would corrupt it.
  struct stat before {};
  bool looks_like_device = ::stat(path.c_str(), &before) == 0 && S_ISBLK(before.st_mode);
  int flags = O_RDWR | O_CLOEXEC | (looks_like_device ? O_EXCL : 0);
  Descriptor fd(::open(path.c_str(), flags));
  CreatedFile created;
  bool is_new = false;
  if (fd.get() < 0 && errno == ENOENT) {
    if (!options.create) fail(path, "does not exist");
    if (options.size_bytes == 0) fail(path, "does not exist, and no size is configured to create it with");
    create_parent_directories(path);
    fd.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0600));
    if (fd.get() >= 0) {
      created.arm(path);
      is_new = true;
    }
  }
  if (fd.get() < 0) {
    int error = errno;
    if (looks_like_device && error == EBUSY) fail(path, "is in use (mounted, or held by another process or driver)");
    fail(path, fmt::format("cannot open: {}", error_text(error)));
  }

  // flock, not fcntl locks: it belongs to the open file, so even a second LUN on the same file
  // within this process is refused, and it vanishes with the process.
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    if (error == EWOULDBLOCK) fail(path, "is already being served (locked by another process or LUN)");
    fail(path, fmt::format("cannot lock: {}", error_text(error)));
  }

  struct stat status {};
  if (::fstat(fd.get(), &status) != 0) fail(path, fmt::format("cannot stat: {}", error_text(errno)));
  std::uint64_t size = 0;
  const bool block_device = S_ISBLK(status.st_mode);
  if (block_device) {
    std::uint64_t device_bytes = 0;
    int logical_block = 0;
    if (::ioctl(fd.get(), BLKGETSIZE64, &device_bytes) != 0) {
      fail(path, fmt::format("cannot get the device size: {}", error_text(errno)));
    }
    if (::ioctl(fd.get(), BLKSSZGET, &logical_block) != 0) {
      fail(path, fmt::format("cannot get the logical block size: {}", error_text(errno)));
    }
    if (static_cast<std::uint32_t>(logical_block) > block_size) {
      fail(path, fmt::format("the device's logical block size is {}, larger than the configured block size {}",
                             logical_block, block_size));
    }
    if (options.size_bytes > device_bytes) {
      fail(path,
           fmt::format("configured size {} is larger than the device ({} bytes)", options.size_bytes, device_bytes));
    }
    size = options.size_bytes != 0 ? options.size_bytes : device_bytes / block_size * block_size;
    if (size == 0) fail(path, fmt::format("the device ({} bytes) is smaller than one block", device_bytes));
  } else if (S_ISREG(status.st_mode)) {
    auto file_bytes = static_cast<std::uint64_t>(status.st_size);
    // Only an empty file may be sized: never truncate or extend data someone might still want.
    if (file_bytes == 0 && options.size_bytes != 0) {
      if (::ftruncate(fd.get(), static_cast<off_t>(options.size_bytes)) != 0) {
        fail(path, fmt::format("cannot set the size to {} bytes: {}", options.size_bytes, error_text(errno)));
      }
      file_bytes = options.size_bytes;
    }
    if (file_bytes == 0) fail(path, "is empty, and no size is configured");
    if (options.size_bytes != 0 && options.size_bytes != file_bytes) {
      fail(path, fmt::format("the file is {} bytes but the configured size is {} bytes; "
                             "resize the file yourself or change the configuration",
                             file_bytes, options.size_bytes));
    }
    if (file_bytes % block_size != 0) {
      fail(path, fmt::format("the file's size {} is not a multiple of the block size {}", file_bytes, block_size));
    }
    size = file_bytes;
    if (is_new) {
      if (::fsync(fd.get()) != 0) fail(path, fmt::format("cannot sync: {}", error_text(errno)));
      sync_parent_directory(path);
    }
  } else {
    fail(path, "is neither a regular file nor a block device");
  }

  // Switching O_DIRECT on with fcntl rather than at open() keeps one open path for all cases,
  // and a file created by an O_CREAT|O_DIRECT open that then failed with EINVAL would be left
  // behind. The probe read catches media whose direct I/O alignment exceeds our block size (a
  // 4Kn disk under 512-byte LUN blocks): for those, buffered I/O is the only correct choice.
  bool direct = false;
  if (options.direct_io) {
    if (set_direct(fd.get(), true)) {
      util::AlignedBuffer probe(block_size);
      int error = read_fully(fd.get(), probe.data(), block_size, 0);
      if (error == 0) {
        direct = true;
      } else if (error == EINVAL) {
        if (!set_direct(fd.get(), false)) fail(path, fmt::format("cannot leave O_DIRECT: {}", error_text(errno)));
        util::log_info("{}: direct I/O needs a larger alignment than {} bytes here; using buffered I/O", path,
                       block_size);
      } else {
        fail(path, fmt::format("cannot read: {}", error_text(error)));
      }
    } else if (errno == EINVAL) {
      util::log_info("{}: this file system does not support direct I/O; using buffered I/O", path);
    } else {
      fail(path, fmt::format("cannot enable O_DIRECT: {}", error_text(errno)));
    }
  }

  std::vector<std::uint8_t> reservations;
  if (!options.reservations_path.empty()) {
    if (int error = load_record_file(options.reservations_path, reservations); error != 0)
      fail(options.reservations_path, fmt::format("cannot read the persistent reservations: {}", error_text(error)));
  }
  created.keep();
  std::unique_ptr<FileVolume> volume(new FileVolume(fd.release(), path, size, block_size, direct, block_device));
  volume->reservations_path_ = options.reservations_path;
  volume->Volume::store_reservations(reservations);
  return volume;
}

int FileVolume::store_reservations(std::span<const std::uint8_t> record) {
  if (!reservations_path_.empty()) {
    if (int error = store_record_file(reservations_path_, record); error != 0) return error;
  }
  return Volume::store_reservations(record);
}

FileVolume::FileVolume(int fd, std::string path, std::uint64_t size, std::uint32_t block_size, bool direct,
                       bool block_device)
    : fd_(fd),
      path_(std::move(path)),
      size_(size),
      block_size_(block_size),
      direct_(direct),
      block_device_(block_device) {}

FileVolume::~FileVolume() { ::close(fd_); }

int FileVolume::read(std::uint64_t offset, std::span<std::uint8_t> dst) {
  if (!valid_range(offset, dst.size(), block_size_, size_)) return EINVAL;
  // With O_DIRECT the kernel DMAs straight into the caller's memory, which must then be aligned
  // to the logical block size; block_size_ is at least that (checked at open).
  if (!direct_ || aligned_to(dst.data(), block_size_)) return read_fully(fd_, dst.data(), dst.size(), offset);
  util::AlignedBuffer* bounce = bounce_buffer();
  if (bounce == nullptr) return ENOMEM;
  for (std::size_t done = 0; done < dst.size();) {
    std::size_t chunk = std::min(dst.size() - done, bounce->size());
    if (int error = read_fully(fd_, bounce->data(), chunk, offset + done); error != 0) return error;
    std::copy_n(bounce->data(), chunk, dst.data() + done);
    done += chunk;
  }
  return 0;
}

int FileVolume::write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) {
  if (!valid_range(offset, src.size(), block_size_, size_)) return EINVAL;
  // RWF_DSYNC makes each write durable by itself for buffered and direct I/O alike; O_DIRECT
  // alone only bypasses our page cache, not the device's volatile write cache.
  if (!direct_ || aligned_to(src.data(), block_size_)) return write_fully(fd_, src.data(), src.size(), offset, fua);
  util::AlignedBuffer* bounce = bounce_buffer();
  if (bounce == nullptr) return ENOMEM;
  for (std::size_t done = 0; done < src.size();) {
    std::size_t chunk = std::min(src.size() - done, bounce->size());
    std::copy_n(src.data() + done, chunk, bounce->data());
    if (int error = write_fully(fd_, bounce->data(), chunk, offset + done, fua); error != 0) return error;
    done += chunk;
  }
  return 0;
}

int FileVolume::flush() {
  if (::fdatasync(fd_) != 0) return errno;
  return 0;
}

// Reads after discard must return zeroes, which BLKDISCARD does not promise (a device may
// return old data or garbage for discarded blocks). fallocate(PUNCH_HOLE) does: on a file it
// frees the blocks, on a block device the kernel issues WRITE ZEROES with unmap, and refuses
// with EOPNOTSUPP when the device cannot guarantee zeroes, so that we then write them.
int FileVolume::discard(std::uint64_t offset, std::uint64_t length) {
  if (!valid_range(offset, length, block_size_, size_)) return EINVAL;
  if (length == 0) return 0;
  if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0) {
    return 0;
  }
  if (errno != EOPNOTSUPP && errno != ENOSYS) return errno;
  if (block_device_) {
    std::uint64_t range[2] = {offset, length};
    if (::ioctl(fd_, BLKZEROOUT, range) == 0) return 0;
    if (errno != EOPNOTSUPP && errno != ENOTTY) return errno;
  }
  const util::AlignedBuffer* zeros = zero_buffer();
  if (zeros == nullptr) return ENOMEM;
  for (std::uint64_t done = 0; done < length;) {
    auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(length - done, zeros->size()));
    if (int error = write_fully(fd_, zeros->data(), chunk, offset + done, false); error != 0) return error;
    done += chunk;
  }
  return 0;
}

int FileVolume::allocation(std::uint64_t offset, std::uint64_t length, std::size_t max_extents,
                           std::vector<AllocationExtent>& out) {
  if (!valid_range(offset, length, block_size_, size_)) return EINVAL;
  if (block_device_) return Volume::allocation(offset, length, max_extents, out);
  out.clear();
  const std::uint64_t end = offset + length;
  for (std::uint64_t at = offset; at < end && out.size() < max_extents;) {
    // Where the next data starts and where it ends; ENXIO means no data after `at`.
    off_t data = ::lseek(fd_, static_cast<off_t>(at), SEEK_DATA);
    if (data < 0 && errno != ENXIO) return errno;
    const std::uint64_t data_start = data < 0 ? end : std::min<std::uint64_t>(static_cast<std::uint64_t>(data), end);
    if (data_start > at) {
      out.push_back({at, data_start - at, false});
      at = data_start;
      continue;
    }
    const off_t hole = ::lseek(fd_, static_cast<off_t>(at), SEEK_HOLE);
    if (hole < 0) return errno;
    // Holes are found at file-system block granularity; report whole logical blocks.
    std::uint64_t data_end = std::min<std::uint64_t>(static_cast<std::uint64_t>(hole), end);
    data_end = std::max(at + block_size_, data_end / block_size_ * block_size_);
    out.push_back({at, std::min(data_end, end) - at, true});
    at = std::min(data_end, end);
  }
  return 0;
}

}  // namespace freevsa::replication
