// SCRAM-SHA-256 as Postgres does it: key math, stored verifiers, server and client exchanges.
// RFC 5802 and RFC 7677; Postgres specifics:
// https://www.postgresql.org/docs/15/sasl-authentication.html Pure: no I/O. The caller frames the
// SASL payloads (AuthenticationSASLContinue/Final, SASLInitialResponse, SASLResponse) and checks
// the mechanism name ("SCRAM-SHA-256"; anything else, including "SCRAM-SHA-256-PLUS", is FATAL
// 08P01 "client selected an invalid SASL authentication mechanism" in Postgres).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace shardgate::protocol::auth {

inline constexpr std::size_t scram_key_len = 32;
using scram_key = std::array<std::uint8_t, scram_key_len>;

inline constexpr int scram_default_iterations = 4096;      // Postgres' SCRAM_DEFAULT_ITERATIONS
inline constexpr std::size_t scram_default_salt_len = 16;  // SCRAM_DEFAULT_SALT_LEN
inline constexpr std::size_t scram_raw_nonce_len = 18;     // SCRAM_RAW_NONCE_LEN (base64: 24 chars)
// Highest iteration count scram_client accepts from a server. Each iteration is two SHA-256
// blocks, so 1M costs roughly half a second of CPU; it stops a hostile or broken server from
// pinning a proxy thread. Postgres 15 always uses 4096; 16+ makes it configurable.
inline constexpr int scram_max_client_iterations = 1'000'000;

// ---- SASLprep ---------------------------------------------------------------------------------

enum class saslprep_input : std::uint8_t {
    ascii,         // every byte < 0x80: exact (Postgres hashes these bytes unchanged)
    invalid_utf8,  // not UTF-8: exact (Postgres falls back to the raw bytes)
    unicode,       // valid non-ASCII UTF-8: approximated, see saslprep()
};
saslprep_input classify_saslprep(std::string_view password);

// The bytes Postgres hashes for `password` (pg_saslprep() in src/common/saslprep.c, then the
// raw password whenever that fails). Pure ASCII: Postgres returns it unchanged; RFC 4013 would
// prohibit ASCII control characters, but both paths hash the raw bytes, so ASCII is exact.
// Invalid UTF-8: the raw bytes, exact. LIMITATION: valid non-ASCII UTF-8 is also returned as is,
// because the NFKC and RFC 3454 tables are out of scope. That equals Postgres whenever the
// password is already NFKC-normal and holds no mapped characters (non-ASCII spaces such as
// U+00A0 become ' ', U+00AD and other "mapped to nothing" characters vanish), e.g. "pässwörd"
// typed as precomposed characters; it differs for e.g. U+FB01 (the "fi" ligature). Only matters
// where we start from a plaintext password (from_password, scram_client): verifiers read from
// pg_authid and clients' proofs are unaffected. Postgres also stops at a NUL byte; the wire
// protocol cannot carry one inside a password anyway.
std::string saslprep(std::string_view password);

// ---- Key math (RFC 5802 section 3) ------------------------------------------------------------

struct scram_keys {
    scram_key client_key{};  // HMAC(SaltedPassword, "Client Key")
    scram_key server_key{};  // HMAC(SaltedPassword, "Server Key")
};

// SaltedPassword = PBKDF2-HMAC-SHA-256(saslprep(password), salt, iterations), then the two keys.
// `salt` is raw bytes; iterations >= 1. An OpenSSL failure yields all-zero keys (never valid).
scram_keys scram_derive_keys(std::string_view password, std::string_view salt, int iterations);
scram_key scram_stored_key(const scram_key& client_key);  // H(ClientKey)
// ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage)
scram_key scram_client_proof(const scram_key& client_key, std::string_view auth_message);
// ServerSignature = HMAC(ServerKey, AuthMessage)
scram_key scram_server_signature(const scram_key& server_key, std::string_view auth_message);

// ---- Stored verifier (pg_authid.rolpassword) --------------------------------------------------

struct scram_verifier {
    int iterations = scram_default_iterations;
    std::string salt;  // raw bytes (base64 only in the text form)
    scram_key stored_key{};
    scram_key server_key{};

