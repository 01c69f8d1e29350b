// Resync and online verify (DESIGN.md). After the bitmaps were exchanged, the sync target
// pulls: it walks its (merged) bitmap, asks the source for each dirty range (with its own
// digest when checksum-based resync is on), writes what comes back and clears the bits; the
// source clears its bits when the target acknowledges. A few requests are in flight at once and
// a token bucket holds the rate. Verify works the same way with digests only, and marks the
// ranges whose digests differ; a resync then repairs them.
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "replication/replicator.h"
#include "replication/replicator_sync_state.h"
#include "replication/replicator_internal.h"
#include "util/aligned_buffer.h"
#include "util/crc32c.h"
#include "util/log.h"

namespace freevsa::replication {

namespace asio = boost::asio;

namespace {
constexpr std::uint32_t kResyncChunk = 256 * 1024;
constexpr std::size_t kResyncWindow = 8;
constexpr std::uint32_t kVerifyChunk = 64 * 1024;
constexpr std::size_t kVerifyWindow = 16;

peer::Digest digest_of(peer::DigestAlgorithm algorithm, std::span<const std::uint8_t> data) {
  peer::Digest digest{};
  if (algorithm == peer::DigestAlgorithm::Crc32c) {
    const std::uint32_t crc = util::crc32c(data);
    digest[0] = static_cast<std::uint8_t>(crc >> 24);
    digest[1] = static_cast<std::uint8_t>(crc >> 16);
    digest[2] = static_cast<std::uint8_t>(crc >> 8);
    digest[3] = static_cast<std::uint8_t>(crc);
  } else if (algorithm == peer::DigestAlgorithm::Sha256) {
    unsigned int length = 0;
    EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  }
  return digest;
}

std::string now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}
}  // namespace

void Replicator::reset_sync_state() {
  sync_role_ = SyncRole::None;
  resync_.reset();
  if (verify_ && verify_->driver) finish_verify(ECONNRESET);
  verify_.reset();
  sync_timer_.cancel();
  verify_timer_.cancel();
  bitmap_sent_ = false;
  bitmap_received_ = false;
}

// ---- bitmap exchange

void Replicator::send_bitmap() {
  const DirtyBitmap& bitmap = metadata_.bitmap();
  for (std::size_t page = 0; page < bitmap.page_count(); ++page) {
    const std::uint64_t first_bit = page * DirtyBitmap::kBitsPerPage;
    const auto bit_count = static_cast<std::uint32_t>(std::min<std::uint64_t>(DirtyBitmap::kBitsPerPage, bitmap.bit_count() - first_bit));
    auto body = std::make_shared<std::vector<std::uint8_t>>(kMetadataBlockSize);
    bitmap.encode_page(page, std::span<std::uint8_t, kMetadataBlockSize>(body->data(), kMetadataBlockSize));
    body->resize((bit_count + 7) / 8);
    peer::BitmapChunk chunk;
    chunk.bit_offset = first_bit;
    chunk.bit_count = bit_count;
    chunk.flags = page + 1 == bitmap.page_count() ? peer::kBitmapLast : 0;
    if (std::all_of(body->begin(), body->end(), [](std::uint8_t b) { return b == 0; })) {
      // A clean page is one run of clear bits.
      body->assign({static_cast<std::uint8_t>(bit_count >> 24), static_cast<std::uint8_t>(bit_count >> 16),
                    static_cast<std::uint8_t>(bit_count >> 8), static_cast<std::uint8_t>(bit_count)});
      chunk.encoding = peer::BitmapEncoding::Runs;
    }
    chunk.body = *body;
    link_->send(chunk);
    link_->hold_until_sent(body);
  }
  bitmap_sent_ = true;
}

