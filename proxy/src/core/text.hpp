// Small text helpers shared by the proxy's sessions, relays and admin console.
#pragma once

#include <cctype>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace shardgate::proxy {

// ASCII lower case (SQL keywords, parameter names); other bytes unchanged.
inline std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (auto& ch : out)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

// The C string at the start of a message body and what follows its NUL; {"", {}} when there is
// no NUL (a malformed body).
inline std::pair<std::string_view, std::span<const std::byte>> cstring(
    std::span<const std::byte> body) {
    const auto* p = reinterpret_cast<const char*>(body.data());
    for (std::size_t i = 0; i < body.size(); ++i) {
        if (p[i] == '\0') return {std::string_view(p, i), body.subspan(i + 1)};
    }
    return {{}, {}};
}

}  // namespace shardgate::proxy
