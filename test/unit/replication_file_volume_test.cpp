#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "replication/file_volume.h"
#include "util/aligned_buffer.h"

namespace freevsa::replication {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

// A directory that exists for one test. /var/tmp is on a real disk here, where O_DIRECT works;
// /tmp may be tmpfs on other machines.
class TempDir {
 public:
  explicit TempDir(const std::string& base = "/var/tmp") {
    std::string pattern = base + "/freevsa_volume_test_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp in " + base + " failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string open_error(const FileVolumeOptions& options) {
  try {
    FileVolume::open(options);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

struct stat stat_of(const std::string& path) {
  struct stat status {};
  EXPECT_EQ(::stat(path.c_str(), &status), 0) << path;
  return status;
}

void fill_pattern(std::span<std::uint8_t> data, unsigned seed) {
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>((i * 31 + seed) ^ (i >> 9));
}

void write_file(const std::string& path, std::size_t bytes) {
  std::vector<std::uint8_t> data(bytes, 0xab);
  FILE* file = std::fopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  if (bytes > 0) {
    ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), file), data.size());
  }
  std::fclose(file);
}

TEST(FileVolume, CreatesMissingFileSparse) {
  TempDir dir;
  auto volume = FileVolume::open({.path = dir.file("disk.img"), .size_bytes = 1ull << 30});
  EXPECT_EQ(volume->size_bytes(), 1ull << 30);
  EXPECT_EQ(volume->block_size(), 512u);
  EXPECT_EQ(volume->name(), dir.file("disk.img"));
  struct stat status = stat_of(dir.file("disk.img"));
  EXPECT_EQ(static_cast<std::uint64_t>(status.st_size), 1ull << 30);
  EXPECT_LT(static_cast<std::uint64_t>(status.st_blocks) * 512, kMiB) << "the file must be sparse";
  EXPECT_EQ(status.st_mode & 0777, 0600u) << "disk images are private";
}

TEST(FileVolume, CreatesParentDirectoriesOfRelativePath) {
  TempDir dir;
  std::filesystem::path previous = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  std::string error = open_error({.path = "data/sub/disk.img", .size_bytes = kMiB});
  std::filesystem::current_path(previous);
  EXPECT_EQ(error, "");
  EXPECT_TRUE(std::filesystem::is_regular_file(dir.file("data/sub/disk.img")));
}

TEST(FileVolume, MissingFileWithoutSizeIsRefused) {
  TempDir dir;
  EXPECT_EQ(open_error({.path = dir.file("disk.img")}),
            dir.file("disk.img") + ": does not exist, and no size is configured to create it with");
  EXPECT_FALSE(std::filesystem::exists(dir.file("disk.img")));
}

TEST(FileVolume, MissingFileIsRefusedWhenCreationIsOff) {
  TempDir dir;
  EXPECT_EQ(open_error({.path = dir.file("disk.img"), .size_bytes = kMiB, .create = false}),
            dir.file("disk.img") + ": does not exist");
}

TEST(FileVolume, ReopenKeepsData) {
  TempDir dir;
  util::AlignedBuffer data(64 * 1024);
  fill_pattern(data.span(), 7);
  {
    auto volume = FileVolume::open({.path = dir.file("disk.img"), .size_bytes = 4 * kMiB});
    ASSERT_EQ(volume->write(kMiB, data.span(), false), 0);
    ASSERT_EQ(volume->flush(), 0);
  }
  for (std::uint64_t configured : {std::uint64_t{0}, 4 * kMiB}) {
    auto volume = FileVolume::open({.path = dir.file("disk.img"), .size_bytes = configured});
    EXPECT_EQ(volume->size_bytes(), 4 * kMiB);
    util::AlignedBuffer back(data.size());
    ASSERT_EQ(volume->read(kMiB, back.span()), 0);
    EXPECT_TRUE(std::equal(data.span().begin(), data.span().end(), back.span().begin()));
  }
}

TEST(FileVolume, SizeMismatchIsRefusedNamingBothSizes) {
  TempDir dir;
  FileVolume::open({.path = dir.file("disk.img"), .size_bytes = kMiB});
  EXPECT_EQ(open_error({.path = dir.file("disk.img"), .size_bytes = 2 * kMiB}),
            dir.file("disk.img") +
                ": the file is 1048576 bytes but the configured size is 2097152 bytes; resize the file yourself or "
                "change the configuration");
  EXPECT_EQ(open_error({.path = dir.file("disk.img"), .size_bytes = kMiB / 2}),
            dir.file("disk.img") +
                ": the file is 1048576 bytes but the configured size is 524288 bytes; resize the file yourself or "
                "change the configuration");
  EXPECT_EQ(static_cast<std::uint64_t>(stat_of(dir.file("disk.img")).st_size), kMiB) << "never resized";
}

TEST(FileVolume, EmptyExistingFileIsSizedToTheConfiguration) {
  TempDir dir;
  write_file(dir.file("disk.img"), 0);
  auto volume = FileVolume::open({.path = dir.file("disk.img"), .size_bytes = kMiB});
  EXPECT_EQ(volume->size_bytes(), kMiB);
  EXPECT_EQ(static_cast<std::uint64_t>(stat_of(dir.file("disk.img")).st_size), kMiB);
}

TEST(FileVolume, EmptyExistingFileWithoutSizeIsRefused) {
  TempDir dir;
  write_file(dir.file("disk.img"), 0);
  EXPECT_EQ(open_error({.path = dir.file("disk.img")}), dir.file("disk.img") + ": is empty, and no size is configured");
}

TEST(FileVolume, FileSizeNotAMultipleOfTheBlockSizeIsRefused) {
  TempDir dir;
  write_file(dir.file("disk.img"), 1000);
  EXPECT_EQ(open_error({.path = dir.file("disk.img")}),
            dir.file("disk.img") + ": the file's size 1000 is not a multiple of the block size 512");
}

TEST(FileVolume, InvalidBlockSizeIsRefused) {
  TempDir dir;
  EXPECT_EQ(open_error({.path = dir.file("disk.img"), .size_bytes = kMiB, .block_size = 1024}),
            dir.file("disk.img") + ": block size must be 512 or 4096, got 1024");
}

TEST(FileVolume, DirectoryIsRefused) {
  TempDir dir;
  EXPECT_EQ(open_error({.path = dir.path()}), dir.path() + ": cannot open: Is a directory");
}

TEST(FileVolume, FailedCreationLeavesNoFileBehind) {
  TempDir dir;
  // Far beyond any ext4/xfs file size limit: ftruncate fails after the file was created.
  std::string error = open_error({.path = dir.file("disk.img"), .size_bytes = 1ull << 62});
  EXPECT_NE(error.find(dir.file("disk.img") + ": cannot set the size to"), std::string::npos) << error;
  EXPECT_FALSE(std::filesystem::exists(dir.file("disk.img")));
}

TEST(FileVolume, SecondOpenOfTheSameFileIsRefused) {
  TempDir dir;
  auto first = FileVolume::open({.path = dir.file("disk.img"), .size_bytes = kMiB});
  EXPECT_EQ(open_error({.path = dir.file("disk.img"), .size_bytes = kMiB}),
            dir.file("disk.img") + ": is already being served (locked by another process or LUN)");
  first.reset();
  EXPECT_EQ(open_error({.path = dir.file("disk.img"), .size_bytes = kMiB}), "") << "the lock goes with the volume";
}

TEST(FileVolume, UsesDirectIoOnARealDisk) {
  TempDir dir;
  struct statfs filesystem {};
  ASSERT_EQ(::statfs(dir.path().c_str(), &filesystem), 0);
  if (filesystem.f_type == TMPFS_MAGIC || filesystem.f_type == RAMFS_MAGIC) GTEST_SKIP() << "/var/tmp is not on a disk";
  auto volume = FileVolume::open({.path = dir.file("disk.img"), .size_bytes = kMiB});
  EXPECT_TRUE(volume->direct_io());
  auto buffered = FileVolume::open({.path = dir.file("other.img"), .size_bytes = kMiB, .direct_io = false});
  EXPECT_FALSE(buffered->direct_io());
}

class FileVolumeIo : public ::testing::TestWithParam<std::tuple<std::uint32_t, bool>> {
 protected:
  void SetUp() override {
    auto [block_size, direct] = GetParam();
    volume_ = FileVolume::open(
        {.path = dir_.file("disk.img"), .size_bytes = 8 * kMiB, .block_size = block_size, .direct_io = direct});
  }
  std::uint32_t block_size() const { return std::get<0>(GetParam()); }

