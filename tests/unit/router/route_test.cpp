// Route decisions: the routing table (route_cases_*.cpp), setting errors, LSN requirements,
// server feedback, startup options and the function catalog.
#include "shardgate/router/route.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "route_cases.hpp"

using namespace shardgate::router;
using route_table::preset;
using route_table::route_case;

namespace route_table {

function_catalog test_catalog() {
    function_catalog c;
    c.add_volatile("public", "audit_write");
    c.add_volatile("public", "bump_counter");
    c.add_volatile("app", "next_order_no");
    c.add_volatile("public", "MixedCase");
    c.add_volatile("public", "report_fn");
    c.add_volatile("app", "safe_fn");
    c.add_write_function("touch_cache");
    c.add_read_only_function("public.report_fn");
    c.add_read_only_function("safe_fn");
    return c;
}

}  // namespace route_table

namespace {

session_routing_state state_for(preset p) {
    session_routing_state s;
    switch (p) {
        case preset::startup_replica:
            REQUIRE(apply_startup_setting(s, "shardgate.role", "replica"));
            break;
        case preset::startup_primary:
            REQUIRE(apply_startup_setting(s, "shardgate.role", "primary"));
            break;
        case preset::session_pending:
            REQUIRE(apply_startup_setting(s, "shardgate.consistency", "session"));
            s.write_lsn_pending = true;
            break;
        case preset::session_known:
            REQUIRE(apply_startup_setting(s, "shardgate.consistency", "session"));
            note_commit_lsn(s, 0x100);
            break;
        case preset::eventual_pending:
            s.write_lsn_pending = true;
            break;
        default:
            break;
    }
    return s;
}

std::vector<std::string_view> split_messages(std::string_view before) {
    std::vector<std::string_view> out;
    while (!before.empty()) {
        const auto bar = before.find('|');
        out.push_back(before.substr(0, bar));
        if (bar == std::string_view::npos) break;
        before.remove_prefix(bar + 1);
    }
    return out;
}

std::size_t run_table(std::span<const route_case> cases, classifier& cls,
                      const function_catalog& cat) {
    for (const route_case& c : cases) {
        CAPTURE(c.before);
        CAPTURE(c.sql);
        session_routing_state s = state_for(c.session);
        route_options opt;
        opt.route_by_first_statement = c.session == preset::first;
        for (std::string_view m : split_messages(c.before)) {
            const route_decision d = route_query(cls.classify(m), cat, s, opt);
            REQUIRE_FALSE(d.error.has_value());
        }
        route_decision d;
        if (c.session == preset::prepared) {
            const classified_query parsed = cls.classify_prepared(c.sql);
            session_routing_state again = s;
            d = route_query(parsed, cat, s, opt);
            const route_decision d2 = route_query(parsed, cat, again, opt);
            CHECK(to_string(d2.target) == to_string(d.target));
        } else {
            d = route_query(cls.classify(c.sql), cat, s, opt);
        }
        CHECK_FALSE(d.error.has_value());
        CHECK(to_string(d.target) == to_string(c.want));
        CHECK(to_string(d.why) == to_string(c.why));
    }
    return cases.size();
}

}  // namespace

TEST_CASE("routing table: statements, sessions, messages") {
    classifier cls(1024);
    const function_catalog cat = route_table::test_catalog();
    std::size_t rows = 0;
    rows += run_table(route_table::statement_cases(), cls, cat);
    rows += run_table(route_table::session_cases(), cls, cat);
    rows += run_table(route_table::message_cases(), cls, cat);
    MESSAGE("routing table rows: " << rows << "; classifier hit rate "
                                   << static_cast<int>(cls.hit_rate() * 100) << "%");
    CHECK(rows >= 250);
}

