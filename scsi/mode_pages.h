// Mode pages (SPC-4 7.5, SBC-3 6.4) built from named fields, and the MODE SELECT page check.
// Pages: 08h Caching (WCE changeable), 0Ah Control, 1Ch Informational Exceptions Control.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "scsi/sense.h"
#include "scsi/unit_state.h"

namespace freevsa::scsi {

enum class PageControl : std::uint8_t { Current = 0, Changeable = 1, Default = 2, Saved = 3 };

inline constexpr std::uint8_t kModePageCaching = 0x08;
inline constexpr std::uint8_t kModePageControl = 0x0A;
inline constexpr std::uint8_t kModePageInformationalExceptions = 0x1C;
inline constexpr std::uint8_t kModePageAll = 0x3F;

// The page in `pc` form, or nullopt if the page is not supported.
std::optional<std::vector<std::uint8_t>> mode_page(std::uint8_t page, PageControl pc,
                                                    const ModeSettings& current);
// Appends the requested page (or all pages for 3Fh); false if not supported.
bool append_mode_pages(std::vector<std::uint8_t>& out, std::uint8_t page, PageControl pc,
                       const ModeSettings& current);

// Checks one page of a MODE SELECT parameter list against the current values and the
// changeable mask and applies it to `settings`. `offset` is the page's offset in the parameter
// list (for field pointers).
Result select_mode_page(std::span<const std::uint8_t> page, std::uint32_t offset,
                        ModeSettings& settings);

}  // namespace freevsa::scsi
