// One iSCSI connection (and, since we negotiate MaxConnections=1, its session): login, then the
// full feature phase - command ordering by CmdSN, Data-Out/R2T, Data-In, task management,
// NOP keep-alive, text, logout.
//
// Threading: the socket's executor is a strand; every member runs on it. SCSI
// commands run on the server's WorkerPool and come back by posting to that io_context.
// Ownership: shared_ptr; the pending read, write, timers and worker jobs each hold a reference,
// so the object lives until the last of them finished after close().
//
// Bounds (ResourceLimits): a connection not logged in after login_timeout_seconds is closed; a
// write command takes its buffer from the connection's and the process's Data-Out budget
// (data_out_budget.h) or is answered TASK SET FULL; a write whose Data-Out makes no progress for
// data_out_timeout_seconds ends with CHECK CONDITION, ABORTED COMMAND / INITIATOR RESPONSE
// TIMEOUT (0B/4B/06), and its buffer is freed. The I_T nexus ends (LunMap::nexus_lost) when
// the connection closed and the last of its commands came back from the workers, so nothing
// the nexus did arrives at the SCSI layer after its end.
#pragma once

#include "util/asio.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "scsi/task.h"
#include "target/login.h"
#include "target/params.h"
#include "target/pdu.h"
#include "target/server_context.h"
#include "util/log_throttle.h"

namespace freevsa::target {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `admission` is the connection's place in the server's connection counts, given back at close.
  Connection(boost::asio::ip::tcp::socket socket, ServerContext& server, ConnectionLimiter::Ticket admission);
  ~Connection();

  void start();
  // Thread-safe: closes the socket and drops every task of this connection.
  void close(std::string reason);
  // Thread-safe: asks the initiator to log out (Async Message), closing after `grace`.
  void request_logout(std::chrono::seconds grace);
  const std::string& peer() const { return peer_; }

 private:
  struct ScsiTask;
  struct OutPdu;
  struct PendingTmf;
  enum class Phase { Login, FullFeature, LoggingOut, Closed };

  // ---- reading (connection_io.cpp)
  void read_header();
  void on_header(const boost::system::error_code& ec);
  void read_rest();
  void on_rest(const boost::system::error_code& ec);
  std::uint8_t* data_destination(std::uint32_t length);
  void on_pdu();
  void arm_timers();
  void on_keepalive_timer();
  void expire_stalled_writes(std::chrono::steady_clock::time_point now);

  // ---- writing (connection_io.cpp)
  void send(OutPdu pdu);
  void stamp(Bhs& bhs, bool advance_stat_sn);
  void write_queued();
  void on_written(const boost::system::error_code& ec, std::size_t count);
  void send_reject(const Bhs& rejected, std::uint8_t reason);
  void close_now(const std::string& reason);
  void end_nexus();

  // ---- login and text (connection_login.cpp)
  void handle_login(Pdu& pdu);
  void enter_full_feature(const LoginResult& result);
  void handle_text(Pdu& pdu);
  void handle_logout(Pdu& pdu);
  void handle_nop_out(Pdu& pdu);

  // ---- command ordering (connection_ordering.cpp)
  enum class Admission { Process, Queue, Drop };
  struct HeldCommand {
    Pdu pdu;
    bool scsi_registered = false;  // a SCSI command whose task already exists (by ITT)
  };
  Admission admit(const Bhs& bhs);
  void hold(std::uint32_t cmd_sn, HeldCommand held);
  void release_held();
  void dispatch(Pdu& pdu);
  void process_ordered(Pdu& pdu);
  std::uint32_t max_cmd_sn() const;

  // ---- SCSI commands, Data-Out, R2T, Data-In (connection_scsi.cpp)
  void handle_scsi_command(Pdu& pdu, Admission admission);
  std::optional<DataOutGrant> take_data_out(std::uint32_t bytes);
  void handle_data_out(Pdu& pdu);
  void deliver(ScsiTask& task);
  void send_r2ts(ScsiTask& task);
  void maybe_execute(ScsiTask& task);
  void on_task_done(const std::shared_ptr<ScsiTask>& task);
  void send_scsi_result(ScsiTask& task);
  void send_check_condition(std::uint32_t itt, std::uint32_t expected_length, std::vector<std::uint8_t> sense);
  struct ScsiResponse {
    std::uint32_t itt;
    scsi::Status status;
    std::uint8_t residual_flags;  // O (0x04) or U (0x02)
    std::uint32_t residual;
    std::uint32_t exp_data_sn;
    const std::vector<std::uint8_t>& sense;
  };
  void send_scsi_response(const ScsiResponse& response);
  void finish_task(std::uint32_t itt);

  // ---- task management (connection_tmf.cpp)
  void handle_task_management(Pdu& pdu);
  void abort_tasks_matching(PendingTmf& tmf, const std::function<bool(const ScsiTask&)>& match);
  void settle_tmfs();

  boost::asio::ip::tcp::socket socket_;
  ServerContext& server_;
  ConnectionLimiter::Ticket admission_;
  std::shared_ptr<DataOutBudget> data_out_budget_;  // this connection's
  std::string peer_;
  std::string local_address_;
  Phase phase_ = Phase::Login;

  // read state
  Pdu incoming_;
  std::vector<std::uint8_t> header_tail_;   // AHS + header digest
  std::shared_ptr<ScsiTask> data_out_task_; // task whose buffer the current Data-Out lands in
  std::array<std::uint8_t, 8> data_trailer_{};  // padding + data digest
  std::uint8_t* data_target_ = nullptr;     // where the data segment lands
  util::AlignedBuffer scratch_;             // data segment of a PDU we will reject
  std::optional<DataOutGrant> incoming_grant_;  // the budget of the write command being read
  util::LogThrottle budget_log_{std::chrono::seconds(10)};
  std::chrono::steady_clock::time_point last_receive_;

  // write state
  std::deque<OutPdu> out_queue_;
  std::size_t writing_ = 0;                 // PDUs of out_queue_ in the current write
  std::vector<boost::asio::const_buffer> write_buffers_;
  bool close_after_write_ = false;

  // negotiated state
  std::unique_ptr<LoginNegotiator> negotiator_;
  std::unique_ptr<TextResponder> text_;
  LoginResult login_;
  std::string initiator_port_;   // I_T nexus name for the SCSI layer
  std::string session_key_;      // initiator, ISID and target: what session reinstatement matches
  std::uint16_t tsih_ = 0;
  bool registered_ = false;

  // sequence numbers
  std::uint32_t stat_sn_ = 0;       // next StatSN to send
  std::uint32_t exp_cmd_sn_ = 0;
  std::map<std::uint32_t, HeldCommand> held_;  // commands that arrived ahead of ExpCmdSN

  // tasks
  std::map<std::uint32_t, std::shared_ptr<ScsiTask>> tasks_;  // by ITT
  std::map<std::uint32_t, std::uint32_t> r2t_owner_;          // TTT -> ITT
  std::uint32_t next_ttt_ = 1;
  std::vector<std::unique_ptr<PendingTmf>> tmfs_;
  std::set<std::uint32_t> aborted_executing_;  // aborted tasks still running on a worker
  std::size_t executing_ = 0;                  // tasks on a worker, aborted or not

  // keep-alive
  boost::asio::steady_timer keepalive_timer_;
  std::uint32_t ping_ttt_ = kReservedTag;
  std::chrono::steady_clock::time_point ping_sent_;
  std::chrono::steady_clock::time_point login_started_;
  std::optional<std::chrono::steady_clock::time_point> logout_deadline_;  // we asked for a logout
};

}  // namespace freevsa::target
