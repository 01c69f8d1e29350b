// The link lifecycle of a Replicator: connecting, the handshake, the sync decision, role
// changes and status. Data replication is in replicator_data.cpp, resync and verify in
// replicator_sync.cpp.
#include "replication/replicator.h"

#include <fmt/format.h>

#include <cstring>

#include "replication/connect_decision.h"
#include "replication/replicator_internal.h"
#include "replication/replicator_sync_state.h"
#include "replication/settings_difference.h"
#include "util/log.h"

namespace freevsa::replication {

namespace asio = boost::asio;
using asio::ip::tcp;

Replicator::Replicator(asio::io_context& io, util::WorkerPool& workers, ReplicaSettings settings, Volume& data,
                       MetadataStore& metadata)
    : io_(io),
      workers_(workers),
      settings_(std::move(settings)),
      data_(data),
      metadata_(metadata),
      dial_timer_(io),
      sync_timer_(io),
      verify_timer_(io),
      tick_timer_(io),
      flush_timer_(io),
      unconfirmed_(settings_.epoch) {
  volume_ = std::make_unique<ReplicatedVolume>(data_, *this, *this, settings_.protocol);
  next_request_id_ = settings_.node_id < settings_.peer_id ? 1 : 2;
  volume_->set_activity_log(&metadata_.activity_log());
  // ALUA: each node is a target port group, numbered by node id.
  volume_->set_port_groups(static_cast<std::uint16_t>(settings_.node_id), static_cast<std::uint16_t>(settings_.peer_id));
  // Runs on the worker that met the error; the link's state lives on the io thread. The io
  // thread stops before the Replicator goes away.
  volume_->set_detach_handler([this](int error, const char* operation) {
    asio::post(io_, [this, error, operation = std::string(operation)] { on_local_disk_failed(error, operation); });
  });
  volume_->load_stored_reservations(metadata_.superblock().reservations);
  volume_->set_local_up_to_date(metadata_.superblock().disk_state == DiskState::UpToDate);
  volume_->set_reservation_persister([this](std::span<const std::uint8_t> record) {
    return update_metadata([record](Superblock& sb) { sb.reservations.assign(record.begin(), record.end()); });
  });
}

Replicator::~Replicator() = default;

DiskState Replicator::local_disk_state() const {
  return volume_->detached() ? DiskState::Diskless : metadata_.superblock().disk_state;
}

void Replicator::set_peer_disk(peer::DiskState state) {
  peer_disk_ = state;
  peer_up_to_date_.store(state == peer::DiskState::UpToDate);
}

void Replicator::on_local_disk_failed(int error, const std::string& operation) {
  const bool primary = volume_->role() == Role::Primary;
  util::log_error("{}: the local disk failed ({}: {}); it is detached{}", settings_.volume_name, operation,
                  std::strerror(error),
                  primary ? fmt::format(": {}'s disk serves this volume's I/O from now on", settings_.peer_name)
                          : fmt::format(": this replica no longer follows {}", settings_.peer_name));
  note_error(fmt::format("local disk failed ({}: {})", operation, std::strerror(error)));
  // Best effort: the metadata may live on the disk that just failed.
  update_metadata([](Superblock& sb) { sb.disk_state = DiskState::Diskless; });
  send_state("local disk failed");
}

void Replicator::set_initial_role(Role role, std::string primary_when_peer_met) {
  volume_->set_role(role);
  resume_primary_ = !primary_when_peer_met.empty() && role == Role::Secondary;
  resume_reason_ = std::move(primary_when_peer_met);
  if (role == Role::Primary) become_primary();
}

void Replicator::start() {
  // Writes wait for an activity-log slot: a flush of the peer frees the extents it holds. (A
  // weak reference: the metadata may outlive this Replicator.)
  metadata_.activity_log().set_starved_handler([weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      asio::post(self->io_, [self] {
        if (!self->unconfirmed_.empty()) self->request_peer_flush(nullptr);
      });
    }
  });
  asio::post(io_, [self = shared_from_this()] {
    self->update_metadata([](Superblock& sb) { sb.set(metadata_flag::kInService, true); });
    self->phase_ = Phase::Connecting;
    if (self->settings_.node_id < self->settings_.peer_id) self->dial();
    self->arm_tick();
  });
}

void Replicator::arm_tick() {
  tick_timer_.expires_after(std::chrono::seconds(1));
  tick_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->phase_ == Phase::Stopped) return;
    self->on_tick();
    self->arm_tick();
  });
}