void Replicator::on_bitmap_chunk(const peer::BitmapChunk& chunk) {
  DirtyBitmap& bitmap = metadata_.bitmap();
  int error = 0;
  if (chunk.encoding == peer::BitmapEncoding::Raw) {
    error = bitmap.merge_raw(chunk.bit_offset, chunk.bit_count, chunk.body);
  } else {
    if (chunk.bit_offset + chunk.bit_count > bitmap.bit_count()) error = EINVAL;
    std::uint64_t bit = chunk.bit_offset;
    bool set = false;
    for (std::size_t i = 0; error == 0 && i + 4 <= chunk.body.size(); i += 4, set = !set) {
      const std::uint64_t run = (std::uint64_t{chunk.body[i]} << 24) | (std::uint64_t{chunk.body[i + 1]} << 16) |
                                (std::uint64_t{chunk.body[i + 2]} << 8) | chunk.body[i + 3];
      if (set && run > 0) bitmap.set_range(bit * bitmap.granularity(), run * bitmap.granularity());
      bit += run;
    }
  }
  if (error != 0) {
    drop_link("the peer's bitmap does not fit this volume", peer::DisconnectCode::ProtocolError);
    return;
  }
  if ((chunk.flags & peer::kBitmapLast) != 0) {
    bitmap_received_ = true;
    start_sync_after_exchange();
  }
}

void Replicator::start_sync_after_exchange() {
  if (sync_role_ != SyncRole::None || !bitmap_sent_ || !bitmap_received_) return;
  const bool have_bits = metadata_.bitmap().count_dirty_bits() > 0;
  switch (decision_) {
    case SyncDecision::BecomeSyncTarget:
    case SyncDecision::FullSyncAsTarget:
      start_sync_target();
      return;
    case SyncDecision::BecomeSyncSource:
    case SyncDecision::FullSyncAsSource:
      break;
    default:
      // Same generation, but blocks the bitmaps name (a crash's activity log, a verify): the
      // primary's copy is the one initiators were told about.
      if (!have_bits) {
        maybe_resume_primary();
        return;
      }
      if (peer_role_ == peer::Role::Primary) {
        start_sync_target();
        return;
      }
      if (volume_->role() != Role::Primary) {
        maybe_resume_primary();
        if (volume_->role() != Role::Primary) {
          util::log_info("{}: {} named out of sync; the resync starts when one node is primary", settings_.volume_name,
                         human_bytes(metadata_.bitmap().count_dirty_bytes()));
        }
        return;
      }
      break;
  }
  sync_role_ = SyncRole::Source;
  set_peer_disk(peer::DiskState::Outdated);
  resync_ = std::make_unique<ResyncProgress>();
  resync_->full = decision_ == SyncDecision::FullSyncAsSource;
  resync_->total = metadata_.bitmap().count_dirty_bytes();
  if (resync_->full) resync_->total = data_.size_bytes();
  util::log_info("{}: resync to {} starting: {} to copy{}", settings_.volume_name, settings_.peer_name,
                 human_bytes(resync_->total), resync_->full ? " (full sync)" : "");
  maybe_resume_primary();
}

void Replicator::start_source_and_share_bitmap() {
  if (sync_role_ != SyncRole::None || !link_ || phase_ != Phase::Up) return;
  sync_role_ = SyncRole::Source;
  set_peer_disk(peer::DiskState::Outdated);
  resync_ = std::make_unique<ResyncProgress>();
  resync_->total = metadata_.bitmap().count_dirty_bytes();
  util::log_info("{}: resync to {} starting: {} to copy", settings_.volume_name, settings_.peer_name,
                 human_bytes(resync_->total));
  // The peer merges these bits and, being secondary, starts fetching them.
  send_bitmap();
}

// ---- sync target

void Replicator::start_sync_target() {
  const bool full = decision_ == SyncDecision::FullSyncAsTarget;
  const std::uint64_t source_current = peer_generations_.current;
  if (full) metadata_.bitmap().set_all();
  // From here until it finishes this replica is Inconsistent; for a full sync it also takes the
  // source's generation, so that an interrupted full sync resumes from the bitmap.
  if (full) metadata_.bitmap_store().write_all();
  update_metadata([full, source_current](Superblock& sb) {
    sb.disk_state = DiskState::Inconsistent;
    if (full) {
      sb.generations.history[1] = sb.generations.history[0];
      sb.generations.history[0] = sb.generations.current;
      sb.generations.current = source_current;
      sb.generations.bitmap = 0;
    }
  });
  sync_role_ = SyncRole::Target;
  resync_ = std::make_unique<ResyncProgress>();
  resync_->full = full;
  resync_->total = metadata_.bitmap().count_dirty_bytes();
  util::log_info("{}: resync from {} starting: {} to fetch{}{}", settings_.volume_name, settings_.peer_name,
                 human_bytes(resync_->total), full ? " (full sync)" : "",
                 settings_.resync_checksum ? ", checksum-based" : "");
  send_state("resync started");
  pump_resync();
}

