// Postgres "md5" password authentication: the pg_authid hash, the client's salted response, checks.
// Protocol: https://www.postgresql.org/docs/15/protocol-flow.html (AuthenticationMD5Password)
// Stored form: https://www.postgresql.org/docs/15/catalog-pg-authid.html (rolpassword)
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace shardgate::protocol::auth {

// "md5" + hex(md5(password + user)): what pg_authid.rolpassword holds with
// password_encryption = 'md5' (35 characters, lower-case hex).
std::string md5_hash_password(std::string_view user, std::string_view password);

// True when `s` looks like a stored md5 hash as Postgres recognises it: "md5" followed by exactly
// 32 lower-case hex digits (get_password_type() in src/backend/libpq/crypt.c).
bool is_md5_hash(std::string_view s);

// What the client sends in its PasswordMessage (without the trailing NUL) after
// AuthenticationMD5Password with `salt`: "md5" + hex(md5(hex32 + salt)), where hex32 is the
// stored hash without its "md5" prefix. Knowing the stored hash is enough to log in (that is how
// a pooler authenticates to the server with only pg_authid's value). Returns "" when
// `stored_md5_hash` is not a valid stored md5 hash.
std::string md5_client_response(std::string_view stored_md5_hash, std::array<std::byte, 4> salt);

// Checks a client's response against the stored hash in constant time (for equal lengths).
// False when the stored hash is not a valid md5 hash. On false, Postgres reports FATAL 28P01
// `password authentication failed for user "<name>"`.
bool md5_verify(std::string_view stored_md5_hash, std::array<std::byte, 4> salt,
                std::string_view client_response);

}  // namespace shardgate::protocol::auth