void Replicator::on_tick() {
  // A peer whose disk hangs still answers pings: bound how long a request may wait.
  const auto limit = std::max<std::chrono::milliseconds>(std::chrono::seconds(10), 5 * settings_.keepalive.timeout);
  if (!pending_.empty() && std::chrono::steady_clock::now() - pending_.begin()->second.sent_at > limit) {
    drop_link(fmt::format("{} did not answer a request for {} s (its disk may hang)", settings_.peer_name,
                          std::chrono::duration_cast<std::chrono::seconds>(limit).count()),
              peer::DisconnectCode::Timeout);
  }
  // Bits set while the link was up (a write that raced the bitmap exchange, a failed write):
  // the primary sends them to the peer, which fetches those blocks.
  if (phase_ == Phase::Up && bitmap_received_ && volume_->role() == Role::Primary && sync_role_ == SyncRole::None &&
      !verify_ && peer_disk_ != peer::DiskState::Diskless && metadata_.bitmap().count_dirty_bits() > 0) {
    start_source_and_share_bitmap();
  }
  if (volume_->detached()) return;  // no disk left to write the bitmap to
  // The bitmap reaches the disk lazily (the activity log covers what it has not yet). A sync
  // target makes the data it fetched durable first: a cleared bit on disk must never stand for
  // data that a power loss could still take.
  const bool data_first = sync_role_ == SyncRole::Target;
  workers_.post([self = shared_from_this(), data_first] {
    int error = data_first ? self->data_.flush() : 0;
    if (error == 0) error = self->metadata_.bitmap_store().flush_dirty_pages();
    if (error != 0) util::log_error("{}: writing the dirty bitmap failed: {}", self->settings_.volume_name, std::strerror(error));
  });
}

// ---- connecting

void Replicator::dial() {
  if (phase_ != Phase::Connecting || link_) return;
  auto socket = std::make_shared<tcp::socket>(io_);
  boost::system::error_code ec;
  tcp::endpoint endpoint(asio::ip::make_address(settings_.peer_address, ec), settings_.peer_port);
  if (ec) {
    warn_once(fmt::format("bad peer address {}: {}", settings_.peer_address, ec.message()));
    return;
  }
  socket->async_connect(endpoint, [self = shared_from_this(), socket](boost::system::error_code error) {
    if (self->phase_ != Phase::Connecting || self->link_) return;
    if (error) {
      self->warn_once(fmt::format("cannot connect to {} at {}:{}: {}", self->settings_.peer_name,
                                   self->settings_.peer_address, self->settings_.peer_port, error.message()));
      self->schedule_dial();
      return;
    }
    auto connection = std::make_shared<PeerConnection>(
        std::move(*socket), self->settings_.keepalive, self->settings_.tls,
        peer::LinkHandshake(self->credentials(), peer::LinkSide::Dialler, self->settings_.peer_id));
    self->begin_handshake(connection);
    connection->start([weak = std::weak_ptr<Replicator>(self), from = std::weak_ptr<PeerConnection>(connection)](
                          const peer::FrameHeader& h, const peer::Message& m) {
                        if (auto me = weak.lock()) me->on_message_from(from, h, m);
                      },
                      [weak = std::weak_ptr<Replicator>(self), connection](const std::string& reason) {
                        if (auto me = weak.lock()) me->on_closed(connection, reason);
                      });
    self->link_->send(self->make_hello());
  });
}

void Replicator::schedule_dial() {
  if (phase_ != Phase::Connecting || settings_.node_id > settings_.peer_id) return;
  dial_timer_.expires_after(backoff_);
  backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, std::chrono::seconds(5));
  dial_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->dial();
  });
}

void Replicator::adopt(std::shared_ptr<PeerConnection> connection, const peer::Hello& hello) {
  if (phase_ == Phase::Stopped) {
    connection->send(peer::Disconnect{peer::DisconnectCode::Shutdown, "node is stopping"});
    connection->close("node is stopping", true);
    return;
  }
  if (link_) {
    // The peer dialled again: it lost the old connection (restart, network) before we noticed.
    util::log_info("{}: {} connected again; dropping the previous connection", settings_.volume_name,
                   settings_.peer_name);
    drop_link("replaced by a new connection from the peer", peer::DisconnectCode::Unspecified);
  }
  phase_ = Phase::Connecting;
  begin_handshake(connection);
  connection->set_handlers(
      [weak = weak_from_this(), from = std::weak_ptr<PeerConnection>(connection)](const peer::FrameHeader& h,
                                                                                 const peer::Message& m) {
        if (auto me = weak.lock()) me->on_message_from(from, h, m);
      },
      [weak = weak_from_this(), connection](const std::string& reason) {
        if (auto me = weak.lock()) me->on_closed(connection, reason);
      });
  link_->send(make_hello());
  on_hello(hello);
}