std::uint64_t Replicator::resync_rate_now() const {
  if (!settings_.resync_adaptive) return settings_.resync_rate;
  // Application writes keep priority: while they flow, the resync drops to its minimum.
  const bool busy = Clock::now() - last_app_write_ < std::chrono::seconds(1);
  return busy ? settings_.resync_min_rate : settings_.resync_max_rate;
}

void Replicator::pump_resync() {
  if (!resync_ || sync_role_ != SyncRole::Target || !link_) return;
  DirtyBitmap& bitmap = metadata_.bitmap();
  const std::uint64_t size = data_.size_bytes();
  while (resync_->outstanding.size() < kResyncWindow) {
    std::optional<std::uint64_t> start = bitmap.find_next_dirty(resync_->cursor);
    if (!start || *start >= size) {
      if (!resync_->outstanding.empty()) return;
      if (bitmap.count_dirty_bits() == 0) {
        finish_sync_target();
        return;
      }
      // Bits left behind by failed requests: another pass, promptly if the last one helped.
      const bool again_now = resync_->progress_this_pass;
      resync_->cursor = 0;
      resync_->progress_this_pass = false;
      if (!again_now) {
        sync_timer_.expires_after(std::chrono::seconds(1));
        sync_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
          if (!ec) self->pump_resync();
        });
        return;
      }
      continue;
    }
    const std::uint64_t end = std::min(bitmap.find_next_clean(*start).value_or(size), size);
    const auto length = static_cast<std::uint32_t>(std::min<std::uint64_t>(end - *start, kResyncChunk));
    const std::chrono::milliseconds wait = resync_->bucket.take(length, resync_rate_now());
    if (wait.count() > 0) {
      sync_timer_.expires_after(wait);
      sync_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->pump_resync();
      });
      return;
    }
    resync_->cursor = *start + length;
    request_resync_range(*start, length);
  }
}

void Replicator::request_resync_range(std::uint64_t offset, std::uint32_t length) {
  const std::uint64_t id = next_request_id_;
  next_request_id_ += 2;
  resync_->outstanding.emplace(id, std::make_pair(offset, length));
  if (!settings_.resync_checksum) {
    link_->send(peer::ResyncRequest{offset, length, peer::DigestAlgorithm::None, {}}, id);
    return;
  }
  // Checksum-based: the source sends the data only when its digest differs from ours.
  on_worker_then_answer(
      [self = shared_from_this(), offset, length] { return self->local_digest(offset, length, peer::DigestAlgorithm::Sha256); },
      [offset, length, id](PeerConnection& link, std::pair<int, peer::Digest> local) {
        // An unreadable local range is simply fetched.
        const bool have = local.first == 0;
        link.send(peer::ResyncRequest{offset, length, have ? peer::DigestAlgorithm::Sha256 : peer::DigestAlgorithm::None,
                                      have ? local.second : peer::Digest{}},
                  id);
      });
}

std::pair<int, peer::Digest> Replicator::local_digest(std::uint64_t offset, std::uint32_t length,
                                                      peer::DigestAlgorithm algorithm) {
  util::AlignedBuffer buffer(length);
  const int error = volume_->detached() ? EIO : data_.read(offset, buffer.span());
  return {error, error == 0 ? digest_of(algorithm, buffer.span()) : peer::Digest{}};
}