  TempDir dir_;
  std::unique_ptr<FileVolume> volume_;
};

TEST_P(FileVolumeIo, AlignedBufferRoundTrip) {
  util::AlignedBuffer data(256 * 1024);
  fill_pattern(data.span(), 1);
  ASSERT_EQ(volume_->write(3 * block_size(), data.span(), false), 0);
  util::AlignedBuffer back(data.size());
  ASSERT_EQ(volume_->read(3 * block_size(), back.span()), 0);
  EXPECT_TRUE(std::equal(data.span().begin(), data.span().end(), back.span().begin()));
}

TEST_P(FileVolumeIo, UnalignedBufferRoundTrip) {
  // Larger than the 1 MiB bounce chunk, and one byte off any alignment.
  const std::size_t length = 3 * kMiB + 2 * block_size();
  std::vector<std::uint8_t> storage(length + 1);
  std::span<std::uint8_t> data(storage.data() + 1, length);
  fill_pattern(data, 2);
  ASSERT_EQ(volume_->write(block_size(), data, false), 0);
  std::vector<std::uint8_t> back_storage(length + 3);
  std::span<std::uint8_t> back(back_storage.data() + 3, length);
  ASSERT_EQ(volume_->read(block_size(), back), 0);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), back.begin()));
}

TEST_P(FileVolumeIo, FuaWriteIsReadBack) {
  util::AlignedBuffer data(64 * 1024);
  fill_pattern(data.span(), 3);
  ASSERT_EQ(volume_->write(0, data.span(), true), 0);
  std::vector<std::uint8_t> unaligned(data.size() + 1);
  std::copy(data.span().begin(), data.span().end(), unaligned.begin() + 1);
  ASSERT_EQ(volume_->write(kMiB, std::span<const std::uint8_t>(unaligned).subspan(1), true), 0);
  util::AlignedBuffer back(data.size());
  ASSERT_EQ(volume_->read(0, back.span()), 0);
  EXPECT_TRUE(std::equal(data.span().begin(), data.span().end(), back.span().begin()));
  ASSERT_EQ(volume_->read(kMiB, back.span()), 0);
  EXPECT_TRUE(std::equal(data.span().begin(), data.span().end(), back.span().begin()));
  EXPECT_EQ(volume_->flush(), 0);
}