peer::LinkCredentials Replicator::credentials() const {
  return peer::LinkCredentials{settings_.cluster_name, settings_.node_id, settings_.node_name, settings_.secret,
                               {peer::KnownNode{settings_.peer_id, settings_.peer_name}}};
}

void Replicator::begin_handshake(std::shared_ptr<PeerConnection> connection) {
  link_ = std::move(connection);
  phase_ = Phase::Handshake;
  peer_hello_.reset();
  awaiting_settings_ = false;
  bitmap_sent_ = false;
  bitmap_received_ = false;
}

peer::Hello Replicator::make_hello() const {
  const Superblock sb = metadata_.superblock();
  peer::Hello hello;
  hello.node_id = settings_.node_id;
  hello.node_name = settings_.node_name;
  hello.cluster_name = settings_.cluster_name;
  hello.volume_name = settings_.volume_name;
  hello.volume_uuid = sb.volume_uuid;
  hello.size_bytes = data_.size_bytes();
  hello.block_size = data_.block_size();
  hello.disk_state = to_wire(local_disk_state());
  hello.role = to_wire(volume_->role());
  hello.generations = sb.generations;
  hello.config_hash = settings_.config_hash;
  hello.feature_flags = peer::kFeaturePayloadCrc | peer::kFeatureDiscard | peer::kFeatureChecksumResync |
                        peer::kFeatureOnlineVerify;
  if (resume_primary_ && volume_->role() != Role::Primary) hello.feature_flags |= peer::kFeaturePrimaryWhenMet;
  return hello;
}

// ---- handshake

void Replicator::on_message_from(const std::weak_ptr<PeerConnection>& from, const peer::FrameHeader& header,
                                 const peer::Message& message) {
  // A connection being closed may still deliver what it had read: only the current one counts.
  if (from.lock() != link_) return;
  on_message(header, message);
}

void Replicator::on_message(const peer::FrameHeader& header, const peer::Message& message) {
  if (!link_) return;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, peer::Hello>) {
          on_hello(m);
        } else if constexpr (std::is_same_v<T, peer::SharedSettings>) {
          on_shared_settings(m);
        } else if constexpr (std::is_same_v<T, peer::Disconnect>) {
          // link_down logs it (once per new reason while the link is not up).
          drop_link(fmt::format("{} disconnected: {}", settings_.peer_name, m.reason), std::nullopt);
        } else if (phase_ != Phase::Up) {
          drop_link(fmt::format("{} sent {} before the handshake finished", settings_.peer_name,
                                peer::to_string(peer::type_of(message))),
                    peer::DisconnectCode::ProtocolError);
        } else if constexpr (std::is_same_v<T, peer::Write>) {
          on_write(header, m);
        } else if constexpr (std::is_same_v<T, peer::WriteAck>) {
          complete_request(header.request_id, m.status, m.flags);
        } else if constexpr (std::is_same_v<T, peer::Discard>) {
          on_discard(header, m);
        } else if constexpr (std::is_same_v<T, peer::Flush>) {
          on_flush(header);
        } else if constexpr (std::is_same_v<T, peer::Read>) {
          on_read(header, m);
        } else if constexpr (std::is_same_v<T, peer::ReadData>) {
          on_read_data(header, m);
        } else if constexpr (std::is_same_v<T, peer::FlushAck>) {
          complete_request(header.request_id, m.status);
        } else if constexpr (std::is_same_v<T, peer::StateChange>) {
          on_state_change(m);
        } else if constexpr (std::is_same_v<T, peer::BitmapChunk>) {
          on_bitmap_chunk(m);
        } else if constexpr (std::is_same_v<T, peer::ResyncRequest>) {
          on_resync_request(header, m);
        } else if constexpr (std::is_same_v<T, peer::ResyncData>) {
          on_resync_data(header, m);
        } else if constexpr (std::is_same_v<T, peer::ChecksumRequest>) {
          on_checksum_request(header, m);
        } else if constexpr (std::is_same_v<T, peer::ChecksumReply>) {
          on_checksum_reply(header, m);
        } else if constexpr (std::is_same_v<T, peer::VerifyDone>) {
          on_verify_done(m);
        } else if constexpr (std::is_same_v<T, peer::Reservations>) {
          on_reservations(header, m);
        } else if constexpr (std::is_same_v<T, peer::ReservationsAck>) {
          on_reservations_ack(header, m);
        } else if constexpr (std::is_same_v<T, peer::ReservationCommand>) {
          on_reservation_command(header, m);
        } else if constexpr (std::is_same_v<T, peer::ReservationAnswer>) {
          on_reservation_answer(header, m);
        } else if constexpr (std::is_same_v<T, peer::Barrier>) {
          on_barrier(header, m);
        } else if constexpr (std::is_same_v<T, peer::BarrierAck>) {
          complete_request(header.request_id, 0);
        }
      },
      message);
}