void Replicator::on_resync_data(const peer::FrameHeader& header, const peer::ResyncData& data) {
  if (!resync_ || sync_role_ != SyncRole::Target) return;
  auto it = resync_->outstanding.find(header.request_id);
  if (it == resync_->outstanding.end()) return;
  const std::uint64_t id = header.request_id;
  const std::uint64_t offset = it->second.first;
  const std::uint32_t length = it->second.second;
  if (data.offset != offset || data.length != length) {
    drop_link("resync data for another range than requested", peer::DisconnectCode::ProtocolError);
    return;
  }
  if (data.status != 0) {
    util::log_warn("{}: {} could not read [{}, +{}) for the resync: {}", settings_.volume_name, settings_.peer_name,
                   offset, length, std::strerror(data.status));
    resync_->outstanding.erase(it);
    pump_resync();
    return;
  }
  if ((data.flags & peer::kResyncIdentical) != 0) {
    metadata_.bitmap().clear_range(offset, length);
    resync_->done += length;
    resync_->skipped += length;
    resync_->progress_this_pass = true;
    resync_->throughput.add(length);
    resync_->outstanding.erase(it);
    link_->send(peer::WriteAck{0, 0}, id);
    pump_resync();
    return;
  }
  auto buffer = std::make_shared<util::AlignedBuffer>(data.data.size());
  std::copy(data.data.begin(), data.data.end(), buffer->data());
  apply_in_order(
      offset, length, epoch_.load(), false,
      [self = shared_from_this(), buffer, offset] { return self->volume_->apply_peer_write(offset, buffer->span(), false); },
      [self = shared_from_this(), id, offset, length](PeerConnection& link, int error) {
        if (!self->resync_) return;
        self->resync_->outstanding.erase(id);
        if (error == 0) {
          self->metadata_.bitmap().clear_range(offset, length);
          self->resync_->done += length;
          self->resync_->progress_this_pass = true;
          self->resync_->throughput.add(length);
          self->bytes_resynced_.fetch_add(length);
        } else {
          util::log_error("{}: writing resync data at [{}, +{}) failed: {}", self->settings_.volume_name, offset, length,
                          std::strerror(error));
        }
        link.send(peer::WriteAck{error, 0}, id);
        self->pump_resync();
      });
}

void Replicator::finish_sync_target() {
  const std::uint64_t source_current = peer_generations_.current;
  const double seconds = std::chrono::duration<double>(Clock::now() - resync_->started).count();
  const std::uint64_t copied = resync_->done - resync_->skipped;
  const std::uint64_t skipped = resync_->skipped;
  sync_role_ = SyncRole::None;
  decision_ = SyncDecision::InSync;
  resync_.reset();
  // Everything fetched must be durable before this replica calls itself UpToDate.
  on_worker_then_answer(
      [self = shared_from_this()] {
        int error = self->data_.flush();
        if (error == 0) error = self->metadata_.bitmap_store().write_all();
        return error;
      },
      [self = shared_from_this(), source_current, seconds, copied, skipped](PeerConnection&, int error) {
        if (error != 0) {
          self->drop_link(fmt::format("making the resynced data durable failed: {}", std::strerror(error)),
                          peer::DisconnectCode::Unspecified);
          return;
        }
        self->update_metadata([source_current](Superblock& sb) {
          sb.disk_state = DiskState::UpToDate;
          finish_resync(sb.generations, source_current);
        });
        const auto rate = static_cast<std::uint64_t>(seconds > 0 ? static_cast<double>(copied) / seconds : 0);
        util::log_info("{}: resync from {} finished: {} copied, {} found identical, in {:.1f} s ({}/s)",
                       self->settings_.volume_name, self->settings_.peer_name, human_bytes(copied),
                       human_bytes(skipped), seconds, human_bytes(rate));
        self->send_state("resync finished");
        self->maybe_resume_primary();
      });
}

// ---- sync source

void Replicator::on_resync_request(const peer::FrameHeader& header, const peer::ResyncRequest& request) {
  if (request.offset > data_.size_bytes() || request.length > data_.size_bytes() - request.offset) {
    drop_link("resync request beyond the end of the volume", peer::DisconnectCode::ProtocolError);
    return;
  }
  if (sync_role_ == SyncRole::None) {
    sync_role_ = SyncRole::Source;
    resync_ = std::make_unique<ResyncProgress>();
    resync_->total = metadata_.bitmap().count_dirty_bytes();
  }
  if (!resync_) return;
  const std::uint64_t id = header.request_id;
  std::weak_ptr<PeerConnection> link = link_;
  workers_.post([self = shared_from_this(), request, id, link] {
    auto buffer = std::make_shared<util::AlignedBuffer>(request.length);
    // Read and queue under the range lock: a write to the range after this read reaches the
    // peer after this data (DESIGN.md, "Ordering").
    self->volume_->with_range_locked(request.offset, request.length, [&] {
      const int error = self->volume_->detached() ? EIO : self->data_.read(request.offset, buffer->span());
      const bool identical = error == 0 && request.algorithm != peer::DigestAlgorithm::None &&
                             digest_of(request.algorithm, buffer->span()) == request.digest;
      asio::post(self->io_, [self, request, id, link, buffer, error, identical] {
        auto connection = link.lock();
        if (!connection || connection != self->link_ || !self->resync_) return;
        peer::ResyncData reply;
        reply.offset = request.offset;
        reply.length = request.length;
        reply.status = error;
        if (identical) reply.flags = peer::kResyncIdentical;
        if (error == 0 && !identical) reply.data = buffer->span();
        connection->send(reply, id);
        connection->hold_until_sent(buffer);
        self->resync_->served.emplace(id, std::make_pair(request.offset, request.length));
      });
    });
  });
}

