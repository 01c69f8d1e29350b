// The write path of a replicated volume against an in-memory peer: what is on which disk when a
// write returns, and what is recorded for resync when the peer is away or fails.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "replication/memory_volume.h"
#include "replication/replicated_volume.h"

namespace freevsa::replication {
namespace {

using namespace std::chrono_literals;

// A peer whose "disk" is a MemoryVolume. Answers at once, or holds answers until released.
class MemoryPeer : public PeerChannel {
 public:
  explicit MemoryPeer(MemoryVolume& disk) : disk_(disk) {}

  bool connected() const override { return up_; }
  void send_write(std::uint64_t offset, std::span<const std::uint8_t> data, bool fua, Done done) override {
    ++writes_;
    std::vector<std::uint8_t> copy(data.begin(), data.end());
    answer([this, offset, copy, fua] { return fail_with_ ? fail_with_.load() : disk_.write(offset, copy, fua); },
           std::move(done));
  }
  void send_flush(Done done) override {
    ++flushes_;
    answer([this] { return disk_.flush(); }, std::move(done));
  }
  void send_discard(std::uint64_t offset, std::uint64_t length, Done done) override {
    answer([this, offset, length] { return disk_.discard(offset, length); }, std::move(done));
  }

  bool peer_up_to_date() const override { return up_ && up_to_date_; }
  void send_read(std::uint64_t offset, std::span<std::uint8_t> dst, Done done) override {
    ++reads_;
    answer([this, offset, dst] { return fail_with_ ? fail_with_.load() : disk_.read(offset, dst); }, std::move(done));
  }

  void set_up(bool up) { up_ = up; }
  void set_up_to_date(bool up_to_date) { up_to_date_ = up_to_date; }
  int reads() const { return reads_; }
  void fail_with(int error) { fail_with_ = error; }
  void hold_answers(bool hold) { hold_ = hold; }
  // Applies and answers every held operation, in order.
  void release() {
    std::deque<std::function<void()>> pending;
    {
      std::lock_guard lock(mutex_);
      pending.swap(held_);
    }
    for (auto& op : pending) op();
  }
  std::size_t held() {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  int writes() const { return writes_; }
  int flushes() const { return flushes_; }

 private:
  template <typename Apply>
  void answer(Apply apply, Done done) {
    auto op = [apply, done = std::move(done)] { done(apply()); };
    if (!hold_) {
      op();
      return;
    }
    std::lock_guard lock(mutex_);
    held_.push_back(std::move(op));
  }

  MemoryVolume& disk_;
  std::atomic<bool> up_{true};
  std::atomic<bool> up_to_date_{true};
  std::atomic<int> reads_{0};
  std::atomic<int> fail_with_{0};
  std::atomic<bool> hold_{false};
  std::atomic<int> writes_{0};
  std::atomic<int> flushes_{0};
  std::mutex mutex_;
  std::deque<std::function<void()>> held_;
};

class RecordedRanges : public OutOfSyncRecorder {
 public:
  void mark_out_of_sync(std::uint64_t offset, std::uint64_t length) override {
    std::lock_guard lock(mutex_);
    ranges.emplace_back(offset, length);
  }
  std::size_t count() {
    std::lock_guard lock(mutex_);
    return ranges.size();
  }
  std::mutex mutex_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
};

class ReplicatedVolumeTest : public ::testing::Test {
 protected:
  void make(Protocol protocol) {
    volume_ = std::make_unique<ReplicatedVolume>(local_, peer_, recorded_, protocol);
    volume_->set_role(Role::Primary);
  }
  void SetUp() override { make(Protocol::C); }

  static std::vector<std::uint8_t> block(std::uint8_t value) { return std::vector<std::uint8_t>(4096, value); }
  static bool holds(MemoryVolume& disk, std::uint64_t offset, std::uint8_t value) {
    for (std::size_t i = 0; i < 4096; ++i)
      if (disk.raw()[offset + i] != value) return false;
    return true;
  }

