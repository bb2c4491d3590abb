// Monitor check queries: simple Query out, rows and errors in, bounded by a deadline.
// Message flow: https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.4
#include "shardgate/pool/probe.hpp"

#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frontend.hpp"
#include "shardgate/protocol/write_buffer.hpp"

namespace shardgate::pool {
namespace pr = shardgate::protocol;
namespace {

// The check replies are a few dozen bytes; anything this large is not a reply to them.
constexpr std::uint32_t max_probe_message = 64 * 1024;

// Reads one whole message (type, length, body) into `msg`.
awaitable<bool> read_message(pg_stream& s, std::vector<std::byte>& msg, error_code& ec) {
    msg.resize(5);
    co_await s.async_read_exact(asio::buffer(msg.data(), 5), ec);
    if (ec) co_return false;
    std::uint32_t len = 0;
    for (int i = 1; i < 5; ++i)
        len = (len << 8) | static_cast<std::uint32_t>(msg[i]);
    if (len < 4 || len > max_probe_message) {
        ec = asio::error::message_size;
        co_return false;
    }
    msg.resize(len + 1);
    if (len > 4) co_await s.async_read_exact(asio::buffer(msg.data() + 5, len - 4), ec);
    co_return !ec;
}

}  // namespace

awaitable<probe_reply> async_probe(pg_stream& s, std::string_view sql,
                                   std::chrono::milliseconds timeout) {
    probe_reply res;
    bool timed_out = false;
    deadline limit(s.socket().get_executor());
    limit.arm(timeout, [&s, &timed_out] {
        timed_out = true;
        s.close();
    });
    pr::write_buffer wb;
    pr::fe::encode(wb, pr::fe::query{std::string(sql)});
    const auto start = std::chrono::steady_clock::now();
    res.sent_at = start;
    error_code ec;
    co_await s.async_write(wb.view(), ec);
    bool has_row = false;
    std::string server_error;  // the first ErrorResponse: "SQLSTATE: message"
    std::vector<std::byte> msg;
    while (!ec) {
        // (No co_await inside a condition: GCC 12 mishandles some of those.)
        const bool got = co_await read_message(s, msg, ec);
        if (!got) break;
        const auto body = std::span<const std::byte>(msg).subspan(5);
        const char type = static_cast<char>(msg[0]);
        if (type == 'D' && !has_row) {
            auto row = pr::be::decode_data_row(body);
            if (!row) {
                res.failure = check_failure::query_failed;
                res.error = "malformed DataRow";
                co_return res;
            }
            res.row = std::move(row->values);
            has_row = true;
        } else if (type == 'E' && server_error.empty()) {
            const auto e = pr::be::decode_error_response(body);
            server_error = e ? std::string(e->code()) + ": " + std::string(e->message())
                             : "malformed ErrorResponse";
        } else if (type == 'Z') {
            res.rtt = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - start);
            if (!server_error.empty() || !has_row) {
                res.failure = check_failure::query_failed;
                res.error = server_error.empty() ? "no row in the reply" : server_error;
            }
            co_return res;
        }  // RowDescription, CommandComplete, notices, ParameterStatus: not needed
    }
    res.failure = timed_out ? check_failure::timeout : check_failure::connection_lost;
    res.error = timed_out ? "no reply within " + std::to_string(timeout.count()) + " ms"
                          : "connection lost: " + ec.message();
    if (!server_error.empty()) res.error += " (after " + server_error + ")";
    co_return res;
}

void close_politely(pg_stream& s) {
    if (!s.is_open()) return;
    pr::write_buffer wb;
    pr::fe::encode(wb, pr::fe::terminate{});
    s.write_now(wb.view());
    s.close();
}

}  // namespace shardgate::pool
