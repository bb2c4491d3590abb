// Stream comparison for the differential test: narrow masks, byte comparison, readable reports.
// Message formats: https://www.postgresql.org/docs/15/protocol-message-formats.html
#include "compare.hpp"

#include <algorithm>
#include <map>
#include <sstream>
#include <type_traits>
#include <variant>

#include "shardgate/protocol/backend.hpp"

namespace shardgate::difftest {
namespace pr = shardgate::protocol;
namespace be = shardgate::protocol::be;

namespace {

// Masked OIDs become this marker plus their order of first appearance.
constexpr std::uint32_t created_oid_marker = 0xF0000000U;

std::uint32_t get_u32(const std::string& s, std::size_t at) {
    return (std::uint32_t{static_cast<unsigned char>(s[at])} << 24) |
           (std::uint32_t{static_cast<unsigned char>(s[at + 1])} << 16) |
           (std::uint32_t{static_cast<unsigned char>(s[at + 2])} << 8) |
           std::uint32_t{static_cast<unsigned char>(s[at + 3])};
}

void put_u32(std::string& s, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        s[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
}

std::uint16_t get_u16(const std::string& s, std::size_t at) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(s[at]) << 8) |
                                      static_cast<unsigned char>(s[at + 1]));
}

// Replaces OIDs of objects created during the run by their order of first appearance.
class oid_masker {
  public:
    oid_masker(std::uint32_t floor, std::size_t& masked) : floor_(floor), masked_(masked) {}

    void at(std::string& body, std::size_t offset) {
        const std::uint32_t oid = get_u32(body, offset);
        if (oid < floor_ || oid == 0) return;
        auto [it, fresh] = seen_.try_emplace(oid, created_oid_marker + seen_.size() + 1);
        put_u32(body, offset, it->second);
        ++masked_;
    }

    // RowDescription: Int16 count, then per field: String name, Int32 table OID, Int16 column,
    // Int32 type OID, Int16 size, Int32 modifier, Int16 format. Malformed bodies stay as they are.
    void row_description(std::string& body) {
        if (body.size() < 2) return;
        const std::size_t n = get_u16(body, 0);
        std::size_t pos = 2;
        for (std::size_t i = 0; i < n; ++i) {
            const auto nul = body.find('\0', pos);
            if (nul == std::string::npos || nul + 1 + 18 > body.size()) return;
            pos = nul + 1;
            at(body, pos);      // table OID
            at(body, pos + 6);  // type OID
            pos += 18;
        }
    }

    // ParameterDescription: Int16 count, then one Int32 type OID each.
    void parameter_description(std::string& body) {
        if (body.size() < 2) return;
        const std::size_t n = get_u16(body, 0);
        if (body.size() != 2 + 4 * n) return;
        for (std::size_t i = 0; i < n; ++i)
            at(body, 2 + 4 * i);
    }

  private:
    std::uint32_t floor_;
    std::size_t& masked_;
    std::map<std::uint32_t, std::uint32_t> seen_;
};

// ErrorResponse/NoticeResponse body without its F, L and R fields; nullopt when malformed.
// `had_any` tells whether any of them was there.
std::optional<std::string> without_source_location(const std::string& body, bool& had_any) {
    std::string out;
    had_any = false;
    std::size_t pos = 0;
    while (pos < body.size() && body[pos] != '\0') {
        const char code = body[pos];
        const auto nul = body.find('\0', pos + 1);
        if (nul == std::string::npos) return std::nullopt;
        if (code == 'F' || code == 'L' || code == 'R')
            had_any = true;
        else
            out.append(body, pos, nul + 1 - pos);
        pos = nul + 1;
    }
    if (pos + 1 != body.size()) return std::nullopt;  // the terminator must end the body
    out += '\0';
    return out;
}

// True when `direct` and `proxied` differ only because shardgate wrote the proxied message
// itself, without Postgres' source location fields.
bool equal_but_source_location(const backend_message& direct, const backend_message& proxied) {
    if (direct.type != proxied.type || (direct.type != 'E' && direct.type != 'N')) return false;
    bool direct_had = false;
    bool proxied_had = false;
    const auto a = without_source_location(direct.body, direct_had);
    const auto b = without_source_location(proxied.body, proxied_had);
    return a && b && direct_had && !proxied_had && *a == *b;
}