TEST_P(FileVolumeIo, DiscardReadsBackZeroes) {
  util::AlignedBuffer data(kMiB);
  fill_pattern(data.span(), 4);
  ASSERT_EQ(volume_->write(0, data.span(), false), 0);
  ASSERT_EQ(volume_->discard(64 * 1024, 128 * 1024), 0);
  util::AlignedBuffer back(kMiB);
  ASSERT_EQ(volume_->read(0, back.span()), 0);
  for (std::size_t i = 0; i < kMiB; ++i) {
    bool discarded = i >= 64 * 1024 && i < 192 * 1024;
    ASSERT_EQ(back.data()[i], discarded ? 0 : data.data()[i]) << "byte " << i;
  }
}

TEST_P(FileVolumeIo, OutOfRangeIsEinval) {
  util::AlignedBuffer block(block_size());
  const std::uint64_t size = volume_->size_bytes();
  EXPECT_EQ(volume_->read(size, block.span()), EINVAL);
  EXPECT_EQ(volume_->write(size, block.span(), false), EINVAL);
  EXPECT_EQ(volume_->write(size - block_size(), block.span(), false), 0) << "the last block is in range";
  util::AlignedBuffer two(2 * block_size());
  EXPECT_EQ(volume_->read(size - block_size(), two.span()), EINVAL);
  EXPECT_EQ(volume_->discard(size - block_size(), 2 * block_size()), EINVAL);
  const std::uint64_t huge = std::numeric_limits<std::uint64_t>::max() / block_size() * block_size();
  EXPECT_EQ(volume_->read(huge, block.span()), EINVAL) << "offset + length must not wrap";
  EXPECT_EQ(volume_->discard(block_size(), huge), EINVAL);
}

TEST_P(FileVolumeIo, PartialBlocksAreEinval) {
  util::AlignedBuffer block(block_size());
  EXPECT_EQ(volume_->read(1, block.span()), EINVAL);
  EXPECT_EQ(volume_->write(0, block.span().first(block_size() - 1), false), EINVAL);
  EXPECT_EQ(volume_->discard(0, 100), EINVAL);
}

TEST_P(FileVolumeIo, EmptyRequestsSucceed) {
  EXPECT_EQ(volume_->read(0, {}), 0);
  EXPECT_EQ(volume_->write(0, {}, true), 0);
  EXPECT_EQ(volume_->discard(volume_->size_bytes(), 0), 0);
}

