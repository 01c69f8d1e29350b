#include "target/text_keys.h"

#include <gtest/gtest.h>

namespace freevsa::target {
namespace {

using namespace std::string_literals;

TEST(TextKeys, ParsesPairsInOrder) {
  auto p = parse_text("A=1\0B=two\0"s);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p.pairs.size(), 2u);
  EXPECT_EQ(p.pairs[0], (KeyValue{"A", "1"}));
  EXPECT_EQ(p.pairs[1], (KeyValue{"B", "two"}));
}

TEST(TextKeys, SkipsExtraNulPadding) {
  auto p = parse_text("A=1\0\0\0"s);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.pairs.size(), 1u);
}

TEST(TextKeys, EmptyValueIsAllowed) {
  auto p = parse_text("SendTargets=\0"s);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.pairs[0].value, "");
}

TEST(TextKeys, RejectsPairWithoutSeparator) { EXPECT_EQ(parse_text("Abc\0"s).error, TextError::MissingSeparator); }

TEST(TextKeys, RejectsEmptyKey) { EXPECT_EQ(parse_text("=x\0"s).error, TextError::EmptyKey); }

TEST(TextKeys, RejectsKeyLongerThan63) {
  EXPECT_TRUE(parse_text(std::string(63, 'K') + "=1" + '\0').ok());
  EXPECT_EQ(parse_text(std::string(64, 'K') + "=1" + '\0').error, TextError::KeyTooLong);
}

TEST(TextKeys, RejectsBadKeyCharacter) { EXPECT_EQ(parse_text("A B=1\0"s).error, TextError::BadKeyCharacter); }

TEST(TextKeys, RejectsValueLongerThan255) {
  EXPECT_TRUE(parse_text("A=" + std::string(255, 'v') + '\0').ok());
  EXPECT_EQ(parse_text("A=" + std::string(256, 'v') + '\0').error, TextError::ValueTooLong);
}

TEST(TextKeys, BinaryChapValuesMayBeLonger) {
  EXPECT_TRUE(parse_text("CHAP_C=0x" + std::string(2000, 'a') + '\0').ok());
  EXPECT_EQ(parse_text("CHAP_C=0x" + std::string(8200, 'a') + '\0').error, TextError::ValueTooLong);
}

TEST(TextKeys, RejectsMissingTerminator) { EXPECT_EQ(parse_text("A=1\0B=2"s).error, TextError::MissingTerminator); }

TEST(TextKeys, RejectsDuplicateKey) {
  auto p = parse_text("A=1\0A=1\0"s);
  EXPECT_EQ(p.error, TextError::DuplicateKey);
  EXPECT_EQ(p.error_key, "A");
}

TEST(TextKeys, NonUtf8ValuePasses) { EXPECT_TRUE(parse_text("InitiatorAlias=\xff\xfe\0"s).ok()); }

TEST(TextKeys, FormatRoundTrips) {
  std::vector<KeyValue> pairs{{"A", "1"}, {"B", ""}};
  EXPECT_EQ(format_text(pairs), "A=1\0B=\0"s);
  EXPECT_EQ(parse_text(format_text(pairs)).pairs, pairs);
}

TEST(TextKeys, NumbersDecimalHexBase64) {
  EXPECT_EQ(parse_number("8192"), 8192u);
  EXPECT_EQ(parse_number("0x2000"), 8192u);
  EXPECT_EQ(parse_number("0X2000"), 8192u);
  EXPECT_EQ(parse_number("0bIAA="), 8192u);
  EXPECT_FALSE(parse_number(""));
  EXPECT_FALSE(parse_number("12a"));
  EXPECT_FALSE(parse_number("-1"));
  EXPECT_FALSE(parse_number("99999999999999999999999"));
  EXPECT_FALSE(parse_number("0x"));
}

TEST(TextKeys, BooleansAreExactlyYesOrNo) {
  EXPECT_EQ(parse_bool("Yes"), true);
  EXPECT_EQ(parse_bool("No"), false);
  EXPECT_FALSE(parse_bool("yes"));
  EXPECT_FALSE(parse_bool(""));
}

TEST(TextKeys, ListsSplitOnComma) {
  EXPECT_EQ(split_list("CRC32C,None"), (std::vector<std::string>{"CRC32C", "None"}));
  EXPECT_TRUE(split_list("").empty());
}

TEST(TextKeys, BinaryHexAndBase64) {
  EXPECT_EQ(decode_binary("0x0aFF"), (std::vector<std::uint8_t>{0x0a, 0xff}));
  EXPECT_EQ(decode_binary("0xabc"), (std::vector<std::uint8_t>{0x0a, 0xbc}));
  EXPECT_EQ(decode_binary("0bAQID"), (std::vector<std::uint8_t>{1, 2, 3}));
  EXPECT_EQ(decode_binary("0bAQI="), (std::vector<std::uint8_t>{1, 2}));
  EXPECT_FALSE(decode_binary("0xzz"));
  EXPECT_FALSE(decode_binary("0bA"));
  EXPECT_FALSE(decode_binary("1234"));
  EXPECT_EQ(encode_hex(std::vector<std::uint8_t>{0x01, 0xab}), "0x01ab");
}

}  // namespace
}  // namespace freevsa::target
