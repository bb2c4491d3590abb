// Backend login: connect, negotiate TLS per server_tls, start up, authenticate, read greeting.
// Flow: https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.3
#include "shardgate/pool/server_login.hpp"

#include <map>
#include <mutex>

#include <spdlog/spdlog.h>

#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frontend.hpp"
#include "shardgate/protocol/md5.hpp"
#include "shardgate/protocol/scram.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::pool {

namespace {

// PBKDF2 with Postgres' 4096 iterations costs about a millisecond of CPU; a pool that opens
// hundreds of connections with one password would pay it each time. The keys depend only on
// (password, salt, iterations), which the server keeps until the password changes.
scram_keys cached_scram_keys(std::string_view password, std::string_view salt, int iterations) {
    static std::mutex mu;
    static std::map<std::string, scram_keys, std::less<>> cache;
    std::string key;
    key.reserve(password.size() + salt.size() + 16);
    key.append(password).push_back('\0');
    key.append(salt).push_back('\0');
    key += std::to_string(iterations);
    {
        std::lock_guard lock(mu);
        if (auto it = cache.find(key); it != cache.end()) return it->second;
    }
    auto keys = protocol::auth::scram_derive_keys(password, salt, iterations);
    std::lock_guard lock(mu);
    if (cache.size() >= 1024) cache.clear();  // bounded: many passwords or password changes
    cache.emplace(std::move(key), keys);
    return keys;
}

}  // namespace
namespace pr = shardgate::protocol;
namespace {

constexpr std::uint32_t max_login_message = 1024 * 1024;

struct raw_message {
    char type = 0;
    std::vector<std::byte> bytes;  // the whole message: type, length, body
    [[nodiscard]] std::span<const std::byte> body() const { return std::span(bytes).subspan(5); }
};

awaitable<bool> read_message(pg_stream& s, raw_message& m, error_code& ec) {
    m.bytes.resize(5);
    co_await s.async_read_exact(asio::buffer(m.bytes.data(), 5), ec);
    if (ec) co_return false;
    m.type = static_cast<char>(m.bytes[0]);
    std::uint32_t len = 0;
    for (int i = 1; i < 5; ++i)
        len = (len << 8) | static_cast<std::uint32_t>(m.bytes[i]);
    if (len < 4 || len > max_login_message) {
        ec = asio::error::message_size;
        co_return false;
    }
    m.bytes.resize(len + 1);
    if (len > 4) co_await s.async_read_exact(asio::buffer(m.bytes.data() + 5, len - 4), ec);
    co_return !ec;
}

// Carries out one login; each failure fills the result's error and returns.
class login {
  public:
    login(asio::any_io_executor ex, server_login_request req)
        : ex_(std::move(ex)), req_(std::move(req)), timer_(ex_) {}

    awaitable<server_login_result> run() {
        const auto& db = req_.backend;
        res_.stream.emplace(tcp::socket(ex_));
        pg_stream& s = *res_.stream;
        // One deadline covers resolve, connect, TLS and authentication.
        timer_.arm(req_.timeout, [&s] { s.close(); });
        error_code ec;
        tcp::resolver resolver(ex_);
        auto endpoints =
            co_await resolver.async_resolve(db.host, std::to_string(db.port), ec_token(ec));
        if (ec) {
            fail(pr::sqlstate::sqlclient_unable_to_establish_sqlconnection,
                 "could not resolve host \"" + db.host + "\": " + ec.message());
            co_return take();
        }
        co_await asio::async_connect(s.socket(), endpoints, ec_token(ec));
        if (ec) {
            fail(pr::sqlstate::sqlclient_unable_to_establish_sqlconnection,
                 "could not connect to server: " + ec.message());
            co_return take();
        }
        s.socket().set_option(tcp::no_delay(true), ec);
        if (co_await negotiate_tls(s) && co_await startup_and_auth(s)) timer_.disarm();
        co_return take();
    }

  private:
    // Records the failure; run() returns res_ once.
    void fail(std::string_view code, std::string_view message) {
        timer_.disarm();
        res_.stream.reset();
        res_.error_code = code;
        res_.error_message = describe();
        res_.error_message += message;
    }
    server_login_result take() { return std::move(res_); }
    std::string describe() const {
        return "backend " + req_.backend.host + ":" + std::to_string(req_.backend.port) +
               " of database \"" + req_.backend.name + "\": ";
    }

