// Connection: framing on the socket - reading PDUs (with digests) and writing them in batches -
// plus keep-alive and closing.
#include <cstring>

#include "target/connection_internal.h"
#include "util/crc32c.h"
#include "util/log.h"

namespace freevsa::target {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// RFC 7143 lets login PDUs be 8192 bytes; allow headroom for initiators that send more keys.
constexpr std::uint32_t kMaxLoginDataLength = 65536;
constexpr std::size_t kMaxPdusPerWrite = 64;
const std::array<std::uint8_t, 4> kZeroPad{};

std::array<std::uint8_t, 4> digest_bytes(std::uint32_t crc) {
  // The digest goes on the wire in little-endian order (RFC 7143 13.1 and the B.4 vectors).
  return {static_cast<std::uint8_t>(crc), static_cast<std::uint8_t>(crc >> 8), static_cast<std::uint8_t>(crc >> 16),
          static_cast<std::uint8_t>(crc >> 24)};
}

std::uint32_t data_crc(const std::uint8_t* data, std::uint32_t length) {
  std::uint32_t crc = util::crc32c_extend(0, data, length);
  return util::crc32c_extend(crc, kZeroPad.data(), pad4(length));
}
}  // namespace

Connection::Connection(asio::ip::tcp::socket socket, ServerContext& server, ConnectionLimiter::Ticket admission)
    : socket_(std::move(socket)),
      server_(server),
      admission_(std::move(admission)),
      data_out_budget_(std::make_shared<DataOutBudget>(server.config.resources.data_out_bytes_per_connection)),
      keepalive_timer_(socket_.get_executor()) {
  error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  peer_ = ec ? std::string("unknown") : remote.address().to_string() + ":" + std::to_string(remote.port());
  auto local = socket_.local_endpoint(ec);
  local_address_ = ec ? std::string() : local.address().to_string() + ":" + std::to_string(local.port());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
}

Connection::~Connection() = default;

void Connection::start() {
  auto self = shared_from_this();
  asio::dispatch(socket_.get_executor(), [self] {
    self->login_started_ = std::chrono::steady_clock::now();
    self->last_receive_ = self->login_started_;
    // The callback must not own the connection: the negotiator lives inside it.
    SessionTable& sessions = self->server_.sessions;
    self->negotiator_ = std::make_unique<LoginNegotiator>(self->server_.config,
                                                          [&sessions] { return sessions.allocate_tsih(); });
    self->arm_timers();
    self->read_header();
  });
}

void Connection::close(std::string reason) {
  auto self = shared_from_this();
  asio::post(socket_.get_executor(), [self, reason = std::move(reason)] { self->close_now(reason); });
}

void Connection::request_logout(std::chrono::seconds grace) {
  auto self = shared_from_this();
  asio::post(socket_.get_executor(), [self, grace] {
    if (self->phase_ != Phase::FullFeature) {
      self->close_now("target shutting down");
      return;
    }
    OutPdu pdu;
    pdu.bhs.set_opcode(Opcode::AsyncMessage);
    pdu.bhs.set_flags(0x80);
    pdu.bhs.set_initiator_task_tag(kReservedTag);
    self->stamp(pdu.bhs, true);
    pdu.bhs.bytes[36] = 1;  // AsyncEvent: target requests logout
    pdu.bhs.set_u16(42, static_cast<std::uint16_t>(grace.count()));  // Parameter3: time to logout
    self->send(std::move(pdu));
    // The initiator still sends its Logout Request and waits for the answer; only a connection
    // that has not logged out when the time is up is closed (on_keepalive_timer).
    self->logout_deadline_ = std::chrono::steady_clock::now() + grace;
  });
}

// ---------------------------------------------------------------- reading

void Connection::read_header() {
  if (phase_ == Phase::Closed) return;
  auto self = shared_from_this();
  asio::async_read(socket_, asio::buffer(incoming_.bhs.bytes),
                   [self](const error_code& ec, std::size_t) { self->on_header(ec); });
}

