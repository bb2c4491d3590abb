// Postgres md5 auth: hashes captured from a real Postgres 15, salted responses, verification.
#include <doctest/doctest.h>

#include <array>
#include <cctype>
#include <cstddef>
#include <string>

#include "shardgate/protocol/md5.hpp"

using namespace shardgate::protocol::auth;

namespace {

constexpr std::array<std::byte, 4> test_salt{std::byte{0x01}, std::byte{0x02}, std::byte{0xfe},
                                             std::byte{0xff}};

}  // namespace

TEST_CASE("md5_hash_password reproduces pg_authid of a real Postgres 15") {
    // Captured from Postgres 15.18: SET password_encryption = 'md5'; CREATE ROLE ... PASSWORD;
    // SELECT rolpassword FROM pg_authid.
    CHECK(md5_hash_password("md5user", "pencil") == "md50098e7fab7b4d8d091067152a80b3f12");
    CHECK(md5_hash_password("md5user2", "correct horse") == "md5c5230f54fae526f8e12a4fa776bc5024");
    // The user name is the salt: same password, different user, different hash.
    CHECK(md5_hash_password("other", "pencil") != md5_hash_password("md5user", "pencil"));
}

TEST_CASE("md5_client_response is what libpq sends for a given salt") {
    // Computed independently (Python hashlib) and accepted by Postgres 15.18 with its own salts.
    const std::string stored = md5_hash_password("md5user", "pencil");
    const std::string response = md5_client_response(stored, test_salt);
    CHECK(response == "md5957cb403e19f3a67eab2e4db832cf313");
    CHECK(response.size() == 35);
    // A different salt gives a different response (no replay across connections).
    auto other_salt = test_salt;
    other_salt[0] = std::byte{0x00};
    CHECK(md5_client_response(stored, other_salt) != response);
}

TEST_CASE("md5_verify accepts the right response only") {
    const std::string stored = md5_hash_password("md5user", "pencil");
    const std::string good = md5_client_response(stored, test_salt);
    CHECK(md5_verify(stored, test_salt, good));

    const std::string wrong_password =
        md5_client_response(md5_hash_password("md5user", "pencil2"), test_salt);
    CHECK_FALSE(md5_verify(stored, test_salt, wrong_password));
    auto other_salt = test_salt;
    other_salt[3] = std::byte{0x00};
    CHECK_FALSE(md5_verify(stored, other_salt, good));
    CHECK_FALSE(md5_verify(stored, test_salt, ""));
    CHECK_FALSE(md5_verify(stored, test_salt, good.substr(0, 34)));
    CHECK_FALSE(md5_verify(stored, test_salt, good + "0"));
    CHECK_FALSE(md5_verify(stored, test_salt, std::string(good.size(), 'x')));
    std::string upper = good;
    for (char& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK_FALSE(md5_verify(stored, test_salt, upper));
    // Sending the stored hash itself is not a valid response.
    CHECK_FALSE(md5_verify(stored, test_salt, stored));
}

TEST_CASE("stored md5 hashes must look like Postgres' (md5 + 32 lower-case hex digits)") {
    CHECK(is_md5_hash("md50098e7fab7b4d8d091067152a80b3f12"));
    CHECK_FALSE(is_md5_hash("md50098E7FAB7B4D8D091067152A80B3F12"));  // upper case
    CHECK_FALSE(is_md5_hash("md50098e7fab7b4d8d091067152a80b3f1"));   // too short
    CHECK_FALSE(is_md5_hash("md50098e7fab7b4d8d091067152a80b3f123"));
    CHECK_FALSE(is_md5_hash("xyz0098e7fab7b4d8d091067152a80b3f12"));
    CHECK_FALSE(is_md5_hash("md50098e7fab7b4d8d091067152a80b3fg2"));
    CHECK_FALSE(is_md5_hash("SCRAM-SHA-256$4096:abc$def:ghi"));
    CHECK(md5_client_response("pencil", test_salt).empty());
    CHECK_FALSE(md5_verify("pencil", test_salt, md5_client_response("pencil", test_salt)));
    CHECK_FALSE(md5_verify("", test_salt, ""));
}
