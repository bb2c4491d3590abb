// SCRAM-SHA-256 for Postgres: key math, SASLprep fast path, verifiers, server and client state.
// One file on purpose (~560 lines): server and client share the attribute parsers, key math and
// constant-time helpers of the anonymous namespace below; splitting them needs an internal header.
// Parsing follows src/backend/libpq/auth-scram.c and src/interfaces/libpq/fe-auth-scram.c
// (Postgres 15); error wording was checked against a running Postgres 15.18.
#include "shardgate/protocol/scram.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cassert>
#include <charconv>

#include "shardgate/protocol/base64.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::protocol::auth {
namespace {

const unsigned char* bytes_of(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

std::string_view as_view(const scram_key& k) {
    return {reinterpret_cast<const char*>(k.data()), k.size()};
}

// On an OpenSSL failure (allocation) the output stays all zero, which never authenticates.
scram_key hmac_sha256(std::string_view key, std::string_view message) {
    scram_key out{};
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes_of(message),
             message.size(), out.data(), &len) == nullptr ||
        len != out.size()) {
        out.fill(0);
    }
    return out;
}

scram_key sha256(std::string_view data) {
    scram_key out{};
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
        len != out.size()) {
        out.fill(0);
    }
    return out;
}

// Keys from an already SASLprep'ed password.
scram_keys derive_prepared(std::string_view prepared, std::string_view salt, int iterations) {
    assert(iterations >= 1);
    scram_key salted{};
    if (PKCS5_PBKDF2_HMAC(prepared.data(), static_cast<int>(prepared.size()), bytes_of(salt),
                          static_cast<int>(salt.size()), std::max(iterations, 1), EVP_sha256(),
                          static_cast<int>(salted.size()), salted.data()) != 1) {
        return {};
    }
    scram_keys keys{hmac_sha256(as_view(salted), "Client Key"),
                    hmac_sha256(as_view(salted), "Server Key")};
    OPENSSL_cleanse(salted.data(), salted.size());
    return keys;
}

bool equal_ct(const scram_key& a, const scram_key& b) {
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// RFC 5802 "printable": %x21-2B / %x2D-7E (printable ASCII except ',').
bool is_scram_printable(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return c >= 0x21 && c <= 0x7e && c != ','; });
}

// Postgres' sanitize_char(): a printable character in single quotes, anything else as 0x%02x.
// The end of the input shows as 0x00, as it does for Postgres' NUL-terminated strings.
std::string sanitize_char(char c) {
    if (c >= 0x21 && c <= 0x7e) return std::string{'\'', c, '\''};
    constexpr std::string_view hex = "0123456789abcdef";
    const auto u = static_cast<unsigned char>(c);
    return std::string{'0', 'x', hex[u >> 4], hex[u & 0x0f]};
}

// Plain decimal digits only (from_chars takes no '+' or spaces; a '-' ends up below 1).
std::optional<int> parse_positive_int(std::string_view s) {
    int v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v < 1) return std::nullopt;
    return v;
}

std::optional<scram_key> decode_key(std::string_view b64) {
    auto raw = base64_decode(b64);
    if (!raw || raw->size() != scram_key_len) return std::nullopt;
    scram_key k{};
    std::copy(raw->begin(), raw->end(), k.begin());
    return k;
}

scram_error malformed(std::string detail) {
    return {scram_error_kind::malformed, "malformed SCRAM message", std::move(detail)};
}

scram_error out_of_order() {
    return {scram_error_kind::internal, "invalid SCRAM exchange state", {}};
}

// Postgres checks both before parsing: an empty SASL payload, and one with a NUL inside.
std::optional<scram_error> check_payload(std::string_view input) {
    if (input.empty()) return malformed("The message is empty.");
    if (input.find('\0') != std::string_view::npos)
        return malformed("Message length does not match input length.");
    return std::nullopt;
}

// Reads "attr=value" items separated by ','. Like Postgres, a value runs to the next ',' or the
// end, and the ',' after it is consumed (so one trailing comma is tolerated). Error wording is
// the backend's (auth-scram.c) unless `libpq_wording` is set (fe-auth-scram.c).
class attr_reader {
  public:
    attr_reader(std::string_view input, bool libpq_wording)
        : input_(input), rest_(input), libpq_wording_(libpq_wording) {}

