// Replica fitness decisions: LSN text, time lag on idle and busy primaries, lag limits with
// hysteresis, bans and re-admission, promoted replicas, round-trip averages, history thinning.
#include "shardgate/pool/replica_health.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

using namespace shardgate::pool;
using namespace std::chrono_literals;

namespace {

constexpr auto unknown = replica_state::unknown;
constexpr auto fit = replica_state::fit;
constexpr auto lagging = replica_state::lagging;
constexpr auto banned = replica_state::banned;
constexpr auto no_failure = check_failure::none;

const health_clock::time_point t0 = health_clock::time_point{} + 1h;
health_clock::time_point at(int ms) {
    return t0 + std::chrono::milliseconds(ms);
}

// One polling moment: an optional primary sample, then one check of replica 0 (a pass with
// `replay`, or the failure `fail`), then what replica 0 must look like.
struct step {
    int ms;
    std::optional<std::uint64_t> primary;
    std::uint64_t replay;
    check_failure fail;
    replica_state expect;
    std::uint64_t lag_bytes;
    std::int64_t lag_ms;
    bool in_recovery = true;
};

void run(const lag_settings& s, const std::vector<step>& steps) {
    replica_health h(1, s);
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const auto& st = steps[i];
        CAPTURE(i);
        CAPTURE(st.ms);
        if (st.primary) h.observe_primary(at(st.ms), *st.primary);
        if (st.fail != no_failure) {
            h.replica_failed(0, at(st.ms), st.fail, "failed");
        } else {
            h.observe_replica(0, at(st.ms), {st.in_recovery, st.replay, st.replay, 500us});
        }
        const auto& r = h.status(0);
        CHECK(to_string(r.state) == to_string(st.expect));
        if (st.fail == no_failure && st.in_recovery) {
            CHECK(r.lag_bytes == st.lag_bytes);
            CHECK(r.lag_ms.count() == st.lag_ms);
            CHECK(r.replay_lsn == st.replay);
        }
    }
}

lag_settings limits(std::uint64_t bytes, std::chrono::milliseconds ms) {
    lag_settings s;
    s.max_lag_bytes = bytes;
    s.max_lag_ms = ms;
    return s;
}

}  // namespace

TEST_CASE("LSN text parses and formats like pg_lsn") {
    struct lsn_case {
        std::string_view text;
        std::optional<std::uint64_t> value;
    };
    const std::vector<lsn_case> cases = {
        {"16/B374D848", 0x16B374D848ull},
        {"0/0", 0},
        {"0/1", 1},
        {"1/0", 1ull << 32},
        {"FFFFFFFF/FFFFFFFF", ~0ull},
        {"a/b", 0xA0000000Bull},
        {"0/3000148", 0x3000148},
        {"", std::nullopt},
        {"/", std::nullopt},
        {"1/", std::nullopt},
        {"/1", std::nullopt},
        {"16B374D848", std::nullopt},
        {"100000000/0", std::nullopt},
        {"0/100000000", std::nullopt},
        {"G/0", std::nullopt},
        {"1/2/3", std::nullopt},
        {" 1/2", std::nullopt},
        {"1/2 ", std::nullopt},
        {"-1/2", std::nullopt},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        CHECK(parse_lsn(c.text) == c.value);
    }
    const std::vector<std::pair<std::uint64_t, std::string_view>> formats = {
        {0x16B374D848ull, "16/B374D848"},
        {0, "0/0"},
        {1ull << 32, "1/0"},
        {~0ull, "FFFFFFFF/FFFFFFFF"},
        {0x3000148, "0/3000148"},
    };
    for (const auto& [value, text] : formats) {
        CAPTURE(text);
        CHECK(format_lsn(value) == text);
        CHECK(parse_lsn(format_lsn(value)) == value);
    }
}