void Replicator::on_resync_acked(std::uint64_t offset, std::uint64_t length, int status) {
  if (status != 0 || !resync_) return;
  metadata_.bitmap().clear_range(offset, length);
  resync_->done += length;
  resync_->throughput.add(length);
  bytes_resynced_.fetch_add(length);
}

void Replicator::finish_sync_source() {
  const double seconds = resync_ ? std::chrono::duration<double>(Clock::now() - resync_->started).count() : 0;
  const std::uint64_t done = resync_ ? resync_->done : 0;
  sync_role_ = SyncRole::None;
  decision_ = SyncDecision::InSync;
  resync_.reset();
  update_metadata([](Superblock& sb) {
    // The peer is identical again: the bitmap no longer needs to track from the old generation.
    if (sb.generations.bitmap != 0) finish_resync(sb.generations, sb.generations.current);
    sb.set(metadata_flag::kPeerOutdated, false);
  });
  util::log_info("{}: resync to {} finished: {} sent in {:.1f} s", settings_.volume_name, settings_.peer_name,
                 human_bytes(done), seconds);
}

// ---- online verify

CommandResult Replicator::verify() {
  return on_io_thread([&]() -> CommandResult {
    if (phase_ != Phase::Up) {
      return {false, 409, fmt::format("{}: not connected to {}; verify compares both replicas", settings_.volume_name,
                                      settings_.peer_name), ""};
    }
    if (sync_role_ != SyncRole::None) return {false, 409, fmt::format("{}: a resync is running; verify after it", settings_.volume_name), ""};
    if (verify_) return {false, 409, fmt::format("{}: a verify is already running", settings_.volume_name), ""};
    verify_ = std::make_unique<VerifyRun>();
    verify_->driver = true;
    last_verify_ = VerifyProgress{};
    last_verify_.running = true;
    util::log_info("{}: online verify against {} started ({}, {}/s)", settings_.volume_name, settings_.peer_name,
                   settings_.verify_algorithm == peer::DigestAlgorithm::Sha256 ? "sha256" : "crc32c",
                   human_bytes(settings_.verify_rate));
    pump_verify();
    return {true, 200, fmt::format("{}: verify started ({} to compare)", settings_.volume_name, human_bytes(data_.size_bytes())), ""};
  });
}

void Replicator::pump_verify() {
  if (!verify_ || !verify_->driver || !link_) return;
  const std::uint64_t size = data_.size_bytes();
  while (verify_->outstanding.size() < kVerifyWindow && verify_->cursor < size) {
    const auto length = static_cast<std::uint32_t>(std::min<std::uint64_t>(kVerifyChunk, size - verify_->cursor));
    const std::chrono::milliseconds wait = verify_->bucket.take(length, settings_.verify_rate);
    if (wait.count() > 0) {
      verify_timer_.expires_after(wait);
      verify_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->pump_verify();
      });
      return;
    }
    const std::uint64_t offset = verify_->cursor;
    verify_->cursor += length;
    const std::uint64_t id = next_request_id_;
    next_request_id_ += 2;
    verify_->outstanding.emplace(id, VerifyRun::Range{offset, length, std::nullopt, std::nullopt, false});
    link_->send(peer::ChecksumRequest{offset, length, settings_.verify_algorithm}, id);
    workers_.post([self = shared_from_this(), offset, length, id, algorithm = settings_.verify_algorithm] {
      const std::pair<int, peer::Digest> local = self->local_digest(offset, length, algorithm);
      const int error = local.first;
      const peer::Digest digest = local.second;
      asio::post(self->io_, [self, id, error, digest] {
        if (!self->verify_) return;
        auto it = self->verify_->outstanding.find(id);
        if (it == self->verify_->outstanding.end()) return;
        it->second.local = digest;
        if (error != 0) it->second.failed = true;
        self->on_checksum_reply(peer::FrameHeader{}, peer::ChecksumReply{});  // compare if both are in
      });
    });
  }
  if (verify_->cursor >= size && verify_->outstanding.empty()) finish_verify(0);
}

