// libFuzzer target for the peer link's authentication (replication/peer_auth.h) as a sequence
// of frames: an honest dialler and an honest acceptor, and a hostile network between them that
// delivers, drops, reorders, reflects, replays or forges handshake frames as the input says.
// Nothing may crash or leak, and:
//  1. a side that ends authenticated received exactly the other side's frames, in order, and
//     nothing else (no forged, reflected or replayed frame ever helps);
//  2. a side that failed stays failed, whatever arrives after;
//  3. when both authenticated, they agree on the keys (each one's send key is the other's
//     receive key) and on each other's identity;
//  4. a frame MAC that the fuzzer made never opens.
//
// Input: a list of operations, one byte each (the low 3 bits pick it), forged frames followed
// by [type(1) length(1) payload(length)].
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "replication/peer_auth.h"

using namespace freevsa::replication::peer;

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

struct Party {
  explicit Party(LinkHandshake handshake) : hs(std::move(handshake)) {}
  LinkHandshake hs;
  std::deque<Message> outbox;       // sent, not yet delivered
  std::vector<Message> sent;        // everything it sent, in order
  std::vector<Message> received;    // everything delivered to it
  bool received_foreign = false;    // something not from the other party's `sent`, in order
  bool failed_once = false;

  void deliver(const Message& m, bool honest) {
    received.push_back(m);
    if (!honest) received_foreign = true;
    const HandshakeStep step = hs.on_message(m);
    if (failed_once) require(!step.authenticated && hs.failed());
    if (hs.failed()) failed_once = true;
    if (step.reply) {
      outbox.push_back(*step.reply);
      sent.push_back(*step.reply);
    }
  }
};

LinkCredentials credentials(std::uint32_t id, const char* name) {
  LinkCredentials c{"fuzz", id, name, "a shared secret of some length", {}};
  c.peers.push_back(id == 1 ? KnownNode{2, "b", ""} : KnownNode{1, "a", ""});
  return c;
}

// A message built from the input, if the bytes decode as one.
std::optional<Message> forged(std::span<const std::uint8_t>& in) {
  if (in.size() < 2) return std::nullopt;
  FrameHeader h;
  h.type = in[0];
  const std::size_t length = std::min<std::size_t>(in[1], in.size() - 2);
  h.payload_length = static_cast<std::uint32_t>(length);
  const auto payload = in.subspan(2, length);
  in = in.subspan(2 + length);
  auto decoded = decode_message(h, payload);
  if (!decoded.ok() || std::holds_alternative<Ignored>(decoded.value)) return std::nullopt;
  // Borrowed spans point into the input, which outlives the call.
  return decoded.value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Party d(LinkHandshake(credentials(1, "a"), LinkSide::Dialler, 2));
  Party a(LinkHandshake(credentials(2, "b"), LinkSide::Acceptor));
  if (auto hello = d.hs.start()) {
    d.outbox.push_back(*hello);
    d.sent.push_back(*hello);
  }
  a.hs.start();
  std::size_t d_delivered = 0, a_delivered = 0;  // how many of each side's `sent` reached the other
  std::span<const std::uint8_t> in(data, size);
  while (!in.empty()) {
    const std::uint8_t op = in[0] & 7;
    in = in.subspan(1);
    switch (op) {
      case 0:  // deliver the dialler's next frame
      case 1:  // ... twice as often as anything hostile
        if (!d.outbox.empty()) {
          a.deliver(d.outbox.front(), true);
          d.outbox.pop_front();
          ++d_delivered;
        }
        break;
      case 2:
        if (!a.outbox.empty()) {
          d.deliver(a.outbox.front(), true);
          a.outbox.pop_front();
          ++a_delivered;
        }
        break;
      case 3:  // drop the dialler's next frame
        if (!d.outbox.empty()) d.outbox.pop_front(), a.received_foreign = true;
        break;
      case 4:  // forged, to the acceptor
        if (auto m = forged(in)) a.deliver(*m, false);
        break;
      case 5:  // forged, to the dialler
        if (auto m = forged(in)) d.deliver(*m, false);
        break;
      case 6:  // reflect: a side gets back what it sent itself
        if (!a.sent.empty()) a.deliver(a.sent.back(), false);
        break;
      case 7:  // replay: the acceptor gets again what the dialler sent first
        if (d_delivered > 0) a.deliver(d.sent.front(), false);
        break;
    }
  }
  for (Party* p : {&a, &d}) {
    if (p->hs.authenticated()) require(!p->received_foreign);
  }
  if (a.hs.authenticated()) require(a.received.size() == d_delivered);
  if (d.hs.authenticated()) require(d.received.size() == a_delivered);
  if (a.hs.authenticated() && d.hs.authenticated()) {
    require(a.hs.send_key() == d.hs.receive_key() && d.hs.send_key() == a.hs.receive_key());
    require(a.hs.peer().id == 1 && d.hs.peer().id == 2);
  }
  // 4: a MAC the input made does not open.
  if (size >= kFrameHeaderSize + kFrameMacSize) {
    SessionKey key{};
    key.fill(7);
    FrameOpener opener(key);
    require(!opener.open(std::span(data, kFrameHeaderSize),
                         std::span(data + kFrameHeaderSize, size - kFrameHeaderSize - kFrameMacSize),
                         std::span(data + size - kFrameMacSize, kFrameMacSize)));
  }
  return 0;
}
