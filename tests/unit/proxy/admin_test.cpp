// Admin console command parsing: words, case, semicolons, database names, mistakes.
#include <doctest/doctest.h>

#include <string>

#include "admin/admin.hpp"
#include "config/config.hpp"

using namespace shardgate::proxy;
using kind = admin_command::kind;

TEST_CASE("console commands are case-insensitive words") {
    CHECK(parse_admin_command("SHOW POOLS").what == kind::show);
    CHECK(parse_admin_command("show pools").subject == "pools");
    CHECK(parse_admin_command("  Show\tDataBases \n").subject == "databases");
    for (const auto s : admin_show_subjects())
        CHECK(parse_admin_command("show " + std::string(s)).what == kind::show);
    CHECK(parse_admin_command("PAUSE").what == kind::pause);
    CHECK(parse_admin_command("pause").subject.empty());
    CHECK(parse_admin_command("pause app").subject == "app");
    CHECK(parse_admin_command("PAUSE App").subject == "App");  // names are kept as written
    CHECK(parse_admin_command("resume \"my db\"").what == kind::invalid);  // two words
    CHECK(parse_admin_command("resume \"a\"\"b\"").subject == "a\"b");
    CHECK(parse_admin_command("Resume").what == kind::resume);
    CHECK(parse_admin_command("RELOAD").what == kind::reload);
    CHECK(parse_admin_command("   ").what == kind::empty);
}

TEST_CASE("console command mistakes say what is wrong") {
    auto c = parse_admin_command("SELECT 1");
    CHECK(c.what == kind::invalid);
    CHECK(c.error == "invalid command \"SELECT 1\"");
    CHECK(parse_admin_command("SHOW").error == "SHOW takes one word, as in SHOW POOLS");
    CHECK(parse_admin_command("SHOW pools extra").what == kind::invalid);
    CHECK(parse_admin_command("SHOW CLIENTS").error == "unknown SHOW subject \"CLIENTS\"");
    CHECK(parse_admin_command("PAUSE a b").error == "PAUSE takes at most one database name");
    CHECK(parse_admin_command("PAUSE \"\"").what == kind::invalid);
    CHECK(parse_admin_command("RELOAD now").error == "RELOAD takes no arguments");
}

TEST_CASE("a Query is cut into statements at semicolons") {
    using v = std::vector<std::string_view>;
    CHECK(split_admin_statements("SHOW POOLS;") == v{"SHOW POOLS"});
    CHECK(split_admin_statements("SHOW POOLS") == v{"SHOW POOLS"});
    CHECK(split_admin_statements(" show pools ; show config;;") == v{"show pools", "show config"});
    CHECK(split_admin_statements(" ; ").empty());
    CHECK(split_admin_statements("").empty());
}

TEST_CASE("console access follows admin_users and stats_users") {
    auto cfg = parse_config(
        "[shardgate]\nadmin_users = [\"alice\"]\nstats_users = [\"bob\"]\n"
        "[databases.app]\n[users.alice]\npassword = \"a\"\n[users.bob]\npassword = \"b\"\n"
        "[users.carol]\npassword = \"c\"\n",
        "test.toml");
    CHECK(console_access(*cfg, "alice") == admin_access::admin);
    CHECK(console_access(*cfg, "bob") == admin_access::stats);
    CHECK(console_access(*cfg, "carol") == admin_access::none);
    CHECK(console_access(*cfg, "nobody") == admin_access::none);
}