    awaitable<bool> negotiate_tls(pg_stream& s) {
        const auto mode = req_.backend.tls_mode;
        if (mode == server_tls_mode::disable || req_.tls == nullptr) co_return true;
        pr::write_buffer wb;
        pr::fe::encode(wb, pr::fe::ssl_request{});
        error_code ec;
        co_await s.async_write(wb.view(), ec);
        char answer = 0;
        if (!ec) co_await s.async_read_exact(asio::buffer(&answer, 1), ec);
        if (ec) {
            fail(pr::sqlstate::connection_failure, "TLS negotiation failed: " + ec.message());
            co_return false;
        }
        if (answer == 'S') {
            ec = co_await s.async_tls_connect(*req_.tls, req_.backend.host,
                                              mode == server_tls_mode::verify_full);
            if (ec) {
                fail(pr::sqlstate::connection_failure,
                     "TLS handshake failed: " +
                         (s.tls_error().empty() ? ec.message() : s.tls_error()));
                co_return false;
            }
            co_return true;
        }
        if (answer == 'N' && mode == server_tls_mode::prefer) co_return true;
        fail(pr::sqlstate::connection_failure,
             answer == 'N' ? "server does not support TLS, but server_tls requires it"
                           : "unexpected reply to SSLRequest");
        co_return false;
    }

    awaitable<bool> startup_and_auth(pg_stream& s) {
        pr::fe::startup_message sm;
        sm.params.emplace_back("user", req_.user);
        sm.params.emplace_back("database", req_.backend.dbname);
        for (const auto& p : req_.params)
            sm.params.push_back(p);
        pr::write_buffer wb;
        pr::fe::encode(wb, sm);
        error_code ec;
        co_await s.async_write(wb.view(), ec);
        raw_message m;
        std::optional<pr::auth::scram_client> scram;
        for (;;) {
            if (ec || !co_await read_message(s, m, ec)) {
                fail(pr::sqlstate::connection_failure,
                     "connection lost during login: " + (ec ? ec.message() : "closed"));
                co_return false;
            }
            switch (m.type) {
                case 'R':
                    if (!co_await on_auth(s, m, scram, ec)) co_return false;
                    break;
                case 'S':
                case 'N':
                    res_.greeting.insert(res_.greeting.end(), m.bytes.begin(), m.bytes.end());
                    break;
                case 'K': {
                    auto k = pr::be::decode_backend_key_data(m.body());
                    if (!k) {
                        fail(pr::sqlstate::protocol_violation, "malformed BackendKeyData");
                        co_return false;
                    }
                    res_.server_key = {k->process_id, k->secret_key};
                    break;
                }
                case 'Z': {
                    auto z = pr::be::decode_ready_for_query(m.body());
                    if (!z) {
                        fail(pr::sqlstate::protocol_violation, "malformed ReadyForQuery");
                        co_return false;
                    }
                    res_.txn_status = z->status;
                    co_return true;
                }
                case 'E':
                    res_.server_error = std::move(m.bytes);
                    fail(pr::sqlstate::connection_failure, "server refused the login");
                    co_return false;
                case 'v':  // NegotiateProtocolVersion: we ask for 3.0 and send no _pq_ options
                default:
                    fail(pr::sqlstate::protocol_violation,
                         std::string("unexpected message '") + m.type + "' during login");
                    co_return false;
            }
        }
    }

