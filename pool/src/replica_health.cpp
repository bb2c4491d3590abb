// Replica fitness from observations: LSN text, the primary's position history, lags, states.
#include "shardgate/pool/replica_health.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>

namespace shardgate::pool {
namespace {

// 1 to 8 hex digits, as Postgres prints each half of a pg_lsn.
std::optional<std::uint32_t> parse_hex32(std::string_view s) {
    if (s.empty() || s.size() > 8) return std::nullopt;
    std::uint32_t v = 0;
    for (const char c : s) {
        std::uint32_t d = 0;
        if (c >= '0' && c <= '9') {
            d = static_cast<std::uint32_t>(c - '0');
        } else if (c >= 'A' && c <= 'F') {
            d = static_cast<std::uint32_t>(c - 'A' + 10);
        } else if (c >= 'a' && c <= 'f') {
            d = static_cast<std::uint32_t>(c - 'a' + 10);
        } else {
            return std::nullopt;
        }
        v = (v << 4) | d;
    }
    return v;
}

}  // namespace

std::optional<std::uint64_t> parse_lsn(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const auto hi = parse_hex32(text.substr(0, slash));
    const auto lo = parse_hex32(text.substr(slash + 1));
    if (!hi || !lo) return std::nullopt;
    return (std::uint64_t{*hi} << 32) | *lo;
}

std::string format_lsn(std::uint64_t lsn) {
    char buf[24];
    const int n = std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                                static_cast<unsigned>(lsn & 0xFFFFFFFFu));
    return std::string(buf, static_cast<std::size_t>(n));
}

std::optional<std::uint64_t> decode_primary_row(const text_row& row) {
    if (row.size() != 1 || !row[0]) return std::nullopt;
    return parse_lsn(*row[0]);
}

std::optional<replica_sample> decode_replica_row(const text_row& row) {
    if (row.size() != 3 || !row[0] || (*row[0] != "t" && *row[0] != "f")) return std::nullopt;
    replica_sample s;
    s.in_recovery = *row[0] == "t";
    if (row[1]) {
        const auto replay = parse_lsn(*row[1]);
        if (!replay) return std::nullopt;
        s.replay_lsn = *replay;
    } else if (s.in_recovery) {
        return std::nullopt;
    }
    if (row[2]) {
        s.receive_lsn = parse_lsn(*row[2]);
        if (!s.receive_lsn) return std::nullopt;
    }
    return s;
}

std::string_view to_string(replica_state s) {
    switch (s) {
        case replica_state::unknown:
            return "unknown";
        case replica_state::fit:
            return "fit";
        case replica_state::lagging:
            return "lagging";
        case replica_state::banned:
            return "banned";
    }
    return "?";
}

std::string_view to_string(check_failure f) {
    switch (f) {
        case check_failure::none:
            return "none";
        case check_failure::connect_failed:
            return "connect_failed";
        case check_failure::connection_lost:
            return "connection_lost";
        case check_failure::query_failed:
            return "query_failed";
        case check_failure::timeout:
            return "timeout";
        case check_failure::not_in_recovery:
            return "not_in_recovery";
    }
    return "?";
}

bool health_report::replayed_at_least(std::size_t replica, std::uint64_t lsn) const {
    if (replica >= replicas.size()) return false;
    const auto& r = replicas[replica];
    const bool answers = r.state == replica_state::fit || r.state == replica_state::lagging;
    return answers && r.replay_lsn >= lsn;
}

std::size_t health_report::fit_count() const {
    return static_cast<std::size_t>(
        std::count_if(replicas.begin(), replicas.end(), [](const auto& r) { return r.fit(); }));
}

replica_health::replica_health(std::size_t replica_count, lag_settings s) : s_(s) {
    readmit_bytes_ =
        std::min(s_.readmit_lag_bytes.value_or(s_.max_lag_bytes / 2), s_.max_lag_bytes);
    readmit_ms_ = std::min(s_.readmit_lag_ms.value_or(s_.max_lag_ms / 2), s_.max_lag_ms);
    s_.history_capacity = std::max<std::size_t>(s_.history_capacity, 3);
    s_.readmit_after_checks = std::max<std::uint32_t>(s_.readmit_after_checks, 1);
    if (!(s_.rtt_ewma_weight > 0.0 && s_.rtt_ewma_weight <= 1.0)) s_.rtt_ewma_weight = 0.25;
    report_.replicas.resize(replica_count);
}

void replica_health::observe_primary(health_clock::time_point at, std::uint64_t lsn) {
    report_.primary_known = true;
    report_.primary_reachable = true;
    report_.primary_checked = at;
    report_.primary_error.clear();
    report_.primary_lsn = lsn;
    if (!history_.empty() && lsn == history_.back().lsn) return;  // idle: keep the first sighting
    // Going back means another server (failover, restore): the old history says nothing.
    if (!history_.empty() && lsn < history_.back().lsn) history_.clear();
    history_.push_back({lsn, at});
    thin_history();
}

void replica_health::primary_failed(health_clock::time_point at, std::string detail) {
    report_.primary_reachable = false;
    report_.primary_checked = at;
    report_.primary_error = std::move(detail);
    ++report_.primary_failures;
}

