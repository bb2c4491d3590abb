// Version string of the shardgate build.
#pragma once
#include <string_view>

namespace shardgate::proxy {
std::string_view version();
}  // namespace shardgate::proxy