    [[nodiscard]] bool at_end() const { return rest_.empty(); }
    [[nodiscard]] char peek() const { return rest_.empty() ? '\0' : rest_.front(); }
    void skip(std::size_t n) { rest_.remove_prefix(std::min(n, rest_.size())); }
    [[nodiscard]] std::size_t offset() const { return input_.size() - rest_.size(); }
    [[nodiscard]] std::string_view rest() const { return rest_; }
    [[nodiscard]] const scram_error& error() const { return error_; }

    // Postgres' read_attr_value(): the value of `attr`, which must come next.
    std::optional<std::string_view> value_of(char attr) {
        const std::string a(1, attr);
        if (peek() != attr) {
            return fail(libpq_wording_
                            ? "malformed SCRAM message (attribute \"" + a + "\" expected)"
                            : "Expected attribute \"" + a + "\" but found \"" +
                                  sanitize_char(peek()) + "\".");
        }
        if (rest_.size() < 2 || rest_[1] != '=') {
            return fail(libpq_wording_
                            ? "malformed SCRAM message (expected character \"=\" for attribute \"" +
                                  a + "\")"
                            : "Expected character \"=\" for attribute \"" + a + "\".");
        }
        return take_value();
    }

    // Postgres' read_any_attr(): any "ALPHA=value"; its name goes to `attr`.
    std::optional<std::string_view> any(char& attr) {
        if (rest_.empty()) return fail("Attribute expected, but found end of string.");
        attr = rest_.front();
        if (!((attr >= 'A' && attr <= 'Z') || (attr >= 'a' && attr <= 'z'))) {
            return fail("Attribute expected, but found invalid character \"" + sanitize_char(attr) +
                        "\".");
        }
        if (rest_.size() < 2 || rest_[1] != '=')
            return fail("Expected character \"=\" for attribute \"" + std::string(1, attr) + "\".");
        return take_value();
    }

  private:
    std::optional<std::string_view> fail(std::string detail) {
        error_ = libpq_wording_ ? scram_error{scram_error_kind::malformed, std::move(detail), {}}
                                : malformed(std::move(detail));
        return std::nullopt;
    }

    std::string_view take_value() {
        rest_.remove_prefix(2);
        const auto comma = rest_.find(',');
        const std::string_view value = rest_.substr(0, comma);
        rest_.remove_prefix(comma == std::string_view::npos ? rest_.size() : comma + 1);
        return value;
    }

    std::string_view input_;
    std::string_view rest_;
    bool libpq_wording_;
    scram_error error_;
};

// Per-process secret for mock salts (see scram_server::mock).
std::string_view process_mock_secret() {
    static const std::string secret = [] {
        std::string s(32, '\0');
        // On failure the secret stays zero; scram_random_nonce() then fails too and every
        // exchange ends with `internal` before a salt is shown.
        (void)RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(s.size()));
        return s;
    }();
    return secret;
}

}  // namespace

// ---- SASLprep ---------------------------------------------------------------------------------

