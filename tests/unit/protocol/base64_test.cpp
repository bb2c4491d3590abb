// Base64: RFC 4648 vectors, round trips, and strict rejection of non-canonical input.
#include <doctest/doctest.h>

#include <string>

#include "shardgate/protocol/base64.hpp"

using namespace shardgate::protocol::auth;

TEST_CASE("base64 encodes the RFC 4648 section 10 vectors") {
    CHECK(base64_encode(std::string_view("")) == "");
    CHECK(base64_encode(std::string_view("f")) == "Zg==");
    CHECK(base64_encode(std::string_view("fo")) == "Zm8=");
    CHECK(base64_encode(std::string_view("foo")) == "Zm9v");
    CHECK(base64_encode(std::string_view("foob")) == "Zm9vYg==");
    CHECK(base64_encode(std::string_view("fooba")) == "Zm9vYmE=");
    CHECK(base64_encode(std::string_view("foobar")) == "Zm9vYmFy");
    CHECK(base64_encode(std::string_view("n,,")) == "biws");  // SCRAM's c= without binding
    CHECK(base64_encode(std::string_view("y,,")) == "eSws");
}

TEST_CASE("base64 decodes the RFC 4648 vectors") {
    CHECK(base64_decode("") == std::string());
    CHECK(base64_decode("Zg==") == std::string("f"));
    CHECK(base64_decode("Zm8=") == std::string("fo"));
    CHECK(base64_decode("Zm9v") == std::string("foo"));
    CHECK(base64_decode("Zm9vYmFy") == std::string("foobar"));
    CHECK(base64_decode("+/+/") == std::string("\xfb\xff\xbf"));
}

TEST_CASE("base64 round-trips every byte value and every length up to 64") {
    std::string all;
    for (int i = 0; i < 256; ++i)
        all += static_cast<char>(i);
    CHECK(base64_decode(base64_encode(all)) == all);
    for (std::size_t n = 0; n <= 64; ++n) {
        const std::string s = all.substr(200 - n, n);
        const std::string enc = base64_encode(s);
        CHECK(enc.size() == (n + 2) / 3 * 4);
        CHECK(base64_decode(enc) == s);
    }
    const std::uint8_t raw[] = {0, 1, 2, 0xff};
    CHECK(base64_encode(std::span<const std::uint8_t>(raw)) == "AAEC/w==");
}

TEST_CASE("base64 decoding is strict") {
    const char* bad[] = {
        "Zg",        // missing padding
        "Zg=",       // short padding
        "Zm9vY",     // length not a multiple of 4
        "Zg==Zg==",  // padding in the middle
        "Z===",      // three pad characters
        "====",      // only padding
        "=Zg=",      // padding first
        "Zm9v\n",    // whitespace
        "Zm 9",      // space
        "Zm9-",      // URL-safe alphabet
        "Zm9_",      // URL-safe alphabet
        "Zh==",      // non-zero pad bits ("Zg==" is the canonical "f")
        "Zm9=",      // non-zero pad bits ("Zm8=" is the canonical "fo")
    };
    for (const char* text : bad) {
        CAPTURE(text);
        CHECK_FALSE(base64_decode(text).has_value());
    }
    CHECK_FALSE(base64_decode(std::string_view("Zm8\0", 4)).has_value());
    CHECK_FALSE(base64_decode(std::string_view("Zm\xc3\xa9", 4)).has_value());
}
