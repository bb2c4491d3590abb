// Client authentication as Postgres does it: SCRAM-SHA-256 (default), md5, trust. Unknown users
// go through a mock SCRAM exchange and get the same error as a wrong password.
// https://www.postgresql.org/docs/15/sasl-authentication.html
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "control/session.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frontend.hpp"
#include "shardgate/protocol/md5.hpp"
#include "shardgate/protocol/reader.hpp"
#include "shardgate/protocol/scram.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace auth = shardgate::protocol::auth;
namespace {

// Postgres' PG_MAX_AUTH_TOKEN_LENGTH.
constexpr std::uint32_t max_auth_message = 65535;

void encode_auth(pr::write_buffer& out, std::int32_t code, std::string_view data = {}) {
    pr::be::authentication a;
    a.code = code;
    a.data = std::string(data);
    if (code == pr::be::authentication::sasl) a.mechanisms = {"SCRAM-SHA-256"};
    pr::be::encode(out, a);
}

}  // namespace

awaitable<bool> client_session::read_auth_message(std::string& body) {
    std::array<std::byte, 5> head{};
    error_code ec;
    co_await client_.async_read_exact(asio::buffer(head), ec);
    if (ec) co_return false;  // e.g. psql closing to prompt for a password
    std::uint32_t len = 0;
    for (int i = 1; i < 5; ++i)
        len = (len << 8) | static_cast<std::uint32_t>(head[i]);
    if (static_cast<char>(head[0]) != 'p') {
        co_await send_error({pr::severity::fatal, pr::sqlstate::protocol_violation,
                             std::string("expected password response, got message type ") +
                                 std::to_string(static_cast<int>(head[0]))});
        co_return false;
    }
    if (len < 4 || len > max_auth_message) {
        co_await send_error(
            {pr::severity::fatal, pr::sqlstate::protocol_violation, "invalid message length"});
        co_return false;
    }
    body.resize(len - 4);
    if (!body.empty()) co_await client_.async_read_exact(asio::buffer(body), ec);
    co_return !ec;
}

awaitable<bool> client_session::authenticate() {
    auto it = cfg_->users.find(user_name_);
    user_ = it == cfg_->users.end() ? nullptr : &it->second;
    bool ok = false;
    if (user_ != nullptr && user_->auth == auth_method::trust) {
        ok = true;
    } else if (user_ != nullptr && user_->auth == auth_method::md5 &&
               (!user_->md5_hash.empty() || !user_->password.empty())) {
        ok = co_await authenticate_md5();
    } else {
        // SCRAM, also for md5 users who only have a SCRAM verifier (Postgres does the same),
        // and as a mock exchange for unknown users.
        ok = co_await authenticate_scram();
    }
    if (!ok) co_return false;
    encode_auth(out_, pr::be::authentication::ok);
    co_return co_await flush_out();
}

awaitable<bool> client_session::authenticate_scram() {
    std::optional<auth::scram_server> server;
    auth::scram_key server_key{};  // the user's verifier's ServerKey
    if (user_ != nullptr) {
        std::optional<auth::scram_verifier> v;
        if (!user_->scram_verifier.empty()) v = auth::scram_verifier::parse(user_->scram_verifier);
        if (v) {
            server_key = v->server_key;
            server.emplace(std::move(*v));
        }
    }
    if (!server) server.emplace(auth::scram_server::mock(user_name_));

    encode_auth(out_, pr::be::authentication::sasl);
    if (!co_await flush_out()) co_return false;
    std::string body;
    if (!co_await read_auth_message(body)) co_return false;
    auto initial = pr::fe::decode_sasl_initial_response(pr::as_bytes(body));
    if (!initial || initial->mechanism != "SCRAM-SHA-256" || !initial->data) {
        co_await send_error({pr::severity::fatal, pr::sqlstate::protocol_violation,
                             "client selected an invalid SASL authentication mechanism"});
        co_return false;
    }
    auto first = server->handle_client_first(*initial->data);
    if (!first) co_return co_await fail_scram(first.error());
    encode_auth(out_, pr::be::authentication::sasl_continue, first.value());
    if (!co_await flush_out()) co_return false;
    if (!co_await read_auth_message(body)) co_return false;
    auto response = pr::fe::decode_sasl_response(pr::as_bytes(body));
    if (!response) {
        co_await send_error(
            {pr::severity::fatal, pr::sqlstate::protocol_violation, "malformed SCRAM message"});
        co_return false;
    }
    auto final_msg = server->handle_client_final(response->data);
    if (!final_msg) co_return co_await fail_scram(final_msg.error());
    encode_auth(out_, pr::be::authentication::sasl_final, final_msg.value());
    // Keep the keys: shardgate can log into a server that has the same verifier without ever
    // knowing the plaintext password (as PgBouncer does).
    if (auto key = server->client_key())
        scram_keys_ = std::make_unique<auth::scram_keys>(auth::scram_keys{*key, server_key});
    co_return true;
}

awaitable<bool> client_session::fail_scram(const auth::scram_error& err) {
    if (err.kind == auth::scram_error_kind::bad_proof) {
        spdlog::info("password authentication failed for user \"{}\"", user_name_);
        co_await send_error({pr::severity::fatal, pr::sqlstate::invalid_password,
                             "password authentication failed for user \"" + user_name_ + "\""});
    } else {
        co_await send_error({pr::severity::fatal, err.sqlstate(), err.message, err.detail});
    }
    co_return false;
}

awaitable<bool> client_session::authenticate_md5() {
    const std::string stored = !user_->md5_hash.empty()
                                   ? user_->md5_hash
                                   : auth::md5_hash_password(user_name_, user_->password);
    std::array<std::byte, 4> salt{};
    RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size()));
    pr::be::authentication a;
    a.code = pr::be::authentication::md5_password;
    a.md5_salt = salt;
    pr::be::encode(out_, a);
    if (!co_await flush_out()) co_return false;
    std::string body;
    if (!co_await read_auth_message(body)) co_return false;
    auto pw = pr::fe::decode_password_message(pr::as_bytes(body));
    if (!pw) {
        co_await send_error({pr::severity::fatal, pr::sqlstate::protocol_violation,
                             "invalid password packet size"});
        co_return false;
    }
    if (!auth::md5_verify(stored, salt, pw->password)) {
        spdlog::info("password authentication failed for user \"{}\"", user_name_);
        co_await send_error({pr::severity::fatal, pr::sqlstate::invalid_password,
                             "password authentication failed for user \"" + user_name_ + "\""});
        co_return false;
    }
    co_return true;
}

}  // namespace shardgate::proxy