void Replicator::on_hello(const peer::Hello& hello) {
  if (phase_ != Phase::Handshake || peer_hello_) {
    drop_link("unexpected Hello", peer::DisconnectCode::ProtocolError);
    return;
  }
  // The connection authenticated the peer's node; its Hello must speak for that node.
  std::string refusal;
  if (hello.cluster_name != settings_.cluster_name) {
    refusal = fmt::format("the peer belongs to cluster '{}', this node to '{}'", hello.cluster_name,
                          settings_.cluster_name);
  } else if (hello.volume_name != settings_.volume_name) {
    refusal = fmt::format("the peer offered volume '{}'", hello.volume_name);
  } else if (hello.node_id != settings_.peer_id || hello.node_name != settings_.peer_name ||
             hello.node_id != link_->peer().id) {
    refusal = fmt::format("the peer is node '{}' (id {}), but the configuration expects '{}' (id {}) here",
                          hello.node_name, hello.node_id, settings_.peer_name, settings_.peer_id);
  } else if (link_->tls() && settings_.tls_certificates && !link_->peer_certificate_names(settings_.peer_name)) {
    refusal = fmt::format("the peer's TLS certificate is not issued to '{}' (its subjectAltName or common name must "
                          "be the node's name)",
                          settings_.peer_name);
  } else if (hello.protocol_max < peer::kProtocolVersionMin || hello.protocol_min > peer::kProtocolVersionMax) {
    refusal = fmt::format("no common protocol version (peer {}..{}, this node {}..{})", hello.protocol_min,
                          hello.protocol_max, peer::kProtocolVersionMin, peer::kProtocolVersionMax);
  }
  if (!refusal.empty()) {
    refuse(refusal, peer::DisconnectCode::ConfigMismatch);
    return;
  }
  peer_hello_ = hello;
  compare_with_peer();
}

void Replicator::compare_with_peer() {
  const peer::Hello& hello = *peer_hello_;
  const Superblock sb = metadata_.superblock();
  if (hello.size_bytes != data_.size_bytes() || hello.block_size != data_.block_size()) {
    refuse(fmt::format("size mismatch: this node's replica holds {} bytes in {}-byte blocks, {}'s holds {} bytes "
                       "in {}-byte blocks",
                       data_.size_bytes(), data_.block_size(), settings_.peer_name, hello.size_bytes,
                       hello.block_size),
           peer::DisconnectCode::ConfigMismatch);
    return;
  }
  if (hello.volume_uuid != sb.volume_uuid) {
    refuse(fmt::format("volume UUID mismatch: this node's metadata says {}, {}'s says {}: the replicas belong to "
                       "different volumes (recreate one side's metadata with `freevsa create-md` to make it a new "
                       "replica of the other)",
                       to_string(sb.volume_uuid), settings_.peer_name, to_string(hello.volume_uuid)),
           peer::DisconnectCode::Unrelated);
    return;
  }
  // Last: size and UUID differences also change the hash, and their own messages say more.
  if (hello.config_hash != settings_.config_hash) {
    // Both sides see the mismatch: each shows the other what it hashed, then refuses naming
    // the settings that differ (on_shared_settings), or without them if the peer stays silent.
    awaiting_settings_ = true;
    if (settings_.shared_settings.empty()) {
      refuse_config_mismatch("");
      return;
    }
    auto text = std::make_shared<const std::string>(settings_.shared_settings);
    link_->send(peer::SharedSettings{{reinterpret_cast<const std::uint8_t*>(text->data()), text->size()}});
    link_->hold_until_sent(text);
    sync_timer_.expires_after(std::chrono::seconds(3));
    sync_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !self->awaiting_settings_) return;
      self->refuse_config_mismatch("");
    });
    return;
  }
  peer_role_ = hello.role;
  volume_->set_peer_primary(peer_role_ == peer::Role::Primary);
  set_peer_disk(hello.disk_state);
  peer_generations_ = hello.generations;
  link_->set_payload_crc((hello.feature_flags & peer::kFeaturePayloadCrc) != 0);

  const ConnectDecision decision =
      decide_connect(ConnectSide{sb.generations, local_disk_state(), volume_->role() == Role::Primary},
                     ConnectSide{hello.generations, to_disk_state(peer_disk_), peer_role_ == peer::Role::Primary},
                     settings_.initial_primary);
  if (!decision.refusal.empty()) {
    refuse(decision.refusal, decision.split_brain ? peer::DisconnectCode::SplitBrain : peer::DisconnectCode::Unrelated);
    return;
  }
  decision_ = decision.sync;
  if (decision_ == SyncDecision::FullSyncAsSource && sb.disk_state != DiskState::UpToDate) {
    // Two new replicas, neither complete: the initial primary's data is the volume's.
    update_metadata([](Superblock& s) { s.disk_state = DiskState::UpToDate; });
  }
  if (peer_role_ == peer::Role::Primary) resume_primary_ = false;
  if (resume_primary_ && (hello.feature_flags & peer::kFeaturePrimaryWhenMet) != 0 &&
      settings_.node_id > settings_.peer_id) {
    // Both were primary at some point while apart and would take the role now: exactly one may,
    // the one with the lower node id (both sides decide alike).
    util::log_info("{}: {} would become primary on meeting too; it does (lower node id), this node stays secondary",
                   settings_.volume_name, settings_.peer_name);
    resume_primary_ = false;
  }
  phase_ = Phase::Up;
  backoff_ = std::chrono::milliseconds(200);
  last_error_.clear();
  util::log_info("{}: connected to {} ({}{}): {}; peer is {} with a {} disk", settings_.volume_name,
                 settings_.peer_name, link_->remote(), link_->tls() ? ", " + link_->tls_version() : "",
                 to_string(decision_), peer_role_ == peer::Role::Primary ? "primary" : "secondary",
                 to_string(to_disk_state(peer_disk_)));
  // A peer that this node resyncs is behind until the resync finished (its StateChange says so).
  if (is_sync_source(decision_)) set_peer_disk(peer::DiskState::Outdated);
  // The peer takes writes from now on: whatever it misses until the bitmaps are merged is in
  // one of the two bitmaps.
  replicating_.store(peer_disk_ != peer::DiskState::Diskless);
  send_bitmap();
  if (volume_->role() == Role::Primary) push_reservations();
}

