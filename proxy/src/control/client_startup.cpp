// Startup phase of a client connection: SSLRequest/GSSENCRequest negotiation, CancelRequest,
// and the StartupMessage with its limits, as Postgres' ProcessStartupPacket does it.
// https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-START-UP
#include <spdlog/spdlog.h>

#include "control/session.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/frontend.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;

awaitable<client_session::startup_outcome> client_session::read_startup() {
    bool tls_tried = false;
    for (;;) {
        std::array<std::byte, 8> head{};
        error_code ec;
        co_await client_.async_read_exact(asio::buffer(head), ec);
        if (ec) co_return startup_outcome::done;  // client went away (or probed the port)
        std::uint32_t len = 0;
        for (int i = 0; i < 4; ++i)
            len = (len << 8) | static_cast<std::uint32_t>(head[i]);
        if (len < 8 || len > pr::max_startup_packet_length) {
            // Postgres only logs "invalid length of startup packet" and closes.
            spdlog::debug("client sent invalid startup packet length {}", len);
            co_return startup_outcome::done;
        }
        std::vector<std::byte> packet(len);
        std::copy(head.begin(), head.end(), packet.begin());
        if (len > 8)
            co_await client_.async_read_exact(asio::buffer(packet.data() + 8, len - 8), ec);
        if (ec) co_return startup_outcome::done;
        auto frame = pr::decode_startup_frame(packet);
        if (frame.status != pr::frame_status::ok) co_return startup_outcome::done;

        const auto code = frame.packet.code;
        if (code == pr::cancel_request_code) {
            auto c = pr::fe::decode_cancel_request(frame.packet.body);
            if (c) co_await handle_cancel(c->process_id, c->secret_key);
            co_return startup_outcome::done;
        }
        if (code == pr::ssl_request_code || code == pr::gssenc_request_code) {
            const bool ssl = code == pr::ssl_request_code;
            if (client_.is_tls() || (ssl && tls_tried)) {
                co_await send_error({pr::severity::fatal, pr::sqlstate::protocol_violation,
                                     "unsupported frontend protocol: TLS already negotiated"});
                co_return startup_outcome::done;
            }
            // CVE-2021-23214: bytes sent before our answer would be read as if encrypted.
            if (client_.socket().available(ec) > 0) {
                co_await send_error({pr::severity::fatal, pr::sqlstate::protocol_violation,
                                     "received unencrypted data after SSL request"});
                co_return startup_outcome::done;
            }
            const bool accept = ssl && ctx_.client_tls != nullptr;
            const char answer = accept ? 'S' : 'N';
            co_await client_.async_write(asio::buffer(&answer, 1), ec);
            if (ec) co_return startup_outcome::done;
            if (accept) {
                tls_tried = true;
                ec = co_await client_.async_tls_accept(*ctx_.client_tls);
                if (ec) {
                    spdlog::debug("client TLS handshake failed: {}",
                                  client_.tls_error().empty() ? ec.message() : client_.tls_error());
                    co_return startup_outcome::done;
                }
            }
            continue;
        }
        const std::uint32_t major = code >> 16;
        const std::uint32_t minor = code & 0xffff;
        if (major != 3) {
            co_await send_error({pr::severity::fatal, pr::sqlstate::feature_not_supported,
                                 "unsupported frontend protocol " + std::to_string(major) + "." +
                                     std::to_string(minor) + ": server supports 3.0 to 3.0"});
            co_return startup_outcome::done;
        }
        auto sm = pr::fe::decode_startup_message(frame.packet.body, code);
        if (!sm) {
            co_await send_error(
                {pr::severity::fatal, pr::sqlstate::protocol_violation,
                 "invalid startup packet layout: expected terminator as last byte"});
            co_return startup_outcome::done;
        }
        // Protocol 3.x with x > 0, or _pq_ options: answer as Postgres 15 does.
        std::vector<std::string> unknown_options;
        for (auto& [k, v] : sm->params) {
            if (k.rfind("_pq_.", 0) == 0) {
                unknown_options.push_back(k);
            } else if (k == "user") {
                user_name_ = v;
            } else if (k == "database") {
                database_name_ = v;
            } else if (k == "replication") {
                if (v != "false" && v != "off" && v != "0" && v != "no") {
                    co_await send_error({pr::severity::fatal, pr::sqlstate::feature_not_supported,
                                         "shardgate does not support replication connections"});
                    co_return startup_outcome::done;
                }
            } else {
                core_.settings().startup_params.emplace_back(k, v);
            }
        }
        if (minor > 0 || !unknown_options.empty()) {
            pr::be::negotiate_protocol_version npv;
            npv.newest_minor = 0;
            npv.unrecognized = unknown_options;
            pr::be::encode(out_, npv);
        }
        if (user_name_.empty()) {
            co_await send_error({pr::severity::fatal,
                                 pr::sqlstate::invalid_authorization_specification,
                                 "no PostgreSQL user name specified in startup packet"});
            co_return startup_outcome::done;
        }
        if (database_name_.empty()) database_name_ = user_name_;
        if (ctx_.stopping.load(std::memory_order_relaxed)) {
            co_await send_error({pr::severity::fatal, pr::sqlstate::cannot_connect_now,
                                 "the database system is shutting down"});
            co_return startup_outcome::done;
        }
        if (ctx_.clients.load(std::memory_order_relaxed) > cfg_->max_client_conn) {
            co_await send_error({pr::severity::fatal, pr::sqlstate::too_many_connections,
                                 "sorry, too many clients already",
                                 "shardgate's max_client_conn (" +
                                     std::to_string(cfg_->max_client_conn) + ") is reached."});
            co_return startup_outcome::done;
        }
        co_return startup_outcome::proceed;
    }
}

awaitable<void> client_session::handle_cancel(std::int32_t pid, std::int32_t secret) {
    // An unknown or stale key is ignored silently, as Postgres does.
    auto target = ctx_.cancels.find({pid, secret});
    if (!target) {
        spdlog::debug("cancel request with unknown key (pid {}) ignored", pid);
        co_return;
    }
    co_await async_send_cancel(client_.socket().get_executor(), *target);
}

}  // namespace shardgate::proxy