  MemoryVolume local_{1 << 20, 512};
  MemoryVolume remote_{1 << 20, 512};
  MemoryPeer peer_{remote_};
  RecordedRanges recorded_;
  std::unique_ptr<ReplicatedVolume> volume_;
};

TEST_F(ReplicatedVolumeTest, ProtocolCWriteIsOnBothDisksWhenItReturns) {
  ASSERT_EQ(volume_->write(8192, block(0x5A), false), 0);
  EXPECT_TRUE(holds(local_, 8192, 0x5A));
  EXPECT_TRUE(holds(remote_, 8192, 0x5A));
  EXPECT_EQ(recorded_.count(), 0u);
}

TEST_F(ReplicatedVolumeTest, ProtocolCWaitsForThePeersAnswer) {
  peer_.hold_answers(true);
  std::atomic<bool> returned{false};
  std::thread writer([&] {
    EXPECT_EQ(volume_->write(0, block(1), false), 0);
    returned = true;
  });
  while (peer_.held() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(returned.load()) << "the initiator would have had its status before the peer had the data";
  peer_.release();
  writer.join();
  EXPECT_TRUE(returned.load());
  EXPECT_TRUE(holds(remote_, 0, 1));
}

TEST_F(ReplicatedVolumeTest, ProtocolAReturnsBeforeThePeerAnswers) {
  make(Protocol::A);
  peer_.hold_answers(true);
  EXPECT_EQ(volume_->write(0, block(2), false), 0);
  EXPECT_TRUE(holds(local_, 0, 2));
  EXPECT_FALSE(holds(remote_, 0, 2));
  peer_.release();
  EXPECT_TRUE(holds(remote_, 0, 2)) << "the link must send its own copy of the data";
}

TEST_F(ReplicatedVolumeTest, SynchronizeCacheIsNotGoodWhenThePeersFlushFailed) {
  ASSERT_EQ(volume_->write(0, block(9), false), 0);
  remote_.fail_writes_with(EIO);  // MemoryVolume fails flushes with the write error
  EXPECT_EQ(volume_->flush(), EIO) << "the peer may have lost the write, and nothing says so";
}

TEST_F(ReplicatedVolumeTest, WriteWithThePeerAwaySucceedsAndIsRecordedOutOfSync) {
  peer_.set_up(false);
  ASSERT_EQ(volume_->write(12288, block(3), false), 0);
  EXPECT_TRUE(holds(local_, 12288, 3));
  EXPECT_EQ(peer_.writes(), 0);
  ASSERT_EQ(recorded_.count(), 1u);
  EXPECT_EQ(recorded_.ranges[0], std::make_pair(std::uint64_t{12288}, std::uint64_t{4096}));
}

TEST_F(ReplicatedVolumeTest, WriteThePeerFailsIsRecordedBeforeItReturns) {
  peer_.fail_with(EIO);
  ASSERT_EQ(volume_->write(4096, block(4), false), 0);
  ASSERT_EQ(recorded_.count(), 1u);
  EXPECT_EQ(recorded_.ranges[0].first, 4096u);
}

TEST_F(ReplicatedVolumeTest, LocalDiskErrorIsReturnedWhenThePeerCannotServeAlone) {
  peer_.set_up_to_date(false);
  local_.fail_writes_with(EIO);
  EXPECT_EQ(volume_->write(0, block(5), false), EIO);
}

TEST_F(ReplicatedVolumeTest, FlushReachesBothSides) {
  ASSERT_EQ(volume_->flush(), 0);
  EXPECT_EQ(peer_.flushes(), 1);
  EXPECT_EQ(local_.flush_count(), 1u);
  EXPECT_EQ(remote_.flush_count(), 1u);
}

TEST_F(ReplicatedVolumeTest, FuaReachesThePeer) {
  ASSERT_EQ(volume_->write(0, block(6), true), 0);
  EXPECT_EQ(local_.fua_write_count(), 1u);
  EXPECT_EQ(remote_.fua_write_count(), 1u);
}

TEST_F(ReplicatedVolumeTest, DiscardReplicates) {
  ASSERT_EQ(volume_->write(0, block(7), false), 0);
  ASSERT_EQ(volume_->discard(0, 4096), 0);
  EXPECT_TRUE(holds(local_, 0, 0));
  EXPECT_TRUE(holds(remote_, 0, 0));
}

TEST_F(ReplicatedVolumeTest, OverlappingWriteWaitsUntilTheEarlierOneIsOnBothDisks) {
  peer_.hold_answers(true);
  std::thread first([&] { volume_->write(0, block(8), false); });
  while (peer_.held() < 1) std::this_thread::yield();
  std::atomic<bool> second_sent{false};
  std::thread second([&] {
    volume_->write(0, block(9), false);
    second_sent = true;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(peer_.writes(), 1) << "an overlapping write went to the peer before the first completed";
  peer_.hold_answers(false);
  peer_.release();
  first.join();
  second.join();
  EXPECT_TRUE(holds(local_, 0, 9));
  EXPECT_TRUE(holds(remote_, 0, 9));
}

TEST_F(ReplicatedVolumeTest, SecondaryIsStandbyAndRefusesInitiatorIo) {
  volume_->set_role(Role::Secondary);
  EXPECT_EQ(volume_->access(), Access::Standby);
  std::vector<std::uint8_t> buffer(4096);
  EXPECT_EQ(volume_->read(0, buffer), EROFS);
  EXPECT_EQ(volume_->write(0, block(1), false), EROFS);
  EXPECT_EQ(peer_.writes(), 0);
}

TEST_F(ReplicatedVolumeTest, PrimaryIsActive) { EXPECT_EQ(volume_->access(), Access::Active); }

TEST_F(ReplicatedVolumeTest, SecondaryThatCouldNotTakeOverIsUnavailable) {
  volume_->set_role(Role::Secondary);
  volume_->set_local_up_to_date(false);
  EXPECT_EQ(volume_->access(), Access::Unavailable);
  EXPECT_EQ(volume_->port_groups().front().access, Access::Unavailable);
  volume_->set_local_up_to_date(true);
  EXPECT_EQ(volume_->access(), Access::Standby);
  // The primary serves whatever its own disk's state (a detached disk is served by the peer's).
  volume_->set_role(Role::Primary);
  volume_->set_local_up_to_date(false);
  EXPECT_EQ(volume_->access(), Access::Active);
}

}  // namespace
}  // namespace freevsa::replication

namespace freevsa::replication {
namespace {

TEST_F(ReplicatedVolumeTest, SecondaryAppliesTheReplicationStream) {
  volume_->set_role(Role::Secondary);
  ASSERT_EQ(volume_->apply_peer_write(4096, block(0x42), false), 0);
  EXPECT_TRUE(holds(local_, 4096, 0x42));
  ASSERT_EQ(volume_->apply_peer_discard(4096, 4096), 0);
  EXPECT_TRUE(holds(local_, 4096, 0));
  ASSERT_EQ(volume_->apply_peer_flush(), 0);
  EXPECT_EQ(local_.flush_count(), 1u);
}

TEST_F(ReplicatedVolumeTest, PrimaryRefusesAReplicationStream) {
  EXPECT_EQ(volume_->apply_peer_write(0, block(1), false), EBUSY);
  EXPECT_TRUE(holds(local_, 0, 0)) << "a second primary's stream must never land";
}

TEST_F(ReplicatedVolumeTest, ReplicatedWriteBeyondTheEndIsRefused) {
  volume_->set_role(Role::Secondary);
  EXPECT_EQ(volume_->apply_peer_write(local_.size_bytes() - 512, block(1), false), EINVAL);
}

TEST_F(ReplicatedVolumeTest, DrainWaitsForWritesThatPassedTheRoleCheck) {
  peer_.hold_answers(true);
  std::thread writer([this] { EXPECT_EQ(volume_->write(0, block(0x21), false), 0); });
  while (peer_.held() == 0) std::this_thread::yield();  // the write waits for its peer now
  volume_->set_role(Role::Secondary);
  EXPECT_EQ(volume_->write(4096, block(0x22), false), EROFS);  // no new writes
  std::atomic<bool> drained{false};
  std::thread demoter([&] {
    volume_->drain();
    drained = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(drained) << "drain returned while a write was still waiting for the peer";
  peer_.release();
  writer.join();
  demoter.join();
  EXPECT_TRUE(drained);
  EXPECT_TRUE(holds(remote_, 0, 0x21));
}

// ---- a failing local disk is detached when the peer can serve (DRBD's on-io-error detach)

class DetachTest : public ReplicatedVolumeTest {
 protected:
  void SetUp() override {
    make(Protocol::C);
    volume_->set_detach_handler([this](int error, const char* operation) {
      detaches_.emplace_back(error, operation);
    });
  }
  std::vector<std::pair<int, std::string>> detaches_;
};

TEST_F(DetachTest, LocalWriteErrorWithAnUpToDatePeerDetachesAndTheWriteSucceeds) {
  local_.fail_writes_with(EIO);
  EXPECT_EQ(volume_->write(8192, block(0x11), false), 0);
  EXPECT_TRUE(holds(remote_, 8192, 0x11));
  EXPECT_TRUE(volume_->detached());
  ASSERT_EQ(detaches_.size(), 1u);
  EXPECT_EQ(detaches_[0], std::make_pair(EIO, std::string("write")));
}

TEST_F(DetachTest, OnceDetachedReadsComeFromThePeerEvenIfTheLocalDiskRecovers) {
  local_.fail_writes_with(EIO);
  ASSERT_EQ(volume_->write(0, block(0x22), false), 0);
  local_.fail_writes_with(0);
  std::vector<std::uint8_t> got(4096);
  ASSERT_EQ(volume_->read(0, got), 0);
  EXPECT_EQ(got, block(0x22));  // the local disk never got it
  EXPECT_EQ(peer_.reads(), 1);
}

TEST_F(DetachTest, OnceDetachedWritesGoToThePeerAlone) {
  local_.fail_writes_with(EIO);
  ASSERT_EQ(volume_->write(0, block(0x33), false), 0);
  local_.fail_writes_with(0);
  ASSERT_EQ(volume_->write(4096, block(0x44), true), 0);
  EXPECT_TRUE(holds(remote_, 4096, 0x44));
  EXPECT_TRUE(holds(local_, 4096, 0x00));
  EXPECT_EQ(volume_->flush(), 0);
  EXPECT_EQ(local_.flush_count(), 0u);
  EXPECT_EQ(detaches_.size(), 1u);  // detached once
}

TEST_F(DetachTest, LocalReadErrorWithAnUpToDatePeerReadsFromThePeer) {
  remote_.raw()[100] = 0x7e;
  local_.fail_reads_with(EIO);
  std::vector<std::uint8_t> got(512);
  ASSERT_EQ(volume_->read(0, got), 0);
  EXPECT_EQ(got[100], 0x7e);
  EXPECT_TRUE(volume_->detached());
  ASSERT_EQ(detaches_.size(), 1u);
  EXPECT_EQ(detaches_[0].second, "read");
}

TEST_F(DetachTest, WithoutAnUpToDatePeerTheErrorReachesTheInitiatorAndNothingIsDetached) {
  peer_.set_up_to_date(false);  // e.g. the peer is a resync target
  local_.fail_writes_with(EIO);
  EXPECT_EQ(volume_->write(8192, block(0x55), false), EIO);
  local_.fail_reads_with(EIO);
  std::vector<std::uint8_t> got(512);
  EXPECT_EQ(volume_->read(0, got), EIO);
  EXPECT_FALSE(volume_->detached());
  EXPECT_TRUE(detaches_.empty());
  // The peer took the write the local disk refused: the replicas differ there until a resync.
  ASSERT_EQ(recorded_.count(), 1u);
  EXPECT_EQ(recorded_.ranges[0], std::make_pair(std::uint64_t{8192}, std::uint64_t{4096}));
}

TEST_F(DetachTest, WithoutAPeerTheErrorReachesTheInitiator) {
  peer_.set_up(false);
  local_.fail_writes_with(EIO);
  EXPECT_EQ(volume_->write(0, block(0x66), false), EIO);
  EXPECT_FALSE(volume_->detached());
}

TEST_F(DetachTest, ADetachedPrimaryThatLosesItsPeerFailsIoWithEio) {
  local_.fail_writes_with(EIO);
  ASSERT_EQ(volume_->write(0, block(0x77), false), 0);
  peer_.set_up(false);
  EXPECT_EQ(volume_->write(0, block(0x78), false), EIO);
  std::vector<std::uint8_t> got(512);
  EXPECT_EQ(volume_->read(0, got), EIO);
  EXPECT_EQ(volume_->flush(), EIO);
}

TEST_F(DetachTest, AFlushErrorDetachesWhenThePeerFlushed) {
  local_.fail_writes_with(EIO);  // MemoryVolume fails flushes with the write error
  EXPECT_EQ(volume_->flush(), 0);
  EXPECT_TRUE(volume_->detached());
}

TEST_F(DetachTest, ASecondaryWhoseDiskFailsDetachesAndRefusesTheStream) {
  volume_->set_role(Role::Secondary);
  local_.fail_writes_with(EIO);
  EXPECT_EQ(volume_->apply_peer_write(0, block(0x12), false), EIO);
  EXPECT_TRUE(volume_->detached());
  local_.fail_writes_with(0);
  EXPECT_EQ(volume_->apply_peer_write(0, block(0x13), false), EIO);
  EXPECT_TRUE(holds(local_, 0, 0x00));
  ASSERT_EQ(detaches_.size(), 1u);
  EXPECT_EQ(detaches_[0].second, "write");
}

}  // namespace
}  // namespace freevsa::replication