saslprep_input classify_saslprep(std::string_view password) {
    std::size_t i = 0;
    bool ascii = true;
    while (i < password.size()) {
        const auto c = static_cast<unsigned char>(password[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        ascii = false;
        // Well-formed UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else {
            return saslprep_input::invalid_utf8;
        }
        if (i + len > password.size()) return saslprep_input::invalid_utf8;
        for (std::size_t j = 1; j < len; ++j) {
            const auto b = static_cast<unsigned char>(password[i + j]);
            if (b < (j == 1 ? lo : 0x80) || b > (j == 1 ? hi : 0xbf))
                return saslprep_input::invalid_utf8;
        }
        i += len;
    }
    return ascii ? saslprep_input::ascii : saslprep_input::unicode;
}

std::string saslprep(std::string_view password) {
    // ascii and invalid_utf8: exactly what Postgres hashes (its ASCII fast path returns the input
    // unchanged, control characters included; invalid UTF-8 falls back to the raw bytes).
    // unicode: the header's LIMITATION (no NFKC tables here): right for normalized passwords only.
    return std::string(password);
}

// ---- Key math ---------------------------------------------------------------------------------

scram_keys scram_derive_keys(std::string_view password, std::string_view salt, int iterations) {
    std::string prepared = saslprep(password);
    scram_keys keys = derive_prepared(prepared, salt, iterations);
    OPENSSL_cleanse(prepared.data(), prepared.size());
    return keys;
}

scram_key scram_stored_key(const scram_key& client_key) {
    return sha256(as_view(client_key));
}

scram_key scram_client_proof(const scram_key& client_key, std::string_view auth_message) {
    scram_key proof = hmac_sha256(as_view(scram_stored_key(client_key)), auth_message);
    for (std::size_t i = 0; i < proof.size(); ++i)
        proof[i] ^= client_key[i];
    return proof;
}

scram_key scram_server_signature(const scram_key& server_key, std::string_view auth_message) {
    return hmac_sha256(as_view(server_key), auth_message);
}

// ---- Verifier ---------------------------------------------------------------------------------

std::optional<scram_verifier> scram_verifier::parse(std::string_view text) {
    constexpr std::string_view scheme = "SCRAM-SHA-256$";
    if (!text.starts_with(scheme)) return std::nullopt;
    text.remove_prefix(scheme.size());
    const auto colon1 = text.find(':');
    const auto dollar = text.find('$');
    if (colon1 == std::string_view::npos || dollar == std::string_view::npos || dollar < colon1)
        return std::nullopt;
    const auto colon2 = text.find(':', dollar);
    if (colon2 == std::string_view::npos) return std::nullopt;

    scram_verifier v;
    auto iterations = parse_positive_int(text.substr(0, colon1));
    auto salt = base64_decode(text.substr(colon1 + 1, dollar - colon1 - 1));
    auto stored = decode_key(text.substr(dollar + 1, colon2 - dollar - 1));
    auto server = decode_key(text.substr(colon2 + 1));
    if (!iterations || !salt || salt->empty() || !stored || !server) return std::nullopt;
    v.iterations = *iterations;
    v.salt = std::move(*salt);
    v.stored_key = *stored;
    v.server_key = *server;
    return v;
}

scram_verifier scram_verifier::from_password(std::string_view password, std::string_view salt,
                                             int iterations) {
    const scram_keys keys = scram_derive_keys(password, salt, iterations);
    return {iterations, std::string(salt), scram_stored_key(keys.client_key), keys.server_key};
}

std::string scram_verifier::to_string() const {
    return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" + base64_encode(salt) + "$" +
           base64_encode(as_view(stored_key)) + ":" + base64_encode(as_view(server_key));
}

bool scram_verifier::verify_password(std::string_view password) const {
    return equal_ct(scram_derive_keys(password, salt, iterations).server_key, server_key);
}

// ---- Errors and nonces ------------------------------------------------------------------------

namespace {
struct kind_info {
    std::string_view name;
    std::string_view sqlstate;
};
// Indexed by scram_error_kind.
constexpr std::array<kind_info, 4> kind_table{{
    {"malformed", sqlstate::protocol_violation},
    {"unsupported", sqlstate::feature_not_supported},
    {"bad_proof", sqlstate::invalid_password},
    {"internal", sqlstate::internal_error},
}};
static_assert(static_cast<std::size_t>(scram_error_kind::internal) + 1 == kind_table.size());
}  // namespace

std::string_view to_string(scram_error_kind k) {
    return kind_table.at(static_cast<std::size_t>(k)).name;
}

std::string_view sqlstate_of(scram_error_kind k) {
    return kind_table.at(static_cast<std::size_t>(k)).sqlstate;
}

std::string scram_random_nonce() {
    std::array<std::uint8_t, scram_raw_nonce_len> raw{};
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) return {};
    return base64_encode(std::span<const std::uint8_t>(raw));
}

// ---- Server -----------------------------------------------------------------------------------

scram_server::scram_server(scram_verifier verifier, scram_nonce_source nonce)
    : verifier_(std::move(verifier)), nonce_(std::move(nonce)) {}

scram_server scram_server::mock(std::string_view user_name, scram_nonce_source nonce) {
    return mock(user_name, process_mock_secret(), std::move(nonce));
}

scram_server scram_server::mock(std::string_view user_name, std::string_view secret,
                                scram_nonce_source nonce) {
    // Postgres' scram_mock_salt(): SHA-256(username || mock_auth_nonce), cut to the salt length.
    std::string input(user_name);
    input.append(secret);
    const scram_key digest = sha256(input);
    scram_verifier v;
    v.iterations = scram_default_iterations;
    v.salt.assign(reinterpret_cast<const char*>(digest.data()), scram_default_salt_len);
    // StoredKey and ServerKey stay zero: no ClientKey hashes to zero, and doomed_ fails anyway.
    scram_server s(std::move(v), std::move(nonce));
    s.doomed_ = true;
    return s;
}