void Replicator::on_shared_settings(const peer::SharedSettings& settings) {
  if (!awaiting_settings_) {
    drop_link("unexpected SharedSettings", peer::DisconnectCode::ProtocolError);
    return;
  }
  const std::string_view text(reinterpret_cast<const char*>(settings.text.data()), settings.text.size());
  refuse_config_mismatch(describe_settings_difference(settings_.shared_settings, text, settings_.peer_name));
}

void Replicator::refuse_config_mismatch(const std::string& difference) {
  awaiting_settings_ = false;
  sync_timer_.cancel();
  refuse(fmt::format("the configuration differs between this node and {}{}; the nodes' copies of the configuration "
                     "file must agree on these settings (configuration hash {} here, {} there)",
                     settings_.peer_name, difference.empty() ? "" : ": " + difference, hex(settings_.config_hash),
                     hex(peer_hello_->config_hash)),
         peer::DisconnectCode::ConfigMismatch);
}

void Replicator::refuse(const std::string& reason, peer::DisconnectCode code) {
  util::log_error("{}: refusing {}: {}", settings_.volume_name, settings_.peer_name, reason);
  note_error(reason);
  drop_link(reason, code);
}

void Replicator::drop_link(const std::string& reason, std::optional<peer::DisconnectCode> tell_peer) {
  if (!link_) return;
  std::shared_ptr<PeerConnection> connection = link_;
  if (tell_peer) connection->send(peer::Disconnect{*tell_peer, reason.substr(0, peer::kMaxReasonLength)});
  // Queued writes borrow their data from requests that fail below: with any in flight, the
  // socket closes at once instead of flushing (the peer then just sees the connection end).
  const bool flush = pending_.empty();
  link_.reset();
  connection->close(reason, flush);  // its close handler finds no link of its own and does nothing
  link_down(reason);
}

void Replicator::on_closed(const std::shared_ptr<PeerConnection>& connection, const std::string& reason) {
  if (connection == link_) link_down(reason);
}

void Replicator::link_down(const std::string& reason) {
  const bool was_up = phase_ == Phase::Up;
  // First: whatever the peer acknowledged but never confirmed durable may be lost with it.
  mark_unconfirmed_out_of_sync();
  link_.reset();
  replicating_.store(false);
  volume_->set_peer_primary(false);  // unknown now: initiators are not sent there
  fail_pending(ECONNRESET);
  receive_order_.clear_waiting();
  reset_sync_state();
  if (was_up) {
    util::log_warn("{}: lost the connection to {}: {}", settings_.volume_name, settings_.peer_name, reason);
    if (volume_->role() == Role::Primary) {
      // The peer misses every write from now on; remember that its disk is behind.
      update_metadata([](Superblock& sb) { sb.set(metadata_flag::kPeerOutdated, true); });
    }
    set_peer_disk(peer::DiskState::Outdated);
    note_error(reason);
  } else if (phase_ != Phase::Stopped) {
    warn_once(reason);  // a handshake that failed, or was refused: reconnecting repeats it
  }
  if (phase_ == Phase::Stopped) return;
  phase_ = Phase::Connecting;
  schedule_dial();
}

