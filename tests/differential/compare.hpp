// Compares two backend message streams byte for byte, after masking the few fields that differ
// by nature between a direct connection and one through shardgate; describes messages readably.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "raw_client.hpp"

namespace shardgate::difftest {

// What is masked, and nothing else:
// - BackendKeyData: shardgate issues its own key by design (always masked).
// - NotificationResponse: the sender's pid (another backend on each side).
// - AuthenticationSASLContinue/Final data: nonces, salt and signatures are random per login
//   and shardgate authenticates its clients with its own verifier (the codes are compared).
// - Type and table OIDs at or above created_oid_floor in RowDescription and
//   ParameterDescription: objects a case creates get new OIDs on each run, because the direct
//   run and the proxied run execute one after the other on the same server. They are replaced
//   by their order of first appearance in the stream, so both runs must still use "the same
//   new object" in the same places. OIDs below the floor (built-in and fixture objects) are
//   compared exactly.
// - ErrorResponse/NoticeResponse source location (fields F file, L line, R routine): only when
//   the proxied message has none of the three, i.e. shardgate wrote it itself (e.g. it
//   authenticates clients with its own verifier), and every other byte is equal. When both
//   messages come from Postgres the fields are compared like the rest. Counted separately.
struct mask_rules {
    std::uint32_t created_oid_floor = UINT32_MAX;  // UINT32_MAX: no OID is masked
};

struct stream_mismatch {
    std::size_t index = 0;  // message index in the stream (0 = first message)
    std::string direct;     // the direct message, decoded readably ("(none)" if absent)
    std::string proxied;    // the proxied message, decoded readably ("(none)" if absent)
    std::string detail;     // where the bytes first differ, with hex around that offset
};

struct comparison {
    std::size_t identical = 0;      // messages equal after masking (up to the first mismatch)
    std::size_t masked_fields = 0;  // fields masked in the proxied stream
    // Proxied ErrorResponse/NoticeResponse messages that lacked F/L/R and otherwise matched.
    std::size_t without_source_location = 0;
    std::optional<stream_mismatch> mismatch;
    [[nodiscard]] bool ok() const { return !mismatch.has_value(); }
};

// Applies mask_rules to a copy of `stream`; adds the number of masked fields to *masked.
message_stream normalize(const message_stream& stream, const mask_rules& rules,
                         std::size_t* masked = nullptr);

// Normalizes both streams and compares them message by message (type and body bytes).
comparison compare_streams(const message_stream& direct, const message_stream& proxied,
                           const mask_rules& rules = {});

// One line: message name, type byte, decoded fields (long values shortened), body size.
std::string describe(const backend_message& m);

// Multi-line report of a mismatch for case `name`.
std::string format_mismatch(const std::string& name, const stream_mismatch& m);

}  // namespace shardgate::difftest