INSTANTIATE_TEST_SUITE_P(BlockSizeAndDirectIo, FileVolumeIo,
                         ::testing::Combine(::testing::Values(512u, 4096u), ::testing::Bool()), [](const auto& info) {
                           return "block" + std::to_string(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) ? "_direct" : "_buffered");
                         });

TEST(FileVolume, DiscardPunchesHoles) {
  TempDir dir;
  auto volume = FileVolume::open({.path = dir.file("disk.img"), .size_bytes = 8 * kMiB});
  util::AlignedBuffer data(4 * kMiB);
  fill_pattern(data.span(), 5);
  ASSERT_EQ(volume->write(0, data.span(), true), 0);
  auto allocated = [&] { return static_cast<std::uint64_t>(stat_of(dir.file("disk.img")).st_blocks) * 512; };
  ASSERT_GE(allocated(), 4 * kMiB);
  ASSERT_EQ(volume->discard(0, 4 * kMiB), 0);
  ASSERT_EQ(volume->flush(), 0);
  EXPECT_LT(allocated(), kMiB);
  EXPECT_EQ(static_cast<std::uint64_t>(stat_of(dir.file("disk.img")).st_size), 8 * kMiB) << "size is kept";
}

// tmpfs gained O_DIRECT in Linux 6.6; before that the volume must fall back to buffered I/O.
// Either way the data must round-trip.
TEST(FileVolume, WorksOnTmpfsWithOrWithoutDirectIo) {
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  TempDir dir("/dev/shm");
  auto volume = FileVolume::open({.path = dir.file("disk.img"), .size_bytes = 4 * kMiB});
  std::vector<std::uint8_t> storage(64 * 1024 + 1);
  std::span<std::uint8_t> data(storage.data() + 1, 64 * 1024);
  fill_pattern(data, 6);
  ASSERT_EQ(volume->write(512, data, true), 0);
  std::vector<std::uint8_t> back(data.size());
  ASSERT_EQ(volume->read(512, back), 0);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), back.begin()));
  ASSERT_EQ(volume->discard(512, 4096), 0);
  ASSERT_EQ(volume->read(512, std::span(back).first(4096)), 0);
  EXPECT_TRUE(std::all_of(back.begin(), back.begin() + 4096, [](std::uint8_t b) { return b == 0; }));
  std::printf("tmpfs direct I/O: %s\n", volume->direct_io() ? "yes" : "no (buffered fallback)");
}

// ramfs has neither O_DIRECT nor hole punching: both fallbacks (buffered I/O with durable FUA,
// discard by writing zeroes) run here. Mounting needs root; skipped otherwise.
TEST(FileVolume, FallsBackToBufferedIoAndZeroWritesWithoutKernelSupport) {
  TempDir dir;
  if (::mount("none", dir.path().c_str(), "ramfs", 0, nullptr) != 0) GTEST_SKIP() << "cannot mount ramfs (needs root)";
  {
    auto volume = FileVolume::open({.path = dir.file("disk.img"), .size_bytes = 4 * kMiB});
    EXPECT_FALSE(volume->direct_io());
    std::vector<std::uint8_t> data(2 * kMiB + 4096, 0x5a);
    ASSERT_EQ(volume->write(4096, data, true), 0);
    ASSERT_EQ(volume->discard(8192, 2 * kMiB - 4096), 0);
    std::vector<std::uint8_t> back(data.size());
    ASSERT_EQ(volume->read(4096, back), 0);
    for (std::size_t i = 0; i < back.size(); ++i) {
      bool discarded = i >= 4096 && i < 2 * kMiB;
      ASSERT_EQ(back[i], discarded ? 0 : 0x5a) << "byte " << i;
    }
  }
  ::umount2(dir.path().c_str(), MNT_DETACH);
}

// A loop device stands in for a disk; needs root and loop support, skipped otherwise.
class LoopDevice {
 public:
  LoopDevice(const std::string& backing, std::uint32_t sector_size) {
    std::string command =
        "losetup --find --show --sector-size " + std::to_string(sector_size) + " " + backing + " 2>/dev/null";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return;
    std::array<char, 128> line{};
    if (std::fgets(line.data(), line.size(), pipe) != nullptr) device_ = line.data();
    ::pclose(pipe);
    while (!device_.empty() && (device_.back() == '\n' || device_.back() == ' ')) device_.pop_back();
  }
  ~LoopDevice() {
    if (!device_.empty()) std::system(("losetup -d " + device_ + " 2>/dev/null").c_str());
  }
  const std::string& path() const { return device_; }