bool Replicator::note_error(const std::string& error) {
  const bool changed = error != last_error_;
  last_error_ = error;
  return changed;
}

void Replicator::warn_once(const std::string& error) {
  // Reconnect attempts repeat the same failure every few seconds: it is logged when it changes.
  if (note_error(error)) util::log_warn("{}: {}", settings_.volume_name, error);
}

void Replicator::on_state_change(const peer::StateChange& change) {
  const bool peer_was_primary = peer_role_ == peer::Role::Primary;
  const peer::DiskState peer_disk_before = peer_disk_;
  peer_role_ = change.role;
  volume_->set_peer_primary(peer_role_ == peer::Role::Primary);
  set_peer_disk(change.disk_state);
  // A peer whose disk failed takes no more writes: they go into the bitmap from now on, and so
  // do those it acknowledged but did not confirm durable.
  if (peer_disk_ == peer::DiskState::Diskless) {
    replicating_.store(false);
    mark_unconfirmed_out_of_sync();
  }
  peer_generations_ = change.generations;
  if (peer_role_ == peer::Role::Primary && volume_->role() == Role::Primary) {
    // Never two primaries: the promotion checks make this unreachable; if it happens anyway,
    // stop replicating rather than let two writers meet.
    drop_link("both nodes are primary", peer::DisconnectCode::SplitBrain);
    return;
  }
  if (peer_was_primary != (peer_role_ == peer::Role::Primary)) {
    util::log_info("{}: {} is now {}{}", settings_.volume_name, settings_.peer_name,
                   peer_role_ == peer::Role::Primary ? "primary" : "secondary",
                   change.reason.empty() ? "" : " (" + change.reason + ")");
  }
  if (sync_role_ == SyncRole::Source && peer_disk_ == peer::DiskState::UpToDate &&
      peer_disk_before != peer::DiskState::UpToDate) {
    finish_sync_source();
  }
  if (peer_role_ == peer::Role::Secondary && peer_was_primary) maybe_resume_primary();
}

void Replicator::send_state(const std::string& reason) {
  if (!link_ || phase_ != Phase::Up) return;
  const Superblock sb = metadata_.superblock();
  link_->send(peer::StateChange{to_wire(volume_->role()), to_wire(local_disk_state()), sb.generations,
                                reason.substr(0, peer::kMaxReasonLength)});
}

int Replicator::update_metadata(const std::function<void(Superblock&)>& change) {
  const int error = metadata_.update_superblock(change);
  volume_->set_local_up_to_date(metadata_.superblock().disk_state == DiskState::UpToDate);
  if (error != 0) {
    util::log_error("{}: writing the metadata superblock failed: {}", settings_.volume_name, std::strerror(error));
  }
  return error;
}

// ---- roles

void Replicator::become_primary() {
  update_metadata([](Superblock& sb) {
    sb.set(metadata_flag::kWasPrimary, true);
    sb.set(metadata_flag::kCrashedPrimary, true);
    sb.set(metadata_flag::kPrimaryAtStop, false);
  });
  volume_->set_role(Role::Primary);
  resume_primary_ = false;
  if (phase_ == Phase::Up) push_reservations();
}

void Replicator::maybe_resume_primary() {
  if (!resume_primary_ || phase_ != Phase::Up || volume_->role() == Role::Primary) return;
  if (peer_role_ != peer::Role::Secondary) return;
  if (sync_role_ == SyncRole::Target || metadata_.superblock().disk_state != DiskState::UpToDate) return;
  util::log_info("{}: this node {} and {} is secondary: becoming primary", settings_.volume_name, resume_reason_,
                 settings_.peer_name);
  become_primary();
  send_state("primary on meeting its peer");
  if (metadata_.bitmap().count_dirty_bits() > 0) start_source_and_share_bitmap();
}