std::string printable(std::string_view s, std::size_t max = 120) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\\' || c == '"') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c >= 0x20 && c != 0x7f) {
            out += static_cast<char>(c);  // UTF-8 bytes are kept: terminals show them
        } else {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    if (s.size() > max) out += "...(" + std::to_string(s.size()) + " bytes)";
    return out;
}

std::string hex_window(const std::string& s, std::size_t at) {
    const std::size_t from = at < 16 ? 0 : at - 16;
    const std::size_t to = std::min(s.size(), at + 16);
    std::ostringstream o;
    o << "[" << from << ".." << to << ")";
    static const char* hex = "0123456789abcdef";
    for (std::size_t i = from; i < to; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        o << (i == at ? " >" : " ") << hex[c >> 4] << hex[c & 15];
    }
    return o.str();
}

std::string describe_value(const std::optional<std::string>& v) {
    return v ? "\"" + printable(*v) + "\"" : std::string("NULL");
}

// One branch per message type: longer than most functions, but it reads as a table.
std::string describe_decoded(const be::backend_message& msg) {
    std::ostringstream o;
    std::visit(
        [&o](const auto& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, be::authentication>) {
                o << "Authentication code=" << m.code;
                for (const auto& mech : m.mechanisms)
                    o << " mech=" << mech;
                if (!m.data.empty()) o << " data=\"" << printable(m.data) << "\"";
            } else if constexpr (std::is_same_v<T, be::backend_key_data>) {
                o << "BackendKeyData pid=" << m.process_id << " key=" << m.secret_key;
            } else if constexpr (std::is_same_v<T, be::command_complete>) {
                o << "CommandComplete \"" << printable(m.tag) << "\"";
            } else if constexpr (std::is_same_v<T, be::copy_in_response> ||
                                 std::is_same_v<T, be::copy_out_response> ||
                                 std::is_same_v<T, be::copy_both_response>) {
                o << "Copy"
                  << (T::type == 'G'   ? "In"
                      : T::type == 'H' ? "Out"
                                       : "Both")
                  << "Response format=" << int{m.format} << " columns=[";
                for (auto f : m.column_formats)
                    o << f << ",";
                o << "]";
            } else if constexpr (std::is_same_v<T, pr::copy_data>) {
                o << "CopyData \"" << printable(m.data) << "\"";
            } else if constexpr (std::is_same_v<T, be::data_row>) {
                o << "DataRow [";
                for (std::size_t i = 0; i < m.values.size() && i < 20; ++i)
                    o << (i ? ", " : "") << describe_value(m.values[i]);
                if (m.values.size() > 20) o << ", ... " << m.values.size() << " values";
                o << "]";
            } else if constexpr (std::is_same_v<T, be::error_response> ||
                                 std::is_same_v<T, be::notice_response>) {
                o << (T::type == 'E' ? "ErrorResponse" : "NoticeResponse") << " {";
                for (const auto& [code, value] : m.fields)
                    o << " " << code << "=\"" << printable(value) << "\"";
                o << " }";
            } else if constexpr (std::is_same_v<T, be::function_call_response>) {
                o << "FunctionCallResponse " << describe_value(m.value);
            } else if constexpr (std::is_same_v<T, be::negotiate_protocol_version>) {
                o << "NegotiateProtocolVersion minor=" << m.newest_minor;
            } else if constexpr (std::is_same_v<T, be::notification_response>) {
                o << "NotificationResponse pid=" << m.pid << " channel=\"" << printable(m.channel)
                  << "\" payload=\"" << printable(m.payload) << "\"";
            } else if constexpr (std::is_same_v<T, be::parameter_description>) {
                o << "ParameterDescription [";
                for (auto t : m.types)
                    o << t << ",";
                o << "]";
            } else if constexpr (std::is_same_v<T, be::parameter_status>) {
                o << "ParameterStatus " << m.name << "=\"" << printable(m.value) << "\"";
            } else if constexpr (std::is_same_v<T, be::ready_for_query>) {
                o << "ReadyForQuery '" << m.status << "'";
            } else if constexpr (std::is_same_v<T, be::row_description>) {
                o << "RowDescription [";
                for (const auto& f : m.fields) {
                    o << " " << printable(f.name) << "(table=" << f.table_oid << " col=" << f.column
                      << " type=" << f.type_oid << " size=" << f.type_size
                      << " mod=" << f.type_modifier << " fmt=" << f.format << ")";
                }
                o << " ]";
            } else {
                constexpr char t = T::type;
                o << (t == '2'   ? "BindComplete"
                      : t == '3' ? "CloseComplete"
                      : t == 'I' ? "EmptyQueryResponse"
                      : t == 'n' ? "NoData"
                      : t == '1' ? "ParseComplete"
                      : t == 's' ? "PortalSuspended"
                      : t == 'c' ? "CopyDone"
                                 : "?");
            }
        },
        msg);
    return o.str();
}

}  // namespace