TEST_CASE("check rows decode") {
    using std::nullopt;
    CHECK(decode_primary_row({"0/3000148"}) == 0x3000148);
    CHECK(decode_primary_row({nullopt}) == nullopt);
    CHECK(decode_primary_row({"x"}) == nullopt);
    CHECK(decode_primary_row({"0/1", "0/2"}) == nullopt);
    CHECK(decode_primary_row({}) == nullopt);

    struct row_case {
        text_row row;
        bool ok;
        bool in_recovery;
        std::uint64_t replay;
        std::optional<std::uint64_t> receive;
    };
    const std::vector<row_case> cases = {
        {{"t", "0/3000148", "0/3000200"}, true, true, 0x3000148, 0x3000200},
        {{"t", "1/0", nullopt}, true, true, 1ull << 32, nullopt},  // WAL from the archive
        {{"f", nullopt, nullopt}, true, false, 0, nullopt},        // promoted, never replayed
        {{"f", "0/10", "0/10"}, true, false, 0x10, 0x10},
        {{"t", nullopt, nullopt}, false, false, 0, nullopt},  // in recovery without a position
        {{"true", "0/1", "0/1"}, false, false, 0, nullopt},
        {{nullopt, "0/1", "0/1"}, false, false, 0, nullopt},
        {{"t", "zz", "0/1"}, false, false, 0, nullopt},
        {{"t", "0/1", "zz"}, false, false, 0, nullopt},
        {{"t", "0/1"}, false, false, 0, nullopt},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        CAPTURE(i);
        const auto& c = cases[i];
        const auto s = decode_replica_row(c.row);
        REQUIRE(s.has_value() == c.ok);
        if (!s) continue;
        CHECK(s->in_recovery == c.in_recovery);
        CHECK(s->replay_lsn == c.replay);
        CHECK(s->receive_lsn == c.receive);
    }
}

TEST_CASE("state and failure names") {
    CHECK(to_string(unknown) == "unknown");
    CHECK(to_string(fit) == "fit");
    CHECK(to_string(lagging) == "lagging");
    CHECK(to_string(banned) == "banned");
    CHECK(to_string(check_failure::connect_failed) == "connect_failed");
    CHECK(to_string(check_failure::timeout) == "timeout");
    CHECK(to_string(check_failure::not_in_recovery) == "not_in_recovery");
}

TEST_CASE("an idle primary keeps the time lag at 0") {
    // The primary stays at 0/5000 for a minute; the replica has replayed all of it. The
    // replay-timestamp method would report a minute of lag here.
    std::vector<step> steps;
    for (int ms = 0; ms <= 60000; ms += 250)
        steps.push_back({ms, 0x5000, 0x5000, no_failure, fit, 0, 0});
    run(limits(1024, 1000ms), steps);
}

TEST_CASE("a stalled replica's lag grows from the first write it missed") {
    run(limits(0, 1000ms), {
                               {0, 100, 100, no_failure, fit, 0, 0},
                               // idle for 5 s: nothing to miss
                               {5000, 100, 100, no_failure, fit, 0, 0},
                               // a write seen at 5250; the replica misses it
                               {5250, 200, 100, no_failure, fit, 100, 0},
                               {5500, 300, 100, no_failure, fit, 200, 250},
                               {6250, 300, 100, no_failure, fit, 200, 1000},  // at the max
                               {6300, 300, 100, no_failure, lagging, 200, 1050},
                               // replayed 200: now missing only what appeared at 5500
                               {6500, 300, 200, no_failure, lagging, 100, 1000},
                               {6600, std::nullopt, 300, no_failure, fit, 0, 0},
                               // the replica sees more than our last primary sample: no lag
                               {6700, std::nullopt, 400, no_failure, fit, 0, 0},
                           });
}

TEST_CASE("byte limits with hysteresis") {
    run(limits(1000, 0ms),
        {
            {0, 10000, 10000, no_failure, fit, 0, 0},
            {250, 11000, 10000, no_failure, fit, 1000, 0},  // at the max: still fit
            {500, 11001, 10000, no_failure, lagging, 1001, 250},
            {750, 11001, 10300, no_failure, lagging, 701, 500},  // between marks
            {1000, 11001, 10500, no_failure, lagging, 501, 750},
            {1250, 11001, 10501, no_failure, fit, 500, 1000},  // at readmit (half)
            {1500, 11400, 10501, no_failure, fit, 899, 1250},  // below the max: stays fit
            {1750, 11600, 10599, no_failure, lagging, 1001, 1500},
        });
    // An explicit readmit mark.
    auto s = limits(1000, 0ms);
    s.readmit_lag_bytes = 100;
    run(s, {
               {0, 5000, 3000, no_failure, lagging, 2000, 0},
               {250, 5000, 4800, no_failure, lagging, 200, 250},
               {500, 5000, 4900, no_failure, fit, 100, 500},
           });
}