CommandResult Replicator::promote(bool force) {
  return on_io_thread([&]() -> CommandResult {
    if (volume_->role() == Role::Primary) return {true, 200, fmt::format("{} is already primary here", settings_.volume_name), ""};
    if (phase_ == Phase::Up && peer_role_ == peer::Role::Primary) {
      return {false, 409,
              fmt::format("refused: {} is primary on {}; demote it there first (two primaries would let the "
                          "replicas diverge)",
                          settings_.volume_name, settings_.peer_name),
              ""};
    }
    if (phase_ == Phase::Up && (!bitmap_received_ || sync_role_ == SyncRole::Target || is_sync_target(decision_)) && !force) {
      return {false, 409,
              fmt::format("refused: {} is still comparing its data with {} or fetching what it lacks; promote when "
                          "`status` shows both UpToDate (or add --force)",
                          settings_.volume_name, settings_.peer_name),
              ""};
    }
    if (receive_order_.pending() > 0) {
      return {false, 409,
              fmt::format("refused: writes from {} are still being applied here; try again in a moment",
                          settings_.peer_name),
              ""};
    }
    const Superblock sb = metadata_.superblock();
    if (volume_->detached()) {
      return {false, 409,
              fmt::format("refused: this node's disk of {} failed and was detached (Diskless); restart the node with a "
                          "working disk (freevsa create-md ... --force for a new one) before it can serve",
                          settings_.volume_name),
              ""};
    }
    std::string warning;
    if (sb.disk_state != DiskState::UpToDate || sync_role_ == SyncRole::Target) {
      const std::string what = fmt::format(
          "this node's replica of {} is {}{}: {} of it may be older than {}'s, and writes that only {} has would be "
          "lost when the nodes reconnect",
          settings_.volume_name, to_string(sb.disk_state), sync_role_ == SyncRole::Target ? " (resync running)" : "",
          human_bytes(metadata_.bitmap().count_dirty_bytes()), settings_.peer_name, settings_.peer_name);
      if (!force) return {false, 409, "refused: " + what + "; add --force to promote anyway", ""};
      warning = "forced: " + what;
      util::log_warn("{}: promote {}", settings_.volume_name, warning);
      update_metadata([](Superblock& s) { s.disk_state = DiskState::UpToDate; });
      if (sync_role_ == SyncRole::Target) drop_link("promoted by force during resync", peer::DisconnectCode::Administrative);
    }
    become_primary();
    util::log_info("{}: promoted to primary{}", settings_.volume_name, phase_ == Phase::Up ? "" : " (peer not connected)");
    send_state("promoted");
    if (metadata_.bitmap().count_dirty_bits() > 0) start_source_and_share_bitmap();
    return {true, 200,
            fmt::format("{} is primary on {}{}", settings_.volume_name, settings_.node_name,
                        phase_ == Phase::Up ? "" : fmt::format(" ({} not connected: its replica is now behind)", settings_.peer_name)),
            warning};
  });
}

CommandResult Replicator::demote() {
  if (volume_->role() != Role::Primary) {
    return {true, 200, fmt::format("{} is already secondary here", settings_.volume_name), ""};
  }
  // Initiators see "transitioning" while the writes in flight finish; then "standby".
  volume_->set_transitioning(true);
  volume_->set_role(Role::Secondary);
  // Writes that passed the role check finish (on the peer too: protocol C waits for it), and
  // both disks flush - the peer's behind every write it was sent (its flush is a barrier) - so
  // that everything acknowledged is there before the peer may be promoted.
  volume_->drain();
  const int peer_flush_error = volume_->wait_for_peer([this](Done done) { send_flush(std::move(done)); });
  const int flush_error = data_.flush();
  volume_->set_transitioning(false);
  if (peer_flush_error != 0 && peer_flush_error != ECONNRESET) {
    util::log_warn("{}: demote: flushing {}'s disk failed: {}", settings_.volume_name, settings_.peer_name,
                   std::strerror(peer_flush_error));
  }
  return on_io_thread([&]() -> CommandResult {
    update_metadata([](Superblock& sb) { sb.set(metadata_flag::kCrashedPrimary, false); });
    resume_primary_ = false;
    util::log_info("{}: demoted to secondary", settings_.volume_name);
    send_state("demoted");
    if (flush_error != 0) {
      return {true, 200, fmt::format("{} is secondary on {} (flushing the local disk failed: {})", settings_.volume_name,
                                     settings_.node_name, std::strerror(flush_error)), ""};
    }
    return {true, 200, fmt::format("{} is secondary on {}", settings_.volume_name, settings_.node_name), ""};
  });
}

CommandResult Replicator::reconnect() {
  return on_io_thread([&]() -> CommandResult {
    if (!link_) {
      dial_timer_.cancel();
      backoff_ = std::chrono::milliseconds(200);
      if (settings_.node_id < settings_.peer_id) dial();
      return {true, 200, fmt::format("{}: connecting to {}", settings_.volume_name, settings_.peer_name), ""};
    }
    drop_link("reconnect requested by the administrator", peer::DisconnectCode::Administrative);
    return {true, 200, fmt::format("{}: connection to {} dropped; reconnecting", settings_.volume_name, settings_.peer_name), ""};
  });
}