message_stream normalize(const message_stream& stream, const mask_rules& rules,
                         std::size_t* masked) {
    std::size_t count = 0;
    oid_masker oids(rules.created_oid_floor, count);
    message_stream out = stream;
    for (auto& m : out) {
        switch (m.type) {
            case 'K':  // BackendKeyData: Int32 pid, Int32 secret
                if (m.body.size() == 8) {
                    m.body.assign(8, '\0');
                    ++count;
                }
                break;
            case 'A':  // NotificationResponse: Int32 pid, String channel, String payload
                if (m.body.size() >= 4) {
                    put_u32(m.body, 0, 0);
                    ++count;
                }
                break;
            case 'R': {  // Authentication: Int32 code, then code-specific data
                const std::uint32_t code = m.body.size() >= 4 ? get_u32(m.body, 0) : 0;
                if (code == be::authentication::sasl_continue ||
                    code == be::authentication::sasl_final) {
                    m.body.resize(4);
                    ++count;
                }
                break;
            }
            case 'T':
                oids.row_description(m.body);
                break;
            case 't':
                oids.parameter_description(m.body);
                break;
            default:
                break;
        }
    }
    if (masked != nullptr) *masked += count;
    return out;
}

comparison compare_streams(const message_stream& direct, const message_stream& proxied,
                           const mask_rules& rules) {
    comparison result;
    const message_stream a = normalize(direct, rules);
    const message_stream b = normalize(proxied, rules, &result.masked_fields);
    const std::size_t n = std::max(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
        if (i < a.size() && i < b.size() && a[i] == b[i]) {
            ++result.identical;
            continue;
        }
        if (i < a.size() && i < b.size() && equal_but_source_location(a[i], b[i])) {
            ++result.identical;
            ++result.without_source_location;
            continue;
        }
        stream_mismatch mm;
        mm.index = i;
        // Show the messages as received (unmasked): masks only decide what counts as equal.
        mm.direct = i < direct.size() ? describe(direct[i]) : "(none)";
        mm.proxied = i < proxied.size() ? describe(proxied[i]) : "(none)";
        if (i >= a.size() || i >= b.size()) {
            mm.detail = "the direct stream has " + std::to_string(a.size()) +
                        " messages, the proxied one " + std::to_string(b.size());
        } else if (a[i].type != b[i].type) {
            mm.detail =
                std::string("message types differ: '") + a[i].type + "' vs '" + b[i].type + "'";
        } else {
            const auto& x = a[i].body;
            const auto& y = b[i].body;
            std::size_t at = 0;
            while (at < x.size() && at < y.size() && x[at] == y[at])
                ++at;
            mm.detail = "bodies (" + std::to_string(x.size()) + " vs " + std::to_string(y.size()) +
                        " bytes, after masking) first differ at offset " + std::to_string(at) +
                        "\n    direct : " + hex_window(x, at) +
                        "\n    proxied: " + hex_window(y, at);
        }
        result.mismatch = std::move(mm);
        break;
    }
    return result;
}

std::string describe(const backend_message& m) {
    const pr::frame f{m.type,
                      std::span(reinterpret_cast<const std::byte*>(m.body.data()), m.body.size())};
    auto decoded = be::decode_backend(f);
    std::string text = decoded ? describe_decoded(*decoded)
                               : "undecodable (" + std::string(pr::to_string(decoded.error())) +
                                     ") \"" + printable(m.body) + "\"";
    return "'" + std::string(1, m.type) + "' " + text + " (" + std::to_string(m.body.size()) +
           " bytes)";
}

std::string format_mismatch(const std::string& name, const stream_mismatch& m) {
    return "case " + name + ": first difference at message " + std::to_string(m.index) +
           "\n  direct : " + m.direct + "\n  proxied: " + m.proxied + "\n  " + m.detail;
}

}  // namespace shardgate::difftest