scram_result scram_server::handle_client_first(std::string_view input) {
    if (state_ != state::init) return out_of_order();
    state_ = state::failed;
    if (auto e = check_payload(input)) return std::move(*e);

    attr_reader r(input, false);
    cbind_flag_ = r.peek();
    switch (cbind_flag_) {
        case 'n':
        case 'y':  // "y": the client could bind but thinks we cannot; right, we offer no -PLUS
            r.skip(1);
            if (r.peek() != ',')
                return malformed("Comma expected, but found character \"" +
                                 sanitize_char(r.peek()) + "\".");
            r.skip(1);
            break;
        case 'p':
            return malformed(
                "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM "
                "message includes channel binding data.");
        default:
            return malformed("Unexpected channel-binding flag \"" + sanitize_char(cbind_flag_) +
                             "\".");
    }
    if (r.peek() == 'a') {
        return scram_error{scram_error_kind::unsupported,
                           "client uses authorization identity, but it is not supported",
                           {}};
    }
    if (r.peek() != ',') {
        return malformed("Unexpected attribute \"" + sanitize_char(r.peek()) +
                         "\" in client-first-message.");
    }
    r.skip(1);
    client_first_bare_ = std::string(r.rest());
    if (r.peek() == 'm') {
        return scram_error{
            scram_error_kind::unsupported, "client requires an unsupported SCRAM extension", {}};
    }
    if (!r.value_of('n')) return r.error();  // the username: ignored, like Postgres
    const auto nonce = r.value_of('r');
    if (!nonce) return r.error();
    // Postgres accepts an empty client nonce; only the server's part is then random.
    if (!is_scram_printable(*nonce)) {
        return scram_error{
            scram_error_kind::malformed, "non-printable characters in SCRAM nonce", {}};
    }
    client_nonce_ = std::string(*nonce);
    while (!r.at_end()) {  // optional extensions: ignored, but must be well-formed
        char attr = 0;
        if (!r.any(attr)) return r.error();
    }

    server_nonce_ = nonce_ ? nonce_() : std::string();
    if (server_nonce_.empty() || !is_scram_printable(server_nonce_))
        return scram_error{scram_error_kind::internal, "could not generate random nonce", {}};
    server_first_ = "r=" + client_nonce_ + server_nonce_ + ",s=" + base64_encode(verifier_.salt) +
                    ",i=" + std::to_string(verifier_.iterations);
    state_ = state::salt_sent;
    return server_first_;
}

scram_result scram_server::handle_client_final(std::string_view input) {
    if (state_ != state::salt_sent) return out_of_order();
    state_ = state::failed;
    if (auto e = check_payload(input)) return std::move(*e);

    attr_reader r(input, false);
    const auto cbind = r.value_of('c');
    if (!cbind) return r.error();
    // Without channel binding c= is base64 of the gs2 header: "n,," -> "biws", "y,," -> "eSws".
    if (!(*cbind == "biws" && cbind_flag_ == 'n') && !(*cbind == "eSws" && cbind_flag_ == 'y')) {
        return scram_error{scram_error_kind::malformed,
                           "unexpected SCRAM channel-binding attribute in client-final-message",
                           {}};
    }
    const auto final_nonce = r.value_of('r');
    if (!final_nonce) return r.error();
    // Extensions may sit between r= and p=; they are ignored. The proof is "," + "p=..." and
    // client-final-message-without-proof is everything before that comma.
    std::size_t proof_comma = 0;
    std::optional<std::string_view> proof_b64;
    char attr = 0;
    do {
        proof_comma = r.offset() - 1;
        proof_b64 = r.any(attr);
        if (!proof_b64) return r.error();
    } while (attr != 'p');
    const auto proof = decode_key(*proof_b64);
    if (!proof) return malformed("Malformed proof in client-final-message.");
    if (!r.at_end()) return malformed("Garbage found at the end of client-final-message.");
    if (*final_nonce != client_nonce_ + server_nonce_) {
        return scram_error{scram_error_kind::malformed, "invalid SCRAM response",
                           "Nonce does not match."};
    }

    const std::string auth_message =
        client_first_bare_ + "," + server_first_ + "," + std::string(input.substr(0, proof_comma));
    // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); it must hash to StoredKey.
    // Computed in mock exchanges too, so they take as long as real ones.
    scram_key key = hmac_sha256(as_view(verifier_.stored_key), auth_message);
    for (std::size_t i = 0; i < key.size(); ++i)
        key[i] ^= (*proof)[i];
    if (!equal_ct(scram_stored_key(key), verifier_.stored_key) || doomed_) {
        return scram_error{scram_error_kind::bad_proof, "password authentication failed", {}};
    }
    client_key_ = key;
    state_ = state::finished;
    return "v=" +
           base64_encode(as_view(scram_server_signature(verifier_.server_key, auth_message)));
}