    awaitable<bool> on_auth(pg_stream& s, const raw_message& m,
                            std::optional<pr::auth::scram_client>& scram, error_code& ec) {
        auto a = pr::be::decode_authentication(m.body());
        if (!a) {
            fail(pr::sqlstate::protocol_violation, "malformed authentication request");
            co_return false;
        }
        pr::write_buffer wb;
        switch (a->code) {
            case pr::be::authentication::ok:
                co_return true;
            case pr::be::authentication::cleartext_password:
                if (req_.password.empty()) co_return no_secret("a cleartext password");
                pr::fe::encode(wb, pr::fe::password_message{req_.password});
                break;
            case pr::be::authentication::md5_password: {
                std::string stored = req_.md5_hash;
                if (stored.empty() && !req_.password.empty())
                    stored = pr::auth::md5_hash_password(req_.user, req_.password);
                if (stored.empty()) co_return no_secret("an md5 password");
                pr::fe::encode(wb, pr::fe::password_message{
                                       pr::auth::md5_client_response(stored, a->md5_salt)});
                break;
            }
            case pr::be::authentication::sasl: {
                bool has_scram = false;
                for (const auto& mech : a->mechanisms)
                    has_scram |= mech == "SCRAM-SHA-256";
                if (!has_scram) {
                    fail(pr::sqlstate::feature_not_supported,
                         "server offers no SASL mechanism shardgate supports");
                    co_return false;
                }
                if (!req_.password.empty()) {
                    scram.emplace(req_.password);
                    scram->set_key_deriver(cached_scram_keys);
                } else if (req_.keys) {
                    scram.emplace(req_.keys->client_key, req_.keys->server_key);
                } else {
                    co_return no_secret("a SCRAM-SHA-256 password");
                }
                pr::fe::encode(wb, pr::fe::sasl_initial_response{"SCRAM-SHA-256",
                                                                 scram->client_first_message()});
                break;
            }
            case pr::be::authentication::sasl_continue: {
                if (!scram) co_return protocol_error("SASLContinue without SASL");
                auto final_msg = scram->client_final_message(a->data);
                if (!final_msg) co_return protocol_error("invalid SCRAM server-first-message");
                pr::fe::encode(wb, pr::fe::sasl_response{final_msg.value()});
                break;
            }
            case pr::be::authentication::sasl_final:
                if (!scram || !scram->verify_server_final(a->data))
                    co_return protocol_error("SCRAM server signature did not verify");
                co_return true;
            default:
                fail(pr::sqlstate::feature_not_supported,
                     "server asks for an authentication method shardgate does not support (code " +
                         std::to_string(a->code) + ")");
                co_return false;
        }
        co_await s.async_write(wb.view(), ec);
        co_return !ec;
    }

    bool no_secret(const std::string& what) {
        fail(pr::sqlstate::invalid_authorization_specification,
             "server asks for " + what + " for user \"" + req_.user +
                 "\" and shardgate has none (set server_password or the user's password)");
        return false;
    }
    bool protocol_error(const std::string& what) {
        fail(pr::sqlstate::protocol_violation, what);
        return false;
    }

    asio::any_io_executor ex_;
    server_login_request req_;
    deadline timer_;
    server_login_result res_;
};

}  // namespace

std::string_view to_string(server_tls_mode m) {
    switch (m) {
        case server_tls_mode::disable:
            return "disable";
        case server_tls_mode::prefer:
            return "prefer";
        case server_tls_mode::require:
            return "require";
        case server_tls_mode::verify_full:
            return "verify-full";
    }
    return "?";
}

awaitable<server_login_result> async_server_login(asio::any_io_executor ex,
                                                  server_login_request req) {
    login l(ex, std::move(req));
    co_return co_await l.run();
}

awaitable<void> async_send_cancel(asio::any_io_executor ex, cancel_target target) {
    tcp::socket sock(ex);
    deadline timer(ex);
    timer.arm(std::chrono::seconds(5), [&sock] {
        error_code ignored;
        sock.close(ignored);
    });
    error_code ec;
    tcp::resolver resolver(ex);
    auto endpoints =
        co_await resolver.async_resolve(target.host, std::to_string(target.port), ec_token(ec));
    if (!ec) co_await asio::async_connect(sock, endpoints, ec_token(ec));
    if (!ec) {
        pr::write_buffer wb;
        pr::fe::encode(wb, pr::fe::cancel_request{target.server_key.pid, target.server_key.secret});
        co_await asio::async_write(sock, asio::buffer(wb.data(), wb.size()), ec_token(ec));
        // Postgres closes the connection once it has read the request; wait for that so the
        // cancel is delivered before we report anything.
        char b = 0;
        if (!ec) co_await sock.async_read_some(asio::buffer(&b, 1), ec_token(ec));
    }
    timer.disarm();
    if (ec && ec != asio::error::eof)
        spdlog::warn("cancel to {}:{} failed: {}", target.host, target.port, ec.message());
}

}  // namespace shardgate::pool