 private:
  std::string device_;
};

TEST(FileVolume, BlockDeviceUsesTheDeviceSizeOrASmallerConfiguredSize) {
  TempDir dir;
  write_file(dir.file("backing.img"), 16 * kMiB);
  LoopDevice loop(dir.file("backing.img"), 512);
  if (loop.path().empty()) GTEST_SKIP() << "no loop device (needs root)";
  {
    auto volume = FileVolume::open({.path = loop.path()});
    EXPECT_EQ(volume->size_bytes(), 16 * kMiB);
    EXPECT_TRUE(volume->direct_io());
  }
  {
    auto volume = FileVolume::open({.path = loop.path(), .size_bytes = 8 * kMiB, .block_size = 4096});
    EXPECT_EQ(volume->size_bytes(), 8 * kMiB);
    util::AlignedBuffer data(8192);
    fill_pattern(data.span(), 8);
    ASSERT_EQ(volume->write(8 * kMiB - 8192, data.span(), true), 0);
    ASSERT_EQ(volume->discard(8 * kMiB - 4096, 4096), 0);
    util::AlignedBuffer back(8192);
    ASSERT_EQ(volume->read(8 * kMiB - 8192, back.span()), 0);
    EXPECT_TRUE(std::equal(data.data(), data.data() + 4096, back.data()));
    EXPECT_TRUE(std::all_of(back.data() + 4096, back.data() + 8192, [](std::uint8_t b) { return b == 0; }));
  }
  EXPECT_EQ(open_error({.path = loop.path(), .size_bytes = 32 * kMiB}),
            loop.path() + ": configured size 33554432 is larger than the device (16777216 bytes)");
}

TEST(FileVolume, BlockDeviceWithLargerSectorsThanTheBlockSizeIsRefused) {
  TempDir dir;
  write_file(dir.file("backing.img"), 16 * kMiB);
  LoopDevice loop(dir.file("backing.img"), 4096);
  if (loop.path().empty()) GTEST_SKIP() << "no loop device (needs root)";
  EXPECT_EQ(open_error({.path = loop.path(), .block_size = 512}),
            loop.path() + ": the device's logical block size is 4096, larger than the configured block size 512");
}

TEST(FileVolume, BlockDeviceIsLockedLikeAFile) {
  TempDir dir;
  write_file(dir.file("backing.img"), 16 * kMiB);
  LoopDevice loop(dir.file("backing.img"), 512);
  if (loop.path().empty()) GTEST_SKIP() << "no loop device (needs root)";
  auto first = FileVolume::open({.path = loop.path()});
  std::string error = open_error({.path = loop.path()});
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error.find(loop.path() + ": "), 0u) << error;
}

TEST(FileVolume, AllocationReportsWrittenBlocksMappedAndHolesDeallocated) {
  TempDir dir;
  auto volume = FileVolume::open({.path = dir.file("disk.img"), .size_bytes = 4 * kMiB, .block_size = 4096});
  const std::vector<std::uint8_t> data(64 * 1024, 0x5A);
  ASSERT_EQ(volume->write(1 * kMiB, data, false), 0);
  std::vector<AllocationExtent> extents;
  ASSERT_EQ(volume->allocation(0, 4 * kMiB, 16, extents), 0);
  ASSERT_EQ(extents.size(), 3u);
  EXPECT_FALSE(extents[0].mapped);
  EXPECT_EQ(extents[0].offset, 0u);
  EXPECT_EQ(extents[1].offset, 1 * kMiB);
  EXPECT_TRUE(extents[1].mapped);
  EXPECT_GE(extents[1].length, data.size());  // the file system may allocate a little more
  EXPECT_FALSE(extents[2].mapped);
  EXPECT_EQ(extents[2].offset + extents[2].length, 4 * kMiB);

  ASSERT_EQ(volume->discard(1 * kMiB, data.size()), 0);
  ASSERT_EQ(volume->allocation(0, 4 * kMiB, 16, extents), 0);
  ASSERT_EQ(extents.size(), 1u);
  EXPECT_FALSE(extents[0].mapped);
  EXPECT_EQ(extents[0].length, 4 * kMiB);

  ASSERT_EQ(volume->allocation(0, 4 * kMiB, 0, extents), 0);
  EXPECT_TRUE(extents.empty());
  EXPECT_EQ(volume->allocation(4 * kMiB, 4096, 4, extents), EINVAL);
}

}  // namespace
}  // namespace freevsa::replication
