// How server connections come back to their pool: clean (checked in), dirty (reset by the
// pool first, closed if that fails or the backend kept a temporary schema) or poisoned
// (closed). Split from server_pool.cpp.
#include <spdlog/spdlog.h>

#include "shardgate/pool/server_pool.hpp"

namespace shardgate::pool {

void server_pool::release(std::unique_ptr<server_conn> c, conn_state how) {
    if (!c) return;
    switch (how) {
        case conn_state::clean:
            return checkin(std::move(c));
        case conn_state::poisoned:
            return discard(std::move(c));
        case conn_state::dirty:
            break;
    }
    if (steady::now() >= c->expires || !c->stream.is_open())
        return discard(std::move(c));  // no point in cleaning it first
    auto ex = c->stream.socket().get_executor();
    asio::co_spawn(ex, reset_then_checkin(shared_from_this(), std::move(c)), asio::detached);
}

awaitable<void> server_pool::reset_then_checkin([[maybe_unused]] std::shared_ptr<server_pool> self,
                                                std::unique_ptr<server_conn> c) {
    // `self`: the pool outlives the reset (the caller's reference may be gone already).
    std::string reset_query;
    std::chrono::milliseconds timeout{};
    {
        std::lock_guard lock(mu_);
        reset_query = s_.reset_query;
        timeout = s_.server_connect_timeout;
    }
    // One round trip: a transaction the client left open is rolled back, the session reset,
    // and the backend asked whether it has a temporary schema, which outlives DISCARD ALL
    // (pg_my_temp_schema() stays set once the backend has created it).
    // The reset query comes last: pg_stat_activity shows it for an idle pooled connection.
    std::vector<std::string> sqls;
    if (c->txn_status != 'I') sqls.emplace_back("ROLLBACK");
    sqls.emplace_back("SELECT pg_catalog.pg_my_temp_schema() <> 0");
    if (!reset_query.empty()) sqls.push_back(reset_query);
    auto r = co_await async_exec_all(*c, sqls, timeout);
    const bool temp = r.first_value.value_or("t") != "f";
    if (!r.ok || !r.error.empty() || r.txn_status != 'I' || temp) {
        if (temp && r.ok && r.error.empty())
            spdlog::debug("pool {}: server connection {} holds a temporary schema; closing it",
                          name_, c->id);
        else
            spdlog::warn("pool {}: resetting server connection {} failed ({}); closing it", name_,
                         c->id, r.error_message);
        discard(std::move(c));
        co_return;
    }
    // NOLINTNEXTLINE(bugprone-use-after-move): clang-tidy 14 does not see the co_return above
    c->applied.clear();
    const auto q = [&reset_query] {
        std::string l(reset_query);
        for (auto& ch : l)
            if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
        return l;
    }();
    if (q.find("discard all") != std::string::npos || q.find("deallocate") != std::string::npos)
        c->prepared.clear();  // they are gone from the server
    // Transaction-mode connections are opened without parameters: after the reset they carry
    // none of the last client's.
    c->applied_key.clear();
    checkin(std::move(c));
}

std::string_view to_string(conn_state s) {
    switch (s) {
        case conn_state::clean:
            return "clean";
        case conn_state::dirty:
            return "dirty";
        case conn_state::poisoned:
            return "poisoned";
    }
    return "?";
}

void give_back(std::unique_ptr<server_conn> c, conn_state how) {
    if (!c) return;
    if (auto home = c->home.lock()) return home->release(std::move(c), how);
    c->stream.close();  // its pool is gone (not counted anywhere)
}

}  // namespace shardgate::pool
