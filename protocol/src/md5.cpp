// Postgres md5 password hashing and challenge responses, on OpenSSL's EVP digest API.
#include "shardgate/protocol/md5.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace shardgate::protocol::auth {
namespace {

constexpr std::string_view md5_prefix = "md5";
constexpr std::size_t md5_hex_len = 32;

// Lower-case hex of md5(data); Postgres' pg_md5_hash() output. Empty on an OpenSSL failure.
std::string md5_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1 || len != 16) {
        return {};
    }
    constexpr std::string_view hex = "0123456789abcdef";
    std::string out;
    out.reserve(md5_hex_len);
    for (unsigned int i = 0; i < len; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0x0f];
    }
    return out;
}

}  // namespace

std::string md5_hash_password(std::string_view user, std::string_view password) {
    std::string input;
    input.reserve(password.size() + user.size());
    input.append(password).append(user);
    std::string hex = md5_hex(input);
    OPENSSL_cleanse(input.data(), input.size());
    if (hex.empty()) return {};
    return std::string(md5_prefix) + hex;
}

bool is_md5_hash(std::string_view s) {
    if (s.size() != md5_prefix.size() + md5_hex_len || !s.starts_with(md5_prefix)) return false;
    for (char c : s.substr(md5_prefix.size())) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

std::string md5_client_response(std::string_view stored_md5_hash, std::array<std::byte, 4> salt) {
    if (!is_md5_hash(stored_md5_hash)) return {};
    std::string input(stored_md5_hash.substr(md5_prefix.size()));
    for (std::byte b : salt)
        input += static_cast<char>(b);
    std::string hex = md5_hex(input);
    if (hex.empty()) return {};
    return std::string(md5_prefix) + hex;
}

bool md5_verify(std::string_view stored_md5_hash, std::array<std::byte, 4> salt,
                std::string_view client_response) {
    const std::string expected = md5_client_response(stored_md5_hash, salt);
    if (expected.empty() || client_response.size() != expected.size()) return false;
    return CRYPTO_memcmp(expected.data(), client_response.data(), expected.size()) == 0;
}

}  // namespace shardgate::protocol::auth