TEST_CASE("unusable shardgate.* values are refused and change nothing") {
    const function_catalog cat;
    const route_options opt;
    struct row {
        std::string_view sql;
        routing_setting name;
        std::string_view value;
        std::size_t statement;
    };
    const std::vector<row> rows = {
        {"SET shardgate.role = 'bogus'", routing_setting::role, "bogus", 0},
        {"SET LOCAL shardgate.role = standby", routing_setting::role, "standby", 0},
        {"SET shardgate.consistency = 'strong'", routing_setting::consistency, "strong", 0},
        {"SET shardgate.min_lsn = 'zz/1'", routing_setting::min_lsn, "zz/1", 0},
        {"SET shardgate.min_lsn = -1", routing_setting::min_lsn, "-1", 0},
        {"SELECT 1; SET shardgate.role = ''", routing_setting::role, "", 1},
    };
    for (const auto& r : rows) {
        CAPTURE(r.sql);
        session_routing_state s;
        const session_routing_state before = s;
        const auto d = route_query(classify_query(r.sql), cat, s, opt);
        REQUIRE(d.error.has_value());
        CHECK(to_string(d.error->name) == to_string(r.name));
        CHECK(d.error->value == r.value);
        CHECK(d.error->statement == r.statement);
        CHECK(s.session == before.session);
    }
}

TEST_CASE("replica targets carry the LSN they must have replayed") {
    const function_catalog cat;
    const route_options opt;
    session_routing_state s;
    auto route = [&](std::string_view sql) {
        return route_query(classify_query(sql), cat, s, opt);
    };
    CHECK(route("SELECT 1").min_lsn == 0);  // a client that never writes waits for nothing
    route("SET shardgate.min_lsn = '1/16B3748'");
    CHECK(route("SELECT 1").min_lsn == 0x1016B3748);
    CHECK(route("INSERT INTO t VALUES (1)").min_lsn == 0);
    route("RESET shardgate.min_lsn");
    route("SET shardgate.consistency = session");
    route("INSERT INTO t VALUES (1)");
    CHECK(s.write_lsn_pending);
    CHECK(to_string(route("SELECT 1").target) == "primary");  // LSN not known yet
    note_commit_lsn(s, 0x200);
    const auto d = route("SELECT 1");
    CHECK(to_string(d.target) == "replica");
    CHECK(d.min_lsn == 0x200);
    route("BEGIN");
    route("SET LOCAL shardgate.min_lsn = '0/300'");
    CHECK(route("/* shardgate: role=replica */ SELECT 1").min_lsn == 0x300);
    route("COMMIT");
    CHECK(route("SELECT 1").min_lsn == 0x200);
    route("SET shardgate.consistency = eventual");
    CHECK(route("SELECT 1").min_lsn == 0);
}

TEST_CASE("decisions say whether they write, why, and when a write goes to a replica") {
    const function_catalog cat = route_table::test_catalog();
    const route_options opt;
    session_routing_state s;
    classifier cls;
    auto route = [&](std::string_view sql) { return route_query(cls.classify(sql), cat, s, opt); };
    auto d = route("INSERT INTO t VALUES (1)");
    CHECK(d.writes);
    CHECK_FALSE(d.read_only_conflict);
    CHECK(d.statement_reason == write_reason::dml);
    d = route("SELECT 1; SELECT public.audit_write(2)");
    CHECK(d.writes);
    CHECK(d.statement == 1);
    CHECK(d.statement_reason == write_reason::volatile_function);
    CHECK(d.function == "public.audit_write");
    d = route("SELECT touch_cache('k')");
    CHECK(d.statement_reason == write_reason::configured_write_function);
    d = route("SELECT 1");
    CHECK_FALSE(d.writes);
    d = route("/* shardgate: role=replica */ DELETE FROM t");
    CHECK(d.read_only_conflict);
    s = session_routing_state{};
    route("BEGIN READ ONLY");
    d = route("UPDATE t SET a = 1");
    CHECK(to_string(d.target) == "replica");
    CHECK(d.read_only_conflict);
    route("ROLLBACK");
    CHECK_FALSE(s.write_lsn_pending);  // the replica refused it; nothing committed
}

