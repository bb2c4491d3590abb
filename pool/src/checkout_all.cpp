// Several server connections for one session, all or none, in one order (see checkout_all in
// server_pool.hpp).
#include <algorithm>
#include <numeric>

#include "shardgate/pool/server_pool.hpp"
#include "shardgate/protocol/sqlstate.hpp"

namespace shardgate::pool {

awaitable<multi_checkout_result> checkout_all(
    asio::any_io_executor ex, std::vector<std::shared_ptr<server_pool>> pools,
    std::vector<std::pair<std::string, std::string>> startup_params,
    std::optional<steady::time_point> since) {
    multi_checkout_result res;
    if (pools.empty()) co_return res;
    const auto start = since.value_or(steady::now());
    // The caller's indexes, sorted by the pools' global order.
    std::vector<std::size_t> by_order(pools.size());
    std::iota(by_order.begin(), by_order.end(), std::size_t{0});
    std::sort(by_order.begin(), by_order.end(), [&pools](std::size_t a, std::size_t b) {
        return pools[a]->order() < pools[b]->order();
    });
    for (std::size_t k = 1; k < by_order.size(); ++k) {
        if (pools[by_order[k]] == pools[by_order[k - 1]]) {
            res.failure.error_code = protocol::sqlstate::internal_error;
            res.failure.error_message = "a session asked pool " + pools[by_order[k]]->name() +
                                        " for two connections at once";
            res.failed_index = by_order[k];
            co_return res;
        }
    }
    std::vector<std::unique_ptr<server_conn>> got(pools.size());
    for (const auto i : by_order) {
        auto one = co_await pools[i]->checkout(ex, startup_params, start);
        if (!one.ok()) {
            // None: what was taken goes back untouched (idle, as the pool gave it).
            for (auto& c : got)
                give_back(std::move(c), conn_state::clean);
            res.failure = std::move(one);
            res.failed_index = i;
            co_return res;
        }
        got[i] = std::move(one.conn);
    }
    res.conns = std::move(got);
    co_return res;
}

}  // namespace shardgate::pool