void Replicator::on_checksum_request(const peer::FrameHeader& header, const peer::ChecksumRequest& request) {
  if (request.offset > data_.size_bytes() || request.length > data_.size_bytes() - request.offset) {
    drop_link("checksum request beyond the end of the volume", peer::DisconnectCode::ProtocolError);
    return;
  }
  if (!verify_) {
    verify_ = std::make_unique<VerifyRun>();  // answering: VerifyTarget until VerifyDone
  }
  const std::uint64_t id = header.request_id;
  on_worker_then_answer(
      [self = shared_from_this(), request] { return self->local_digest(request.offset, request.length, request.algorithm); },
      [request, id](PeerConnection& link, std::pair<int, peer::Digest> local) {
        link.send(peer::ChecksumReply{request.offset, request.length, request.algorithm, local.first, local.second}, id);
      });
}

void Replicator::on_checksum_reply(const peer::FrameHeader& header, const peer::ChecksumReply& reply) {
  if (!verify_ || !verify_->driver) return;
  if (header.request_id != 0) {
    auto it = verify_->outstanding.find(header.request_id);
    if (it == verify_->outstanding.end()) return;
    it->second.remote = reply.digest;
    if (reply.status != 0) it->second.failed = true;
  }
  // Settle every range whose two digests are in.
  for (auto it = verify_->outstanding.begin(); it != verify_->outstanding.end();) {
    const VerifyRun::Range& range = it->second;
    if (!range.local || !range.remote) {
      ++it;
      continue;
    }
    if (range.failed || *range.local != *range.remote) {
      metadata_.bitmap().set_range(range.offset, range.length);
      verify_->out_of_sync += range.length;
      if (verify_->out_of_sync <= 16 * kVerifyChunk) {
        util::log_warn("{}: verify: [{}, +{}) differs from {}{}", settings_.volume_name, range.offset, range.length,
                       settings_.peer_name, range.failed ? " (a side could not read it)" : "");
      }
    }
    verify_->checked += range.length;
    verify_->throughput.add(range.length);
    it = verify_->outstanding.erase(it);
  }
  last_verify_.checked_bytes = verify_->checked;
  last_verify_.out_of_sync_bytes = verify_->out_of_sync;
  pump_verify();
}

void Replicator::on_verify_done(const peer::VerifyDone& done) {
  if (verify_ && !verify_->driver) verify_.reset();
  util::log_info("{}: {} finished verifying against this node: {} checked, {} out of sync", settings_.volume_name,
                 settings_.peer_name, human_bytes(done.bytes_checked), human_bytes(done.bytes_out_of_sync));
}

void Replicator::finish_verify(int status) {
  if (!verify_) return;
  const std::uint64_t checked = verify_->checked;
  const std::uint64_t differing = verify_->out_of_sync;
  verify_.reset();
  verify_timer_.cancel();
  last_verify_.running = false;
  last_verify_.checked_bytes = checked;
  last_verify_.out_of_sync_bytes = differing;
  if (status != 0) {
    util::log_warn("{}: verify aborted after {}: {}", settings_.volume_name, human_bytes(checked), std::strerror(status));
    return;
  }
  last_verify_.finished_at = now_iso8601();
  if (link_) link_->send(peer::VerifyDone{checked, differing, 0});
  util::log_info("{}: verify finished: {} compared, {} out of sync", settings_.volume_name, human_bytes(checked),
                 human_bytes(differing));
  if (differing == 0 || !link_) return;
  // Repair: the primary's data is the reference.
  if (volume_->role() == Role::Primary) {
    start_source_and_share_bitmap();
  } else if (peer_role_ == peer::Role::Primary) {
    start_sync_target();
  } else {
    util::log_warn("{}: the differing blocks are marked; they are resynced once a node is primary", settings_.volume_name);
  }
}

}  // namespace freevsa::replication