void Connection::on_header(const error_code& ec) {
  if (ec) {
    close_now(ec == asio::error::eof ? "initiator closed the connection" : "read failed: " + ec.message());
    return;
  }
  last_receive_ = std::chrono::steady_clock::now();
  const Bhs& bhs = incoming_.bhs;
  const bool full_feature = phase_ != Phase::Login;
  const std::uint32_t length = bhs.data_segment_length();
  const std::uint32_t limit =
      full_feature ? login_.connection.max_recv_data_segment_length : kMaxLoginDataLength;
  if (length > limit) {
    util::log_warn("{}: PDU opcode 0x{:02x} carries {} bytes of data, more than the {} negotiated; closing", peer_,
                   static_cast<unsigned>(bhs.opcode()), length, limit);
    close_now("data segment too long");
    return;
  }
  if (!full_feature && bhs.opcode() != Opcode::LoginRequest) {
    util::log_warn("{}: opcode 0x{:02x} before login completed; closing", peer_, static_cast<unsigned>(bhs.opcode()));
    close_now("protocol error during login");
    return;
  }
  header_tail_.assign(bhs.total_ahs_length() * 4u + (full_feature && login_.connection.header_digest ? 4u : 0u), 0);
  read_rest();
}

// Picks where the data segment is read to: straight into a task's buffer for Data-Out and for a
// write command's immediate data, so write data is never copied on its way to the disk.
std::uint8_t* Connection::data_destination(std::uint32_t length) {
  const Bhs& bhs = incoming_.bhs;
  data_out_task_.reset();
  incoming_grant_.reset();
  incoming_.data_length = length;
  if (length == 0) return nullptr;
  if (bhs.opcode() == Opcode::DataOut && phase_ != Phase::Login) {
    auto it = tasks_.find(bhs.initiator_task_tag());
    const std::uint32_t offset = bhs.u32(40);
    // Never into the buffer of a command a worker is executing: that data is no longer ours.
    if (it != tasks_.end() && it->second->writes && !it->second->executing && offset <= it->second->expected_length &&
        length <= it->second->expected_length - offset) {
      data_out_task_ = it->second;
      return data_out_task_->task.data_out.data() + offset;
    }
  } else if (bhs.opcode() == Opcode::ScsiCommand && (bhs.flags() & scsi_flags::kWrite) != 0) {
    const std::uint32_t expected = bhs.u32(20);
    // Without a grant the command is answered TASK SET FULL, and its data is read aside below.
    if (expected <= kMaxTransferBytes && tasks_.size() < kMaxTasksPerConnection) {
      incoming_grant_ = take_data_out(expected);
    }
    if (incoming_grant_) {
      incoming_.data = util::AlignedBuffer(std::max(expected, length));
      return incoming_.data.data();
    }
  }
  if (bhs.opcode() == Opcode::DataOut) {
    // Data for no task we know, or out of bounds: read it aside so the stream stays in step.
    if (scratch_.size() < length) scratch_ = util::AlignedBuffer(length);
    incoming_.data_length = 0;
    return scratch_.data();
  }
  incoming_.data = util::AlignedBuffer(length);
  return incoming_.data.data();
}

void Connection::read_rest() {
  const std::uint32_t length = incoming_.bhs.data_segment_length();
  std::uint8_t* target = data_destination(length);
  data_target_ = target;
  const bool data_digest = phase_ != Phase::Login && login_.connection.data_digest && length > 0;
  const std::size_t trailer = pad4(length) + (data_digest ? 4u : 0u);
  std::array<asio::mutable_buffer, 3> buffers{asio::buffer(header_tail_), asio::mutable_buffer(target, length),
                                              asio::buffer(data_trailer_.data(), trailer)};
  if (header_tail_.empty() && length == 0 && trailer == 0) {
    on_rest(error_code());
    return;
  }
  auto self = shared_from_this();
  asio::async_read(socket_, buffers, [self](const error_code& ec, std::size_t) { self->on_rest(ec); });
}