    // "SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>".
    // Stricter than Postgres' parse_scram_secret(): iterations are plain decimal digits >= 1,
    // the salt is non-empty and base64 is strict (see base64_decode); keys decode to 32 bytes.
    static std::optional<scram_verifier> parse(std::string_view text);
    // Same computation as Postgres' scram_build_secret(); byte-for-byte equal to what Postgres
    // stores for the same salt and iterations (subject to the saslprep() limitation).
    static scram_verifier from_password(std::string_view password, std::string_view salt,
                                        int iterations = scram_default_iterations);
    [[nodiscard]] std::string to_string() const;
    // Plaintext check (the "password" method), comparing ServerKey like
    // scram_verify_plain_password().
    [[nodiscard]] bool verify_password(std::string_view password) const;

    friend bool operator==(const scram_verifier&, const scram_verifier&) = default;
};

// ---- Errors -----------------------------------------------------------------------------------

enum class scram_error_kind : std::uint8_t {
    malformed,    // protocol violation: FATAL 08P01, connection closed
    unsupported,  // authzid ("a=") or a mandatory extension ("m="): FATAL 0A000
    bad_proof,    // wrong password, or a mock exchange: FATAL 28P01
    internal,     // nonce generation failed, or calls out of order: XX000
};
std::string_view to_string(scram_error_kind k);
std::string_view sqlstate_of(scram_error_kind k);

// Server side: message and detail are worded exactly as Postgres 15 words its ErrorResponse
// (checked against 15.18). Exception: for bad_proof Postgres sends
// `password authentication failed for user "<startup user>"` with no detail; the message here is
// "password authentication failed" and the caller appends ` for user "<name>"`.
// Client side (scram_client): worded like libpq's connection errors, for logs.
struct scram_error {
    scram_error_kind kind = scram_error_kind::malformed;
    std::string message;
    std::string detail;  // may be empty
    [[nodiscard]] std::string_view sqlstate() const { return sqlstate_of(kind); }
};

// The next SCRAM message to send, or why the exchange failed.
class [[nodiscard]] scram_result {
  public:
    scram_result(std::string msg) : v_(std::move(msg)) {}  // NOLINT(google-explicit-constructor)
    scram_result(scram_error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    [[nodiscard]] const std::string& value() const& { return std::get<0>(v_); }
    [[nodiscard]] std::string value() && { return std::get<0>(std::move(v_)); }
    [[nodiscard]] const scram_error& error() const { return std::get<1>(v_); }

  private:
    std::variant<std::string, scram_error> v_;
};

// ---- Nonces -----------------------------------------------------------------------------------

// Returns a nonce of printable characters (no ','), or "" when none could be made.
using scram_nonce_source = std::function<std::string()>;
// 18 bytes from RAND_bytes, base64-encoded (24 characters), like Postgres and libpq.
std::string scram_random_nonce();

// ---- Server side (shardgate plays Postgres for its clients) -----------------------------------

// One exchange: handle_client_first() once, then handle_client_final() once. The first error
// ends the exchange; later calls return `internal`. Parsing mirrors auth-scram.c: gs2 header
// "n,," or "y,," (we never advertise SCRAM-SHA-256-PLUS, so "p=..." is malformed, and "y" is
// accepted because no channel binding is offered), no authzid, username ignored (libpq sends
// "n="), unknown extensions after the nonce are ignored, c= must be "biws"/"eSws" matching the
// first flag, the final nonce must equal client nonce + server nonce.
class scram_server {
  public:
    explicit scram_server(scram_verifier verifier, scram_nonce_source nonce = scram_random_nonce);

    // Postgres' mock authentication for a user that does not exist or has no SCRAM verifier:
    // the exchange runs normally with salt = first 16 bytes of SHA-256(user_name + secret) and
    // 4096 iterations, so the salt is stable per user and reveals nothing, and the final step
    // always fails with bad_proof (after the same proof computation, for equal timing).
    // This overload uses a random per-process secret. Behind a load balancer, different proxy
    // processes then show different salts for the same unknown user while real users' salts are
    // stable; pass a secret shared by all instances (like Postgres' cluster-wide
    // mock_authentication_nonce) to close that gap.
    static scram_server mock(std::string_view user_name,
                             scram_nonce_source nonce = scram_random_nonce);
    static scram_server mock(std::string_view user_name, std::string_view secret,
                             scram_nonce_source nonce);