TEST_CASE("ReadyForQuery corrects the transaction state") {
    const function_catalog cat;
    const route_options opt;
    session_routing_state s;
    auto route = [&](std::string_view sql) {
        return route_query(classify_query(sql), cat, s, opt);
    };
    // The statement before BEGIN failed, so BEGIN never ran: the server is idle.
    route("SELECT 1/0; BEGIN");
    CHECK(s.txn == txn_status::open);
    note_ready_for_query(s, 'I', server_role::primary);
    CHECK(s.txn == txn_status::idle);
    CHECK(to_string(route("SELECT 1").target) == "replica");
    // A failed read-only transaction stays on its replica until ROLLBACK; COMMIT rolls back.
    route("BEGIN READ ONLY");
    route("SET shardgate.role = 'primary'");
    note_ready_for_query(s, 'E', server_role::replica);
    CHECK(s.txn == txn_status::failed);
    CHECK(to_string(route("SELECT 1").target) == "replica");
    route("COMMIT");
    CHECK(s.txn == txn_status::idle);
    CHECK(s.session.role == role_preference::automatic);  // the SET was rolled back
    // A transaction the router did not see begin (a function that ran BEGIN? a bug?) is
    // adopted on the server that reported it.
    note_ready_for_query(s, 'T', server_role::primary);
    CHECK(to_string(route("SELECT 1").target) == "primary");
    note_ready_for_query(s, 'I', server_role::primary);
    CHECK(to_string(route("SELECT 1").target) == "replica");
}

TEST_CASE("startup options") {
    session_routing_state s;
    CHECK(apply_startup_setting(s, "shardgate.role", "replica"));
    CHECK(apply_startup_setting(s, "SHARDGATE.CONSISTENCY", "session"));
    CHECK(apply_startup_setting(s, "default_transaction_read_only", "on"));
    CHECK(apply_startup_setting(s, "shardgate.min_lsn", "0/10"));
    CHECK_FALSE(apply_startup_setting(s, "shardgate.role", "both"));
    CHECK_FALSE(apply_startup_setting(s, "search_path", "x"));
    CHECK(s.startup == s.session);
    CHECK(s.session.role == role_preference::replica);
    CHECK(s.session.consistency == consistency_mode::session);
    CHECK(s.session.default_read_only);
    CHECK(s.session.min_lsn == 0x10);
}

TEST_CASE("function catalog matching") {
    const function_catalog c = route_table::test_catalog();
    using v = function_catalog::verdict;
    struct row {
        std::string_view call;
        v want;
    };
    const std::vector<row> rows = {
        {"audit_write", v::volatile_function},
        {"public.audit_write", v::volatile_function},
        {"other.audit_write", v::volatile_function},
        {"audit_writer", v::read},
        {"MixedCase", v::volatile_function},
        {"mixedcase", v::read},
        {"touch_cache", v::configured_write},
        {"x.touch_cache", v::configured_write},
        {"report_fn", v::read},
        {"public.report_fn", v::read},
        {"other.report_fn", v::volatile_function},
        {"safe_fn", v::read},
        {"app.safe_fn", v::read},
        {"lower", v::read},
    };
    for (const auto& r : rows) {
        CAPTURE(r.call);
        CHECK(static_cast<int>(c.check(r.call)) == static_cast<int>(r.want));
    }
    CHECK(function_catalog{}.empty());
}

TEST_CASE("value parsers") {
    CHECK(parse_lsn("0/16B3748") == std::optional<std::uint64_t>(0x16B3748));
    CHECK(parse_lsn("FFFFFFFF/FFFFFFFF") == std::optional<std::uint64_t>(~std::uint64_t{0}));
    for (std::string_view bad : {"", "/", "1/", "/1", "1/2/3", "123456789/0", "g/0", " 0/1"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_lsn(bad).has_value());
    }
    CHECK(parse_role("Replica") == std::optional<role_preference>(role_preference::replica));
    CHECK(parse_role("AUTO") == std::optional<role_preference>(role_preference::automatic));
    CHECK_FALSE(parse_role("any").has_value());
    CHECK(parse_consistency("Session") ==
          std::optional<consistency_mode>(consistency_mode::session));
    CHECK_FALSE(parse_consistency("strong").has_value());
}
