// Base64 (RFC 4648, standard alphabet, padded) for SCRAM attributes and verifiers; strict decoding.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace shardgate::protocol::auth {

// Encodes bytes with the standard alphabet and '=' padding (what Postgres and RFC 5802 use).
std::string base64_encode(std::string_view bytes);
std::string base64_encode(std::span<const std::uint8_t> bytes);

// Decodes standard, padded base64. Strict, because the input is untrusted: the length must be a
// multiple of 4, only the alphabet is allowed (no whitespace, no URL-safe characters), '=' only as
// one or two final characters, and the unused bits before the padding must be zero (so every
// byte string has exactly one accepted encoding). "" decodes to "". Returns nullopt otherwise.
// (Postgres' own decoder is laxer: it skips whitespace and ignores non-zero pad bits. No real
// client sends either.)
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace shardgate::protocol::auth