    // client-first-message -> server-first-message ("r=<nonce>,s=<salt>,i=<iterations>").
    scram_result handle_client_first(std::string_view client_first_message);
    // client-final-message -> server-final-message ("v=<ServerSignature>") on success.
    scram_result handle_client_final(std::string_view client_final_message);

    [[nodiscard]] bool authenticated() const { return state_ == state::finished; }
    // After success: the client's ClientKey, recovered as ClientProof XOR ClientSignature.
    // With ServerKey (in the verifier) it lets scram_client log into a Postgres that has the
    // same verifier without knowing the password (what PgBouncer does).
    [[nodiscard]] std::optional<scram_key> client_key() const;

  private:
    enum class state : std::uint8_t {
        init,       // waiting for client-first-message
        salt_sent,  // server-first-message sent, waiting for client-final-message
        finished,   // authenticated; client_key_ is set
        failed,     // an error was returned; the exchange is over
    };

    scram_verifier verifier_;
    scram_nonce_source nonce_;
    bool doomed_ = false;  // mock exchange: always fails at the end
    state state_ = state::init;
    char cbind_flag_ = 'n';
    std::string client_first_bare_;
    std::string client_nonce_;
    std::string server_nonce_;
    std::string server_first_;
    scram_key client_key_{};
};

// ---- Client side (shardgate logging into Postgres) --------------------------------------------

// One exchange: client_first_message(), client_final_message(server-first), then
// verify_server_final(server-final). Sends gs2 header "n,," and an empty username, like libpq.
class scram_client {
  public:
    explicit scram_client(std::string_view password, scram_nonce_source nonce = scram_random_nonce);
    // From keys instead of a password (e.g. the ClientKey recovered by scram_server and the
    // ServerKey from the verifier). The salt and iteration count the server sends are then NOT
    // used: the login succeeds only if the server's verifier is the one these keys came from
    // (same password, salt and iterations). If the role's password was changed since, the server
    // rejects the proof (28P01) and verify_server_final() would fail too.
    scram_client(const scram_key& client_key, const scram_key& server_key,
                 scram_nonce_source nonce = scram_random_nonce);
    ~scram_client();
    scram_client(const scram_client&) = default;
    scram_client(scram_client&&) = default;
    scram_client& operator=(const scram_client&) = default;
    scram_client& operator=(scram_client&&) = default;

    // How keys are derived from the (SASLprepped) password, the salt and the iteration count:
    // by default PBKDF2 every time; a caller that logs in often with the same password may
    // remember the result (the server's salt and count stay until the password changes).
    using key_deriver =
        std::function<scram_keys(std::string_view password, std::string_view salt, int iterations)>;
    void set_key_deriver(key_deriver d) { deriver_ = std::move(d); }

    // "n,,n=,r=<client nonce>". Returns "" when called twice or when the nonce source fails.
    std::string client_first_message();
    // Checks the server-first-message (nonce starts with ours and adds to it, salt is non-empty
    // strict base64, 1 <= iterations <= scram_max_client_iterations, nothing after i=) and
    // returns "c=biws,r=<nonce>,p=<ClientProof>".
    scram_result client_final_message(std::string_view server_first);
    // True only for "v=<ServerSignature>" matching ours (constant-time compare). "e=..." and
    // anything malformed are false. The exchange ends either way.
    bool verify_server_final(std::string_view server_final);

    [[nodiscard]] bool finished() const { return state_ == state::finished; }

  private:
    enum class state : std::uint8_t {
        init,        // nothing sent
        nonce_sent,  // client-first-message sent, waiting for server-first-message
        proof_sent,  // client-final-message sent, waiting for server-final-message
        finished,    // server verified
        failed,      // an error happened; the exchange is over
    };

    std::string password_;  // after saslprep(); empty when built from keys
    bool from_password_ = false;
    key_deriver deriver_;
    scram_keys keys_{};
    scram_nonce_source nonce_;
    state state_ = state::init;
    std::string client_nonce_;
    std::string client_first_bare_;
    std::string auth_message_;
};

}  // namespace shardgate::protocol::auth
