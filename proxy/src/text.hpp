// Small text helpers shared by the proxy's sessions, relays and admin console.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace shardgate::proxy {

// ASCII lower case (SQL keywords, parameter names); other bytes unchanged.
inline std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (auto& ch : out)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

}  // namespace shardgate::proxy