void Connection::on_rest(const error_code& ec) {
  if (ec) {
    close_now("read failed: " + ec.message());
    return;
  }
  const Bhs& bhs = incoming_.bhs;
  const bool full_feature = phase_ != Phase::Login;
  const std::size_t ahs_length = bhs.total_ahs_length() * 4u;
  incoming_.ahs.assign(header_tail_.begin(), header_tail_.begin() + static_cast<std::ptrdiff_t>(ahs_length));
  if (full_feature && login_.connection.header_digest) {
    std::uint32_t crc = util::crc32c_extend(0, bhs.bytes.data(), bhs.bytes.size());
    crc = util::crc32c_extend(crc, incoming_.ahs.data(), incoming_.ahs.size());
    if (std::memcmp(digest_bytes(crc).data(), header_tail_.data() + ahs_length, 4) != 0) {
      // At ErrorRecoveryLevel 0 a header we cannot trust ends the connection (RFC 7143 7.8).
      util::log_warn("{}: header digest error; closing", peer_);
      close_now("header digest error");
      return;
    }
  }
  const std::uint32_t length = bhs.data_segment_length();
  if (full_feature && login_.connection.data_digest && length > 0) {
    const std::uint32_t crc = data_crc(data_target_, length);
    if (std::memcmp(digest_bytes(crc).data(), data_trailer_.data() + pad4(length), 4) != 0) {
      util::log_warn("{}: data digest error on opcode 0x{:02x} ITT 0x{:08x}", peer_, static_cast<unsigned>(bhs.opcode()),
                     bhs.initiator_task_tag());
      send_reject(bhs, reject_reason::kDataDigestError);
      // The command the data belonged to cannot complete correctly: fail it.
      auto it = tasks_.find(bhs.initiator_task_tag());
      if (bhs.opcode() == Opcode::DataOut && it != tasks_.end() && !it->second->executing) {
        // ABORTED COMMAND / PROTOCOL SERVICE CRC ERROR
        send_check_condition(it->first, it->second->expected_length, fixed_sense(0x0b, 0x47, 0x05));
        finish_task(it->first);
      }
      read_header();
      return;
    }
  }
  on_pdu();
  read_header();
}

void Connection::on_pdu() {
  if (phase_ == Phase::Closed) return;
  if (phase_ == Phase::Login) {
    handle_login(incoming_);
  } else {
    dispatch(incoming_);
  }
  incoming_ = Pdu();
  data_out_task_.reset();
  incoming_grant_.reset();
}

// ---------------------------------------------------------------- keep-alive

void Connection::arm_timers() {
  auto self = shared_from_this();
  keepalive_timer_.expires_after(std::chrono::seconds(1));
  keepalive_timer_.async_wait([self](const error_code& ec) {
    if (!ec) self->on_keepalive_timer();
  });
}

void Connection::on_keepalive_timer() {
  if (phase_ == Phase::Closed) return;
  const auto now = std::chrono::steady_clock::now();
  const auto& config = server_.config;
  if (logout_deadline_ && now >= *logout_deadline_) {
    close_now("did not log out when asked");
    return;
  }
  if (phase_ == Phase::Login) {
    if (now - login_started_ >= std::chrono::seconds(config.resources.login_timeout_seconds)) {
      close_now("login did not complete in time");
      return;
    }
    arm_timers();
    return;
  }
  expire_stalled_writes(now);
  if (phase_ == Phase::Closed) return;
  if (ping_ttt_ != kReservedTag) {
    if (now - ping_sent_ > std::chrono::seconds(config.nop_timeout_seconds)) {
      util::log_warn("{}: no answer to NOP-In for {} s; dropping the connection", peer_, config.nop_timeout_seconds);
      close_now("keep-alive timeout");
      return;
    }
  } else if (config.nop_interval_seconds > 0 && phase_ == Phase::FullFeature &&
             now - last_receive_ >= std::chrono::seconds(config.nop_interval_seconds)) {
    ping_ttt_ = next_ttt_++;
    if (next_ttt_ == kReservedTag) next_ttt_ = 1;
    ping_sent_ = now;
    OutPdu ping;
    ping.bhs.set_opcode(Opcode::NopIn);
    ping.bhs.set_flags(0x80);
    ping.bhs.set_initiator_task_tag(kReservedTag);
    ping.bhs.set_u32(field::kTargetTransferTag, ping_ttt_);
    stamp(ping.bhs, false);  // a ping does not consume a StatSN
    send(std::move(ping));
  }
  arm_timers();
}

// ---------------------------------------------------------------- writing

void Connection::stamp(Bhs& bhs, bool advance_stat_sn) {
  bhs.set_u32(field::kStatSN, stat_sn_);
  if (advance_stat_sn) ++stat_sn_;
  bhs.set_u32(field::kExpCmdSN, exp_cmd_sn_);
  bhs.set_u32(field::kMaxCmdSN, max_cmd_sn());
}

void Connection::send(OutPdu pdu) {
  if (phase_ == Phase::Closed) return;
  pdu.bhs.set_data_segment_length(pdu.data_length);
  const bool full_feature = phase_ != Phase::Login;
  pdu.with_header_digest = full_feature && login_.connection.header_digest;
  pdu.with_data_digest = full_feature && login_.connection.data_digest && pdu.data_length > 0;
  if (pdu.with_header_digest)
    pdu.header_digest = digest_bytes(util::crc32c_extend(0, pdu.bhs.bytes.data(), pdu.bhs.bytes.size()));
  if (pdu.with_data_digest) pdu.data_digest = digest_bytes(data_crc(pdu.data, pdu.data_length));
  out_queue_.push_back(std::move(pdu));
  if (writing_ == 0) write_queued();
}

