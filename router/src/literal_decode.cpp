// Literal values as Postgres sees them: '' undoubled, E'' and U&'' escapes, dollar bodies.
// https://www.postgresql.org/docs/15/sql-syntax-lexical.html#SQL-SYNTAX-CONSTANTS
#include <cstddef>

#include "sql_scanner.hpp"

namespace shardgate::router::detail {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Reads exactly `digits` hex digits at s[i..]; -1 if they are not all there.
long hex_run(std::string_view s, std::size_t i, int digits) {
    if (i + static_cast<std::size_t>(digits) > s.size()) return -1;
    long v = 0;
    for (int k = 0; k < digits; ++k) {
        const int h = hex_value(s[i + static_cast<std::size_t>(k)]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

bool is_high_surrogate(long c) {
    return c >= 0xD800 && c <= 0xDBFF;
}
bool is_low_surrogate(long c) {
    return c >= 0xDC00 && c <= 0xDFFF;
}

std::size_t utf8_encode(long cp, char* buf) {
    const auto u = static_cast<unsigned long>(cp);
    auto b = [](unsigned long v) { return static_cast<char>(v); };
    if (u < 0x80) {
        buf[0] = b(u);
        return 1;
    }
    if (u < 0x800) {
        buf[0] = b(0xC0 | (u >> 6));
        buf[1] = b(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        buf[0] = b(0xE0 | (u >> 12));
        buf[1] = b(0x80 | ((u >> 6) & 0x3F));
        buf[2] = b(0x80 | (u & 0x3F));
        return 3;
    }
    buf[0] = b(0xF0 | (u >> 18));
    buf[1] = b(0x80 | ((u >> 12) & 0x3F));
    buf[2] = b(0x80 | ((u >> 6) & 0x3F));
    buf[3] = b(0x80 | (u & 0x3F));
    return 4;
}

void put_utf8(std::vector<char>& out, long cp) {
    char buf[4];
    out.insert(out.end(), buf, buf + utf8_encode(cp, buf));
}

// Strict UTF-8 (no overlongs, no surrogates, max U+10FFFF), as pg_verifymbstr for UTF8.
bool valid_utf8(const char* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        const auto c = static_cast<unsigned char>(p[i]);
        if (c == 0) return false;
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        unsigned long cp = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(p[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
            return false;
        }
        i += len;
    }
    return true;
}

// One E'' escape at s[i] == '\\'; appends its bytes, returns the index after it or 0 on error.
// high: a pending high surrogate from \u or \U (0 if none).
std::size_t escape(std::string_view s, std::size_t i, std::vector<char>& out, long& high,
                   bool& raw_bytes) {
    if (i + 1 >= s.size()) return 0;
    const char c = s[i + 1];
    long cp = -1;
    std::size_t next = i + 2;
    if (c == 'u' || c == 'U') {
        const int digits = c == 'u' ? 4 : 8;
        cp = hex_run(s, i + 2, digits);
        if (cp < 0) return 0;
        next = i + 2 + static_cast<std::size_t>(digits);
        if (high != 0) {
            if (!is_low_surrogate(cp)) return 0;
            cp = 0x10000 + ((high - 0xD800) << 10) + (cp - 0xDC00);
            high = 0;
        } else if (is_high_surrogate(cp)) {
            high = cp;
            return next;
        } else if (is_low_surrogate(cp)) {
            return 0;
        }
        if (cp == 0 || cp > 0x10FFFF) return 0;
        put_utf8(out, cp);
        return next;
    }
    if (high != 0) return 0;  // a high surrogate must be followed by its low half
    if (c >= '0' && c <= '7') {
        long v = 0;
        std::size_t k = i + 1;
        for (int d = 0; d < 3 && k < s.size() && s[k] >= '0' && s[k] <= '7'; ++d, ++k) {
            v = v * 8 + (s[k] - '0');
        }
        out.push_back(static_cast<char>(v & 0xFF));
        raw_bytes = true;
        return k;
    }
    if (c == 'x' && i + 2 < s.size() && hex_value(s[i + 2]) >= 0) {
        long v = hex_value(s[i + 2]);
        next = i + 3;
        if (next < s.size() && hex_value(s[next]) >= 0) v = v * 16 + hex_value(s[next++]);
        out.push_back(static_cast<char>(v));
        raw_bytes = true;
        return next;
    }
    switch (c) {
        case 'b':
            out.push_back('\b');
            break;
        case 'f':
            out.push_back('\f');
            break;
        case 'n':
            out.push_back('\n');
            break;
        case 'r':
            out.push_back('\r');
            break;
        case 't':
            out.push_back('\t');
            break;
        default:  // \\ \' and any other character stand for themselves (PG15 has no \v)
            out.push_back(c);
            if (static_cast<unsigned char>(c) >= 0x80) raw_bytes = true;
            break;
    }
    return next;
}

// U&'' escapes (PG's str_udeescape), in place over out[from..]: never longer than the input.
shape_error unicode_unescape(std::vector<char>& out, std::size_t from, char esc) {
    const std::string_view s(out.data() + from, out.size() - from);
    std::size_t w = from;
    long high = 0;
    for (std::size_t i = 0; i < s.size();) {
        if (s[i] != esc) {
            if (high != 0) return shape_error::invalid_unicode_escape;
            out[w++] = s[i++];
            continue;
        }
        if (i + 1 < s.size() && s[i + 1] == esc) {
            if (high != 0) return shape_error::invalid_unicode_escape;
            out[w++] = esc;
            i += 2;
            continue;
        }
        long cp = hex_run(s, i + 1, 4);
        std::size_t next = i + 5;
        if (cp < 0 && i + 1 < s.size() && s[i + 1] == '+') {
            cp = hex_run(s, i + 2, 6);
            next = i + 8;
        }
        if (cp < 0) return shape_error::invalid_unicode_escape;
        if (high != 0) {
            if (!is_low_surrogate(cp)) return shape_error::invalid_unicode_escape;
            cp = 0x10000 + ((high - 0xD800) << 10) + (cp - 0xDC00);
            high = 0;
        } else if (is_high_surrogate(cp)) {
            high = cp;
            i = next;
            continue;
        } else if (is_low_surrogate(cp)) {
            return shape_error::invalid_unicode_escape;
        }
        if (cp == 0 || cp > 0x10FFFF) return shape_error::invalid_unicode_escape;
        // In place: an escape takes at least 5 bytes and encodes to at most 4.
        const std::size_t len = utf8_encode(cp, out.data() + w);
        w += len;
        i = next;
    }
    if (high != 0) return shape_error::invalid_unicode_escape;
    out.resize(w);
    return shape_error::none;
}

}  // namespace

shape_error sql_scanner::decode(const token& t, std::vector<char>& out) const {
    const std::string_view text = sql_.substr(t.begin, t.end - t.begin);
    if (t.kind == token_kind::param) {
        out.insert(out.end(), text.begin() + 1, text.end());
        return shape_error::none;
    }
    switch (t.lit) {
        case literal_kind::integer:
        case literal_kind::numeric:
        case literal_kind::param:
            out.insert(out.end(), text.begin(), text.end());
            return shape_error::none;
        case literal_kind::dollar: {
            const std::size_t tag = text.find('$', 1) + 1;  // "$tag$" length
            out.insert(out.end(), text.begin() + static_cast<std::ptrdiff_t>(tag),
                       text.end() - static_cast<std::ptrdiff_t>(tag));
            return shape_error::none;
        }
        default:
            break;
    }
    const std::size_t from = out.size();
    std::uint32_t q = t.begin;
    if (t.lit == literal_kind::bit_string) {
        out.push_back(sql_[t.begin] == 'b' || sql_[t.begin] == 'B' ? 'b' : 'x');
        q += 1;
    } else if (t.lit == literal_kind::escape_string) {
        q += 1;
    } else if (t.lit == literal_kind::unicode) {
        q += 2;
    }
    long high = 0;
    bool raw_bytes = false;
    while (true) {
        const std::uint32_t e = segment_end(q, t.lit);
        const std::string_view body = sql_.substr(q + 1, e - 1 - (q + 1));
        for (std::size_t i = 0; i < body.size();) {
            const char c = body[i];
            if (c == '\'' && t.lit != literal_kind::bit_string) {
                out.push_back('\'');  // '' -> '
                i += 2;
            } else if (c == '\\' && t.lit == literal_kind::escape_string) {
                i = escape(body, i, out, high, raw_bytes);
                if (i == 0) return shape_error::invalid_escape;
            } else {
                if (high != 0) return shape_error::invalid_escape;
                out.push_back(c);
                ++i;
            }
        }
        const std::uint32_t nq = continuation(e);
        if (nq == 0 || nq >= t.end) break;
        q = nq;
    }
    if (high != 0) return shape_error::invalid_escape;
    if (t.lit == literal_kind::unicode) return unicode_unescape(out, from, t.uescape);
    // Octal/hex escapes can build any byte: Postgres then checks the string's encoding.
    if (raw_bytes && !valid_utf8(out.data() + from, out.size() - from)) {
        return shape_error::invalid_escape;
    }
    return shape_error::none;
}

}  // namespace shardgate::router::detail
