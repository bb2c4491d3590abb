// The pure placement step of read/write splitting (placement.hpp).
#include "shardgate/router/placement.hpp"

#include <vector>

namespace shardgate::router {
namespace {

struct candidate {
    bool primary;
    std::size_t index;
    std::uint32_t weight;
};

// Fit replicas that replayed min_lsn; if none, fit ones not slow (to be asked: `verify`).
void gather(const placement_input& in, std::vector<candidate>& c, bool& verify) {
    for (int pass = 0; pass < 2 && c.empty(); ++pass) {
        for (std::size_t i = 0; i < in.replicas.size(); ++i) {
            const auto& r = in.replicas[i];
            if (!r.fit) continue;
            if (pass == 0 && in.min_lsn != 0 && r.replayed < in.min_lsn) continue;
            if (pass == 1 && r.slow) continue;
            c.push_back({false, i, r.weight});
        }
        verify = pass == 1;
        if (in.min_lsn == 0) break;
    }
}

std::size_t pick_index(const placement_input& in, const std::vector<candidate>& c) {
    const auto n = in.turn;
    switch (in.policy) {
        case balance_policy::round_robin:
            return n % c.size();
        case balance_policy::weighted: {
            std::uint64_t total = 0;
            for (const auto& x : c)
                total += x.weight;
            if (total == 0) return n % c.size();
            auto r = in.random % total;
            for (std::size_t k = 0; k < c.size(); ++k) {
                if (r < c[k].weight) return k;
                r -= c[k].weight;
            }
            return c.size() - 1;
        }
        case balance_policy::least_connections: {
            // Ties go round robin, so an idle cluster still spreads.
            auto busy = [&](const candidate& x) {
                return x.primary ? std::uint32_t{0} : in.replicas[x.index].active;
            };
            std::size_t best = n % c.size();
            for (std::size_t k = 0; k < c.size(); ++k) {
                const auto at = (n + k) % c.size();
                if (busy(c[at]) < busy(c[best])) best = at;
            }
            return best;
        }
        case balance_policy::least_latency: {
            auto rtt = [&](const candidate& x) {
                return x.primary ? std::chrono::microseconds::max() : in.replicas[x.index].rtt;
            };
            std::size_t best = 0;
            for (std::size_t k = 1; k < c.size(); ++k)
                if (rtt(c[k]) < rtt(c[best])) best = k;
            return best;
        }
    }
    return 0;
}

}  // namespace

std::optional<placement> place_read(const placement_input& in) {
    thread_local std::vector<candidate> c;
    c.clear();
    bool verify = false;
    gather(in, c, verify);
    if (c.empty()) return std::nullopt;
    if (in.primary_reads) c.push_back({true, 0, in.primary_weight});
    const auto& x = c[pick_index(in, c)];
    return placement{x.primary, x.index, verify && !x.primary};
}

}  // namespace shardgate::router
