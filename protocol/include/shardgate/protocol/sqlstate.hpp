// SQLSTATE codes shardgate sends; names follow Postgres' errcodes.txt.
// https://www.postgresql.org/docs/15/errcodes-appendix.html
#pragma once

#include <string_view>

namespace shardgate::protocol::sqlstate {

inline constexpr std::string_view successful_completion = "00000";
inline constexpr std::string_view connection_exception = "08000";
inline constexpr std::string_view connection_failure = "08006";
inline constexpr std::string_view sqlclient_unable_to_establish_sqlconnection = "08001";
inline constexpr std::string_view sqlserver_rejected_establishment_of_sqlconnection = "08004";
inline constexpr std::string_view protocol_violation = "08P01";
inline constexpr std::string_view feature_not_supported = "0A000";
inline constexpr std::string_view invalid_authorization_specification = "28000";
inline constexpr std::string_view invalid_password = "28P01";
inline constexpr std::string_view invalid_catalog_name = "3D000";  // unknown database
inline constexpr std::string_view too_many_connections = "53300";
inline constexpr std::string_view program_limit_exceeded = "54000";
inline constexpr std::string_view query_canceled = "57014";
inline constexpr std::string_view admin_shutdown = "57P01";
inline constexpr std::string_view cannot_connect_now = "57P03";
inline constexpr std::string_view internal_error = "XX000";

}  // namespace shardgate::protocol::sqlstate
