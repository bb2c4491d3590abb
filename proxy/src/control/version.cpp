// Version string of the shardgate build.
#include "control/version.hpp"

namespace shardgate::proxy {
std::string_view version() {
    return "0.1.0";
}
}  // namespace shardgate::proxy