void Replicator::stop() {
  on_io_thread([&] {
    phase_ = Phase::Stopped;
    dial_timer_.cancel();
    sync_timer_.cancel();
    verify_timer_.cancel();
    tick_timer_.cancel();
    flush_timer_.cancel();
    drop_link("this node is stopping", peer::DisconnectCode::Shutdown);
    return 0;
  });
  const bool primary = volume_->role() == Role::Primary;
  update_metadata([primary](Superblock& sb) { sb.set(metadata_flag::kPrimaryAtStop, primary); });
  if (int error = metadata_.close_clean(); error != 0) {
    util::log_error("{}: closing the metadata cleanly failed: {} (the next start replays the activity log)",
                    settings_.volume_name, std::strerror(error));
  }
}

// ---- status

VolumeStatus Replicator::status() {
  return on_io_thread([&] { return status_on_io_thread(); });
}

VolumeStatus Replicator::status_on_io_thread() {
  const Superblock sb = metadata_.superblock();
  VolumeStatus st;
  st.name = settings_.volume_name;
  st.role = volume_->role() == Role::Primary ? "primary" : "secondary";
  st.primary_when_peer_met = volume_->role() != Role::Primary && resume_primary_;
  st.disk_state = to_string(local_disk_state());
  st.protocol = settings_.protocol == Protocol::A ? 'A' : settings_.protocol == Protocol::B ? 'B' : 'C';
  st.protocol_meaning = settings_.protocol == Protocol::C   ? "a write completes when both disks have it"
                        : settings_.protocol == Protocol::B ? "a write completes when the peer received it"
                                                            : "a write completes when it was sent to the peer";
  st.size_bytes = data_.size_bytes();
  st.out_of_sync_bytes = metadata_.bitmap().count_dirty_bytes();
  st.volume_uuid = to_string(sb.volume_uuid);
  st.generation = fmt::format("{:016x}", sb.generations.current);
  st.backing = settings_.backing_path;
  st.writes_replicated = writes_replicated_.load();
  st.bytes_resynced = bytes_resynced_.load();

  PeerStatus ps;
  ps.node = settings_.peer_name;
  ps.address = fmt::format("{}:{}", settings_.peer_address, settings_.peer_port);
  ps.last_error = last_error_;
  if (phase_ == Phase::Up) {
    ps.role = peer_role_ == peer::Role::Primary ? "primary" : "secondary";
    ps.disk_state = to_string(to_disk_state(peer_disk_));
    if (link_ && link_->round_trip_ms() >= 0) ps.round_trip_ms = link_->round_trip_ms();
    ps.connection = sync_role_ == SyncRole::Source   ? ConnectionState::SyncSource
                    : sync_role_ == SyncRole::Target ? ConnectionState::SyncTarget
                    : verify_ && verify_->driver     ? ConnectionState::VerifySource
                    : verify_                        ? ConnectionState::VerifyTarget
                                                     : ConnectionState::Connected;
    ps.last_error.clear();
  } else {
    ps.role = "unknown";
    ps.disk_state = sb.has(metadata_flag::kPeerOutdated) ? "Outdated" : "unknown";
    ps.connection = phase_ == Phase::Stopped ? ConnectionState::StandAlone : ConnectionState::Connecting;
  }
  st.peers.push_back(ps);

  if (resync_) {
    SyncProgress sp;
    sp.full = resync_->full;
    sp.total_bytes = resync_->total;
    sp.done_bytes = resync_->done;
    // The bitmap is the truth about what is left; the total only grows if writes failed.
    const std::uint64_t left = st.out_of_sync_bytes;
    sp.total_bytes = std::max(sp.total_bytes, sp.done_bytes + left);
    sp.skipped_bytes = resync_->skipped;
    sp.bytes_per_second = resync_->throughput.bytes_per_second();
    if (sp.bytes_per_second > 0) sp.eta_seconds = static_cast<double>(left) / sp.bytes_per_second;
    st.sync = sp;
  }
  st.verify = last_verify_;
  if (verify_ && verify_->driver) {
    st.verify.running = true;
    st.verify.total_bytes = data_.size_bytes();
    st.verify.checked_bytes = verify_->checked;
    st.verify.out_of_sync_bytes = verify_->out_of_sync;
    st.verify.bytes_per_second = verify_->throughput.bytes_per_second();
    if (st.verify.bytes_per_second > 0) {
      st.verify.eta_seconds = static_cast<double>(data_.size_bytes() - verify_->checked) / st.verify.bytes_per_second;
    }
  } else if (st.verify.checked_bytes > 0) {
    st.verify.total_bytes = data_.size_bytes();
  }
  return st;
}

}  // namespace freevsa::replication
