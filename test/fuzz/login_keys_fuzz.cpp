// libFuzzer target: arbitrary bytes as the data segments (and BHS flags) of a sequence of Login
// Request PDUs fed to a LoginNegotiator whose target requires (mutual) CHAP, and as text to the
// key parser and value decoders. Nothing may crash, whatever the input.
//
// Input layout, repeated: flags(1) version_min(1) tsih_low(1) length(2, big endian) data(length).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "target/login.h"
#include "target/pdu.h"
#include "target/text_keys.h"

using namespace freevsa::target;

namespace {

const TargetServerConfig& fuzz_config() {
  static const TargetServerConfig config = [] {
    TargetServerConfig c;
    TargetDefinition t;
    t.iqn = "iqn.2024-01.org.freevsa:fuzz";
    t.chap = ChapSecret{"user", "secret-secret"};
    t.mutual_chap = ChapSecret{"target", "other-secret-1"};
    c.targets.push_back(t);
    TargetDefinition open;
    open.iqn = "iqn.2024-01.org.freevsa:open";
    c.targets.push_back(open);
    c.discovery_chap = ChapSecret{"disc", "disc-secret-123"};
    return c;
  }();
  return config;
}

void exercise_parser(std::string_view text) {
  auto parsed = parse_text(text);
  for (const auto& kv : parsed.pairs) {
    (void)parse_number(kv.value);
    (void)parse_bool(kv.value);
    (void)split_list(kv.value);
    (void)decode_binary(kv.value);
  }
  (void)format_text(parsed.pairs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  exercise_parser(std::string_view(reinterpret_cast<const char*>(data), size));

  LoginNegotiator login(fuzz_config(), [] { return std::uint16_t{1}; });
  std::size_t pos = 0;
  int pdus = 0;
  while (pos + 5 <= size && pdus++ < 64) {
    const std::uint8_t flags = data[pos];
    const std::uint8_t version_min = data[pos + 1];
    const std::uint8_t tsih = data[pos + 2] & 0x01;  // mostly zero, sometimes not
    std::size_t length = static_cast<std::size_t>(data[pos + 3]) << 8 | data[pos + 4];
    pos += 5;
    length = std::min(length, size - pos);
    std::string text(reinterpret_cast<const char*>(data + pos), length);
    pos += length;

    Pdu pdu;
    pdu.bhs.set_opcode(Opcode::LoginRequest, true);
    pdu.bhs.set_flags(flags);
    pdu.bhs.bytes[3] = version_min;
    pdu.bhs.set_u16(14, tsih);
    pdu.bhs.set_initiator_task_tag(0x77);
    pdu.set_data(text);
    auto reply = login.on_request(pdu);
    exercise_parser(reply.response.data_as_string());
    if (reply.state == LoginNegotiator::State::Failed) break;
    if (reply.state == LoginNegotiator::State::Complete) {
      // Keep going with the same bytes as Text requests of the full feature phase.
      TextResponder text_responder(fuzz_config(), login.result(), "10.0.0.1");
      while (pos + 5 <= size && pdus++ < 128) {
        Pdu t;
        t.bhs.set_opcode(Opcode::TextRequest, true);
        t.bhs.set_flags(data[pos]);
        t.bhs.set_u32(field::kTargetTransferTag, data[pos + 1] == 0xff ? kReservedTag : data[pos + 2]);
        std::size_t n = std::min<std::size_t>(data[pos + 3] << 8 | data[pos + 4], size - pos - 5);
        pos += 5;
        t.set_data(std::string(reinterpret_cast<const char*>(data + pos), n));
        pos += n;
        (void)text_responder.on_request(t);
      }
      break;
    }
  }
  return 0;
}