std::optional<scram_key> scram_server::client_key() const {
    if (state_ != state::finished) return std::nullopt;
    return client_key_;
}

// ---- Client -----------------------------------------------------------------------------------

scram_client::scram_client(std::string_view password, scram_nonce_source nonce)
    : password_(saslprep(password)), from_password_(true), nonce_(std::move(nonce)) {}

scram_client::scram_client(const scram_key& client_key, const scram_key& server_key,
                           scram_nonce_source nonce)
    : keys_{client_key, server_key}, nonce_(std::move(nonce)) {}

scram_client::~scram_client() {
    OPENSSL_cleanse(password_.data(), password_.size());
    OPENSSL_cleanse(&keys_, sizeof keys_);
}

std::string scram_client::client_first_message() {
    if (state_ != state::init) {
        state_ = state::failed;
        return {};
    }
    client_nonce_ = nonce_ ? nonce_() : std::string();
    if (client_nonce_.empty() || !is_scram_printable(client_nonce_)) {
        state_ = state::failed;
        return {};
    }
    // Postgres ignores the SCRAM username (it has the startup packet's); libpq sends it empty.
    client_first_bare_ = "n=,r=" + client_nonce_;
    state_ = state::nonce_sent;
    return "n,," + client_first_bare_;
}

scram_result scram_client::client_final_message(std::string_view server_first) {
    if (state_ != state::nonce_sent) return out_of_order();
    state_ = state::failed;
    auto fail = [](std::string what) {
        return scram_error{scram_error_kind::malformed, std::move(what), {}};
    };
    if (server_first.empty()) return fail("malformed SCRAM message (empty message)");
    if (server_first.find('\0') != std::string_view::npos)
        return fail("malformed SCRAM message (length mismatch)");

    attr_reader r(server_first, true);
    const auto nonce = r.value_of('r');
    if (!nonce) return r.error();
    // Stricter than libpq: the server must add its own, printable, part to our nonce.
    if (nonce->size() <= client_nonce_.size() || !is_scram_printable(*nonce) ||
        CRYPTO_memcmp(nonce->data(), client_nonce_.data(), client_nonce_.size()) != 0) {
        return fail("invalid SCRAM response (nonce mismatch)");
    }
    const auto salt_b64 = r.value_of('s');
    if (!salt_b64) return r.error();
    const auto salt = base64_decode(*salt_b64);
    if (!salt || salt->empty()) return fail("malformed SCRAM message (invalid salt)");
    const auto iterations_str = r.value_of('i');
    if (!iterations_str) return r.error();
    const auto iterations = parse_positive_int(*iterations_str);
    if (!iterations || *iterations > scram_max_client_iterations)
        return fail("malformed SCRAM message (invalid iteration count)");
    if (!r.at_end())
        return fail("malformed SCRAM message (garbage at end of server-first-message)");

    if (from_password_)
        keys_ = deriver_ ? deriver_(password_, *salt, *iterations)
                         : derive_prepared(password_, *salt, *iterations);
    const std::string without_proof = "c=biws,r=" + std::string(*nonce);
    auth_message_ = client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
    const scram_key proof = scram_client_proof(keys_.client_key, auth_message_);
    state_ = state::proof_sent;
    return without_proof + ",p=" + base64_encode(as_view(proof));
}

bool scram_client::verify_server_final(std::string_view server_final) {
    if (state_ != state::proof_sent) return false;
    state_ = state::failed;
    if (!server_final.starts_with("v=")) return false;          // includes "e=<server-error>"
    const auto signature = decode_key(server_final.substr(2));  // a ',' makes this fail too
    if (!signature) return false;
    if (!equal_ct(*signature, scram_server_signature(keys_.server_key, auth_message_)))
        return false;
    state_ = state::finished;
    return true;
}

}  // namespace shardgate::protocol::auth
