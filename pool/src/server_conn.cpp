// Pooled server connections: parameter bookkeeping and shardgate's own simple queries.
#include "shardgate/pool/server_conn.hpp"

#include <algorithm>

#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frontend.hpp"
#include "shardgate/protocol/write_buffer.hpp"

namespace shardgate::pool {
namespace pr = shardgate::protocol;

std::string startup_key(std::vector<std::pair<std::string, std::string>> params) {
    std::sort(params.begin(), params.end());
    std::string key;
    for (const auto& [k, v] : params) {
        key += k;
        key += '\0';
        key += v;
        key += '\0';
    }
    return key;
}

awaitable<exec_result> async_exec(server_conn& c, std::string_view sql,
                                  std::chrono::milliseconds timeout) {
    const std::string one[] = {std::string(sql)};  // a named local: GCC 12 and co_await
    co_return co_await async_exec_all(c, one, timeout);
}

awaitable<exec_result> async_exec_all(server_conn& c, std::span<const std::string> sqls,
                                      std::chrono::milliseconds timeout) {
    exec_result res;
    deadline limit(c.stream.socket().get_executor());
    limit.arm(timeout, [&c] { c.stream.close(); });
    pr::write_buffer wb;
    for (const auto& sql : sqls)
        pr::fe::encode(wb, pr::fe::query{sql});
    error_code ec;
    co_await c.stream.async_write(wb.view(), ec);
    std::size_t ready_left = sqls.size();
    bool row_seen = false;
    std::vector<std::byte> msg;
    while (!ec) {
        msg.resize(5);
        co_await c.stream.async_read_exact(asio::buffer(msg.data(), 5), ec);
        if (ec) break;
        std::uint32_t len = 0;
        for (int i = 1; i < 5; ++i)
            len = (len << 8) | static_cast<std::uint32_t>(msg[i]);
        if (len < 4 || len > pr::postgres_max_message_length) {
            res.error_message = "malformed message from the server";
            co_return res;
        }
        msg.resize(len + 1);
        if (len > 4) co_await c.stream.async_read_exact(asio::buffer(msg.data() + 5, len - 4), ec);
        if (ec) break;
        const auto body = std::span<const std::byte>(msg).subspan(5);
        switch (static_cast<char>(msg[0])) {
            case 'S':
                if (auto ps = pr::be::decode_parameter_status(body))
                    c.set_param(ps->name, ps->value);
                break;
            case 'E':
                if (res.error.empty()) {
                    res.error = msg;
                    if (auto e = pr::be::decode_error_response(body)) {
                        res.error_message = std::string(e->message());
                        res.error_code = std::string(e->code());
                    }
                }
                break;
            case 'D':
                if (!row_seen) {
                    row_seen = true;
                    if (auto row = pr::be::decode_data_row(body); row && !row->values.empty())
                        res.first_value = row->values.front();
                }
                break;
            case 'Z':
                if (auto z = pr::be::decode_ready_for_query(body)) {
                    res.txn_status = c.txn_status = z->status;
                    if (--ready_left == 0) {
                        res.ok = true;
                        co_return res;
                    }
                } else {
                    res.error_message = "malformed message from the server";
                    co_return res;
                }
                break;
            default:  // rows, completions, notices: not needed
                break;
        }
    }
    if (res.error_message.empty()) res.error_message = "connection lost: " + ec.message();
    res.ok = false;
    co_return res;
}

}  // namespace shardgate::pool
