#include "scsi/mode_pages.h"

#include <bit>

namespace freevsa::scsi {
namespace {

std::vector<std::uint8_t> page_with_length(std::uint8_t code, std::uint8_t length) {
  std::vector<std::uint8_t> p(2 + length, 0);
  p[0] = code;  // PS=0: pages cannot be saved
  p[1] = length;
  return p;
}

// Caching (SBC-3 6.4.5), 12h bytes. WCE is the only changeable field: with WCE=0 every write
// is sent to the volume with FUA.
std::vector<std::uint8_t> caching_page(PageControl pc, const ModeSettings& current) {
  auto p = page_with_length(kModePageCaching, 0x12);
  switch (pc) {
    case PageControl::Changeable: p[2] = 0x04; break;
    case PageControl::Default: p[2] = ModeSettings{}.write_cache_enabled ? 0x04 : 0x00; break;
    default: p[2] = current.write_cache_enabled ? 0x04 : 0x00; break;  // RCD=0
  }
  return p;
}

// Control (SPC-4 7.5.8), 0Ah bytes. Nothing changeable: TST=0 (one task set), D_SENSE=0
// (fixed format sense), QUEUE ALGORITHM MODIFIER=1 (commands run concurrently, unrestricted
// reordering), QERR=0, SWP=0, TAS=0.
std::vector<std::uint8_t> control_page(PageControl pc) {
  auto p = page_with_length(kModePageControl, 0x0A);
  if (pc != PageControl::Changeable) p[3] = 0x10;
  return p;
}

// Informational Exceptions Control (SPC-4 7.5.12), 0Ah bytes: DEXCPT=1, we report none.
std::vector<std::uint8_t> informational_exceptions_page(PageControl pc) {
  auto p = page_with_length(kModePageInformationalExceptions, 0x0A);
  if (pc != PageControl::Changeable) p[2] = 0x08;
  return p;
}

constexpr std::uint8_t kPages[] = {kModePageCaching, kModePageControl,
                                   kModePageInformationalExceptions};

}  // namespace

std::optional<std::vector<std::uint8_t>> mode_page(std::uint8_t page, PageControl pc,
                                                    const ModeSettings& current) {
  switch (page) {
    case kModePageCaching: return caching_page(pc, current);
    case kModePageControl: return control_page(pc);
    case kModePageInformationalExceptions: return informational_exceptions_page(pc);
    default: return std::nullopt;
  }
}

bool append_mode_pages(std::vector<std::uint8_t>& out, std::uint8_t page, PageControl pc,
                       const ModeSettings& current) {
  if (page == kModePageAll) {
    for (std::uint8_t p : kPages) {
      auto bytes = *mode_page(p, pc, current);
      out.insert(out.end(), bytes.begin(), bytes.end());
    }
    return true;
  }
  auto bytes = mode_page(page, pc, current);
  if (!bytes) return false;
  out.insert(out.end(), bytes->begin(), bytes->end());
  return true;
}

Result select_mode_page(std::span<const std::uint8_t> page, std::uint32_t offset,
                        ModeSettings& settings) {
  const std::uint8_t code = page[0] & 0x3F;
  if (page[0] & 0x40) return Sense::invalid_field_in_parameter_list(offset, 6);  // SPF: no subpages
  auto current = mode_page(code, PageControl::Current, settings);
  if (!current) return Sense::invalid_field_in_parameter_list(offset, 5);
  const auto mask = *mode_page(code, PageControl::Changeable, settings);
  if (page.size() != current->size()) return Sense::invalid_field_in_parameter_list(offset + 1);
  // Byte 0 bit 7 (PS) is reserved in MODE SELECT and ignored; everything else that is not
  // changeable must equal the current value.
  for (std::size_t i = 2; i < page.size(); ++i) {
    const std::uint8_t bad = static_cast<std::uint8_t>((page[i] ^ (*current)[i]) & ~mask[i]);
    if (bad != 0) {
      const auto bit = static_cast<std::uint8_t>(7 - std::countl_zero(bad));
      return Sense::invalid_field_in_parameter_list(static_cast<std::uint16_t>(offset + i), bit);
    }
  }
  if (code == kModePageCaching) settings.write_cache_enabled = (page[2] & 0x04) != 0;
  return good();
}

}  // namespace freevsa::scsi