TEST_CASE("time limits with hysteresis") {
    auto s = limits(0, 1000ms);
    s.readmit_lag_ms = 200ms;
    run(s, {
               {0, 100, 100, no_failure, fit, 0, 0},
               {100, 200, 100, no_failure, fit, 100, 0},
               {1101, 300, 100, no_failure, lagging, 200, 1001},
               // missing what appeared at 1101: between the marks, still lagging
               {1600, 400, 200, no_failure, lagging, 200, 499},
               // missing what appeared at 1600: at the readmit mark
               {1800, std::nullopt, 300, no_failure, fit, 100, 200},
               {2700, 400, 300, no_failure, lagging, 100, 1100},
               {2800, 500, 400, no_failure, fit, 100, 0},
           });
}

TEST_CASE("a failed check bans; passing checks re-admit") {
    run(limits(1000, 0ms), {
                               {0, 5000, 5000, no_failure, fit, 0, 0},
                               {250, 5000, 0, check_failure::connect_failed, banned, 0, 0},
                               {500, 5000, 0, check_failure::timeout, banned, 0, 0},
                               {750, 5000, 5000, no_failure, fit, 0, 0},
                               {1000, 5000, 0, check_failure::connection_lost, banned, 0, 0},
                               // answers again, but above the readmit mark: lagging, not banned
                               {1250, 5800, 5000, no_failure, lagging, 800, 0},
                               {1500, 5800, 5800, no_failure, fit, 0, 0},
                           });
    // Counters.
    replica_health h(2, limits(1000, 0ms));
    h.observe_primary(at(0), 100);
    h.observe_replica(0, at(0), {true, 100, 100, 300us});
    CHECK(h.replica_failed(0, at(10), check_failure::query_failed, "ERROR: boom").to == banned);
    CHECK_FALSE(h.replica_failed(0, at(20), check_failure::timeout, "slow").changed());
    const auto back = h.observe_replica(0, at(30), {true, 100, 100, 300us});
    CHECK(back.from == banned);
    CHECK(back.to == fit);
    h.replica_failed(0, at(40), check_failure::connect_failed, "refused");
    const auto& r = h.status(0);
    CHECK(r.checks == 5);
    CHECK(r.failures == 3);
    CHECK(r.bans == 2);
    CHECK(r.last_failure == check_failure::connect_failed);
    CHECK(r.last_error == "refused");
    CHECK(r.since == at(40));
    CHECK(h.status(1).state == unknown);  // never checked
    CHECK(h.report().fit_count() == 0);
}

TEST_CASE("readmit_after_checks passes in a row end a ban") {
    auto s = limits(1000, 0ms);
    s.readmit_after_checks = 3;
    run(s, {
               {0, 100, 0, check_failure::connect_failed, banned, 0, 0},
               {250, 100, 100, no_failure, banned, 0, 0},
               {500, 100, 100, no_failure, banned, 0, 0},
               {750, 100, 0, check_failure::timeout, banned, 0, 0},  // starts over
               {1000, 100, 100, no_failure, banned, 0, 0},
               {1250, 100, 100, no_failure, banned, 0, 0},
               {1500, 100, 100, no_failure, fit, 0, 0},
           });
}

TEST_CASE("a promoted replica is not a replica") {
    replica_health h(1, limits(1000, 1000ms));
    h.observe_primary(at(0), 100);
    h.observe_replica(0, at(0), {true, 100, 100, 300us});
    CHECK(h.replayed_at_least(0, 100));
    const auto c = h.observe_replica(0, at(250), {false, 100, std::nullopt, 300us});
    CHECK(c.from == fit);
    CHECK(c.to == banned);
    CHECK(h.status(0).last_failure == check_failure::not_in_recovery);
    CHECK_FALSE(h.replayed_at_least(0, 100));
    CHECK(h.report().fit_count() == 0);
    // Back in recovery (rebuilt as a replica): re-admitted like any banned replica.
    CHECK(h.observe_replica(0, at(500), {true, 100, 100, 300us}).to == fit);
}

TEST_CASE("nothing is decided before the primary's position is known") {
    replica_health h(1, limits(1000, 1000ms));
    CHECK_FALSE(h.observe_replica(0, at(0), {true, 100, 100, 300us}).changed());
    CHECK(h.status(0).state == unknown);
    CHECK(h.status(0).replay_lsn == 100);
    h.primary_failed(at(100), "connection refused");
    CHECK_FALSE(h.report().primary_known);
    h.observe_replica(0, at(250), {true, 100, 100, 300us});
    CHECK(h.status(0).state == unknown);
    h.observe_primary(at(300), 100);
    CHECK(h.observe_replica(0, at(500), {true, 100, 100, 300us}).to == fit);
}