void Connection::write_queued() {
  if (out_queue_.empty() || phase_ == Phase::Closed) return;
  write_buffers_.clear();
  writing_ = std::min(out_queue_.size(), kMaxPdusPerWrite);
  for (std::size_t i = 0; i < writing_; ++i) {
    const OutPdu& pdu = out_queue_[i];
    write_buffers_.emplace_back(pdu.bhs.bytes.data(), pdu.bhs.bytes.size());
    if (pdu.with_header_digest) write_buffers_.emplace_back(pdu.header_digest.data(), 4);
    if (pdu.data_length > 0) {
      write_buffers_.emplace_back(pdu.data, pdu.data_length);
      if (pad4(pdu.data_length) != 0) write_buffers_.emplace_back(kZeroPad.data(), pad4(pdu.data_length));
      if (pdu.with_data_digest) write_buffers_.emplace_back(pdu.data_digest.data(), 4);
    }
  }
  auto self = shared_from_this();
  asio::async_write(socket_, write_buffers_,
                    [self](const error_code& ec, std::size_t count) { self->on_written(ec, count); });
}

void Connection::on_written(const error_code& ec, std::size_t) {
  if (phase_ == Phase::Closed) return;
  if (ec) {
    close_now("write failed: " + ec.message());
    return;
  }
  out_queue_.erase(out_queue_.begin(), out_queue_.begin() + static_cast<std::ptrdiff_t>(writing_));
  writing_ = 0;
  if (!out_queue_.empty()) {
    write_queued();
  } else if (close_after_write_) {
    close_now("logged out");
  }
}

void Connection::send_reject(const Bhs& rejected, std::uint8_t reason) {
  OutPdu pdu;
  pdu.bhs.set_opcode(Opcode::Reject);
  pdu.bhs.set_flags(0x80);
  pdu.bhs.bytes[2] = reason;
  pdu.bhs.set_initiator_task_tag(kReservedTag);
  stamp(pdu.bhs, true);
  pdu.owned = util::AlignedBuffer(kBhsLength);
  std::memcpy(pdu.owned.data(), rejected.bytes.data(), kBhsLength);
  pdu.data = pdu.owned.data();
  pdu.data_length = kBhsLength;
  send(std::move(pdu));
}

void Connection::close_now(const std::string& reason) {
  if (phase_ == Phase::Closed) return;
  const bool was_logged_in = phase_ != Phase::Login;
  phase_ = Phase::Closed;
  if (was_logged_in) {
    util::log_info("{}: connection closed ({}), initiator {}", peer_, reason, login_.initiator_name);
  } else {
    util::log_debug("{}: connection closed during login ({})", peer_, reason);
  }
  error_code ignored;
  keepalive_timer_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  // Tasks still on a worker keep themselves (and their Data-Out grants) alive and are dropped
  // when they come back; the I_T nexus ends with the last of them.
  for (auto& [itt, task] : tasks_) task->aborted = true;
  tasks_.clear();
  r2t_owner_.clear();
  held_.clear();
  tmfs_.clear();
  incoming_grant_.reset();
  // out_queue_ stays: a cancelled write may still name its buffers until its handler ran.
  if (executing_ == 0) end_nexus();
  admission_.reset();
  std::lock_guard lock(server_.connections_mutex);
  server_.connections.erase(weak_from_this());
}

void Connection::end_nexus() {
  if (!registered_) return;
  registered_ = false;
  // False when a reinstating session took the key over: its I_T nexus lives on.
  const bool nexus_ended = server_.sessions.unregister_session(session_key_, tsih_);
  if (!nexus_ended || login_.target == nullptr) return;
  const scsi::LunMap& luns = *login_.target->luns;
  luns.nexus_lost(initiator_port_);
  if (util::log_level() == util::LogLevel::Debug) {
    util::log_debug("{}: I_T nexus {} ended; the LUNs of {} keep state for {} initiator ports", peer_,
                    initiator_port_, login_.target->iqn, luns.initiator_ports_with_state());
  }
}

}  // namespace freevsa::target
