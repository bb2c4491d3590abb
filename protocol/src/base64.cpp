// Base64 encoding and strict decoding (RFC 4648 section 4) without OpenSSL's lenient BIO decoder.
#include "shardgate/protocol/base64.hpp"

#include <array>

namespace shardgate::protocol::auth {
namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::uint8_t invalid = 0xff;

constexpr std::array<std::uint8_t, 256> make_decode_table() {
    std::array<std::uint8_t, 256> t{};
    for (auto& v : t)
        v = invalid;
    for (std::size_t i = 0; i < alphabet.size(); ++i) {
        t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::uint8_t>(i);
    }
    return t;
}

constexpr std::array<std::uint8_t, 256> decode_table = make_decode_table();

std::string encode(const std::uint8_t* p, std::size_t n) {
    std::string out;
    out.reserve((n + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        const std::uint32_t v =
            (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (n - i == 1) {
        const std::uint32_t v = std::uint32_t{p[i]} << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (n - i == 2) {
        const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
    return encode(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

std::string base64_encode(std::span<const std::uint8_t> bytes) {
    return encode(bytes.data(), bytes.size());
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        const std::size_t data_chars = last ? 4 - pad : 4;
        std::uint32_t v = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            std::uint8_t d = 0;
            if (j < data_chars) {
                d = decode_table[static_cast<unsigned char>(text[i + j])];
                if (d == invalid) return std::nullopt;  // includes a stray '=' in the middle
            }
            v = (v << 6) | d;
        }
        out += static_cast<char>((v >> 16) & 0xff);
        if (data_chars >= 3) out += static_cast<char>((v >> 8) & 0xff);
        if (data_chars == 4) out += static_cast<char>(v & 0xff);
        // Bits encoded but not part of any output byte must be zero (canonical encoding).
        if (data_chars == 2 && (v & 0xffff) != 0) return std::nullopt;
        if (data_chars == 3 && (v & 0xff) != 0) return std::nullopt;
    }
    return out;
}

}  // namespace shardgate::protocol::auth