state_change replica_health::observe_replica(std::size_t replica, health_clock::time_point at,
                                             const replica_sample& s) {
    if (!s.in_recovery) {
        return replica_failed(replica, at, check_failure::not_in_recovery,
                              "pg_is_in_recovery() is false: promoted, not a replica");
    }
    assert(replica < report_.replicas.size());
    auto& r = report_.replicas[replica];
    const auto from = r.state;
    ++r.checks;
    ++r.passes_in_row;
    r.last_check = at;
    r.replay_lsn = s.replay_lsn;
    r.receive_lsn = s.receive_lsn.value_or(0);
    // The first round trip starts the average.
    const auto rtt = static_cast<double>(s.rtt.count());
    const auto avg = static_cast<double>(r.rtt_ewma.count());
    const double next = r.rtt_ewma.count() == 0 ? rtt : avg + s_.rtt_ewma_weight * (rtt - avg);
    r.rtt_ewma = std::chrono::microseconds(std::llround(next));
    if (!report_.primary_known) return {from, from};  // lag unknown: no decision
    r.lag_bytes = byte_lag(s.replay_lsn);
    r.lag_ms = time_lag(s.replay_lsn, at);

    replica_state to = from;
    switch (from) {
        case replica_state::unknown:
        case replica_state::fit:
            to = over_max(r) ? replica_state::lagging : replica_state::fit;
            break;
        case replica_state::lagging:
            to = at_readmit_marks(r) ? replica_state::fit : replica_state::lagging;
            break;
        case replica_state::banned:
            if (r.passes_in_row >= s_.readmit_after_checks)
                to = at_readmit_marks(r) ? replica_state::fit : replica_state::lagging;
            break;
    }
    set_state(r, to, at);
    return {from, to};
}

state_change replica_health::replica_failed(std::size_t replica, health_clock::time_point at,
                                            check_failure why, std::string detail) {
    assert(replica < report_.replicas.size());
    assert(why != check_failure::none);
    auto& r = report_.replicas[replica];
    const auto from = r.state;
    ++r.checks;
    ++r.failures;
    r.passes_in_row = 0;
    r.last_check = at;
    r.last_failure = why;
    r.last_error = std::move(detail);
    set_state(r, replica_state::banned, at);
    return {from, replica_state::banned};
}

const replica_status& replica_health::status(std::size_t replica) const {
    assert(replica < report_.replicas.size());
    return report_.replicas[replica];
}

bool replica_health::replayed_at_least(std::size_t replica, std::uint64_t lsn) const {
    return report_.replayed_at_least(replica, lsn);
}

std::uint64_t replica_health::byte_lag(std::uint64_t replay_lsn) const {
    if (!report_.primary_known || report_.primary_lsn <= replay_lsn) return 0;
    return report_.primary_lsn - replay_lsn;
}

std::chrono::milliseconds replica_health::time_lag(std::uint64_t replay_lsn,
                                                   health_clock::time_point now) const {
    // The first position the replica has not replayed; none: it has everything we saw.
    const auto it = std::upper_bound(history_.begin(), history_.end(), replay_lsn,
                                     [](std::uint64_t l, const position& p) { return l < p.lsn; });
    if (it == history_.end() || now <= it->first_seen) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(now - it->first_seen);
}

bool replica_health::over_max(const replica_status& r) const {
    return (s_.max_lag_bytes != 0 && r.lag_bytes > s_.max_lag_bytes) ||
           (s_.max_lag_ms.count() != 0 && r.lag_ms > s_.max_lag_ms);
}

bool replica_health::at_readmit_marks(const replica_status& r) const {
    return (s_.max_lag_bytes == 0 || r.lag_bytes <= readmit_bytes_) &&
           (s_.max_lag_ms.count() == 0 || r.lag_ms <= readmit_ms_);
}

// The only place a replica's state changes. Nothing returns to `unknown`.
void replica_health::set_state(replica_status& r, replica_state to, health_clock::time_point at) {
    assert(to != replica_state::unknown || r.state == replica_state::unknown);
    if (r.state == to) return;
    if (to == replica_state::banned) ++r.bans;
    r.state = to;
    r.since = at;
}

// Over capacity, drop the inner position whose removal costs the least precision relative to
// its age: merging it leaves a gap (between its neighbours) that is smallest compared with how
// long ago it was. Recent positions stay dense and old ones thin out geometrically, so a lag is
// under-counted by a bounded fraction at any age. The oldest and the newest positions stay.
void replica_health::thin_history() {
    while (history_.size() > s_.history_capacity) {
        const auto now = history_.back().first_seen;
        std::size_t victim = 1;
        double best = 0;
        for (std::size_t i = 1; i + 1 < history_.size(); ++i) {
            const auto gap = history_[i + 1].first_seen - history_[i - 1].first_seen;
            const auto age = now - history_[i - 1].first_seen;
            const double cost = age.count() > 0 ? static_cast<double>(gap.count()) /
                                                      static_cast<double>(age.count())
                                                : 0.0;
            if (i == 1 || cost < best) {
                best = cost;
                victim = i;
            }
        }
        history_.erase(history_.begin() + static_cast<std::ptrdiff_t>(victim));
    }
}

}  // namespace shardgate::pool