TEST_CASE("an unreachable primary: lags against its last position") {
    replica_health h(1, limits(1000, 1000ms));
    h.observe_primary(at(0), 100);
    h.observe_primary(at(250), 600);
    h.primary_failed(at(500), "timeout");
    CHECK(h.report().primary_known);
    CHECK_FALSE(h.report().primary_reachable);
    CHECK(h.report().primary_error == "timeout");
    CHECK(h.report().primary_failures == 1);
    h.observe_replica(0, at(750), {true, 400, 600, 300us});
    CHECK(h.status(0).lag_bytes == 200);
    CHECK(h.status(0).lag_ms == 500ms);
    CHECK(h.status(0).fit());
    h.observe_primary(at(1000), 600);
    CHECK(h.report().primary_reachable);
    CHECK(h.report().primary_error.empty());
}

TEST_CASE("a primary going back in WAL (another server) restarts the history") {
    replica_health h(1, limits(0, 1000ms));
    h.observe_primary(at(0), 1000);
    h.observe_primary(at(100), 2000);
    h.observe_primary(at(200), 50);
    CHECK(h.history_size() == 1);
    CHECK(h.byte_lag(40) == 10);
    CHECK(h.time_lag(40, at(700)) == 500ms);
    CHECK(h.byte_lag(1500) == 0);
    CHECK(h.time_lag(1500, at(700)) == 0ms);
}

TEST_CASE("the position history thins with age and keeps its ends") {
    lag_settings s = limits(0, 1000ms);
    s.history_capacity = 32;
    replica_health h(1, s);
    constexpr int samples = 1000;  // one new position every 100 ms
    for (int i = 0; i < samples; ++i)
        h.observe_primary(at(i * 100), 1000 + static_cast<std::uint64_t>(i));
    CHECK(h.history_size() == 32);
    const auto now = at(samples * 100);
    // The oldest position stays: a replica behind everything counts from the first sample.
    CHECK(h.time_lag(0, now) == std::chrono::milliseconds(samples * 100));
    for (int k = 0; k + 1 < samples; ++k) {
        // Replayed sample k: missing sample k + 1, first seen at (k + 1) * 100 ms.
        CAPTURE(k);
        const auto exact = std::chrono::milliseconds((samples - k - 1) * 100);
        const auto lag = h.time_lag(1000 + static_cast<std::uint64_t>(k), now);
        CHECK(lag <= exact);
        CHECK(lag.count() >= exact.count() * 7 / 10);  // under-counted by a bounded fraction
        if (k >= samples - 6) CHECK(lag == exact);     // recent positions stay exact
    }
    CHECK(h.time_lag(1000 + samples - 1, now) == 0ms);
}

TEST_CASE("round-trip average and read-your-writes") {
    lag_settings s = limits(1000, 0ms);
    s.rtt_ewma_weight = 0.5;
    replica_health h(2, s);
    h.observe_primary(at(0), 500);
    h.observe_replica(0, at(0), {true, 500, 500, 1000us});
    CHECK(h.status(0).rtt_ewma == 1000us);
    h.observe_replica(0, at(250), {true, 500, 500, 2000us});
    CHECK(h.status(0).rtt_ewma == 1500us);
    h.observe_replica(0, at(500), {true, 500, 500, 1500us});
    CHECK(h.status(0).rtt_ewma == 1500us);

    CHECK(h.replayed_at_least(0, 499));
    CHECK(h.replayed_at_least(0, 500));
    CHECK_FALSE(h.replayed_at_least(0, 501));
    CHECK_FALSE(h.replayed_at_least(1, 0));  // never checked
    CHECK_FALSE(h.replayed_at_least(7, 0));  // no such replica
    // Lagging replicas still answer: their replay position counts.
    h.observe_primary(at(750), 5000);
    h.observe_replica(1, at(750), {true, 3000, 4000, 1000us});
    CHECK(h.status(1).state == lagging);
    CHECK(h.replayed_at_least(1, 3000));
    CHECK(h.status(1).receive_lsn == 4000);
    h.replica_failed(1, at(1000), check_failure::timeout, "slow");
    CHECK_FALSE(h.replayed_at_least(1, 3000));
    CHECK(h.report().fit_count() == 1);
    CHECK(h.report().fit(0));
    CHECK_FALSE(h.report().fit(1));
}
