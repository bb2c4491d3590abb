// case_builder: turns the corpus' compact descriptions into frontend message batches; fixture.
#include <utility>

#include "corpus.hpp"
#include "shardgate/protocol/frontend.hpp"

namespace shardgate::difftest {
namespace fe = shardgate::protocol::fe;

case_builder::case_builder(std::string name) {
    case_.name = std::move(name);
}

void case_builder::end_step() {
    if (pending_.send.empty() && pending_.copy_in.empty() && pending_.side_sql.empty()) return;
    case_.steps.push_back(std::move(pending_));
    pending_ = step{};
}

case_builder& case_builder::q(std::string_view sql) {
    pq(sql);
    end_step();
    return *this;
}

case_builder& case_builder::qs(std::initializer_list<std::string_view> sqls) {
    for (auto sql : sqls)
        q(sql);
    return *this;
}

case_builder& case_builder::pq(std::string_view sql) {
    fe::encode(pending_.send, fe::query{std::string(sql)});
    ++pending_.goal.ready;
    return *this;
}

protocol::write_buffer case_builder::copy_payload(const std::vector<std::string>& chunks,
                                                  const std::optional<std::string>& fail_message) {
    protocol::write_buffer out;
    for (const auto& c : chunks)
        fe::encode(out, fe::copy_data{c});
    if (fail_message)
        fe::encode(out, fe::copy_fail{*fail_message});
    else
        fe::encode(out, fe::copy_done{});
    return out;
}

case_builder& case_builder::q_copy_in(std::string_view sql, std::vector<std::string> chunks,
                                      std::optional<std::string> fail_message) {
    pending_.copy_in.push_back(copy_payload(chunks, fail_message));
    return q(sql);
}

case_builder& case_builder::copy_in_then_sync(std::vector<std::string> chunks,
                                              std::optional<std::string> fail_message) {
    protocol::write_buffer payload = copy_payload(chunks, fail_message);
    fe::encode(payload, fe::sync{});
    pending_.copy_in.push_back(std::move(payload));
    ++pending_.goal.ready;
    end_step();
    return *this;
}

case_builder& case_builder::terminate() {
    fe::encode(pending_.send, fe::terminate{});
    return end_at_close();
}

case_builder& case_builder::side_sql(std::string_view sql) {
    pending_.side_sql = sql;
    return *this;
}

case_builder& case_builder::cancel_after(std::chrono::milliseconds delay) {
    pending_.cancel_after = delay;
    return *this;
}

case_builder& case_builder::startup_param(std::string name, std::string value) {
    case_.startup_params.emplace_back(std::move(name), std::move(value));
    return *this;
}

case_builder& case_builder::password(std::string password) {
    case_.password = std::move(password);
    return *this;
}

case_builder& case_builder::split_writes() {
    case_.split_writes = true;
    return *this;
}

case_builder& case_builder::ignored_sync() {
    fe::encode(pending_.send, fe::sync{});
    return *this;
}

case_builder& case_builder::parse(std::string_view name, std::string_view sql,
                                  std::vector<std::uint32_t> param_types) {
    fe::encode(pending_.send,
               fe::parse{std::string(name), std::string(sql), std::move(param_types)});
    return *this;
}

case_builder& case_builder::bind(std::string_view portal, std::string_view statement,
                                 std::vector<std::optional<std::string>> params,
                                 std::vector<std::int16_t> param_formats,
                                 std::vector<std::int16_t> result_formats) {
    fe::encode(pending_.send,
               fe::bind{std::string(portal), std::string(statement), std::move(param_formats),
                        std::move(params), std::move(result_formats)});
    return *this;
}

case_builder& case_builder::describe_statement(std::string_view name) {
    fe::encode(pending_.send, fe::describe{fe::describe::statement, std::string(name)});
    return *this;
}

case_builder& case_builder::describe_portal(std::string_view name) {
    fe::encode(pending_.send, fe::describe{fe::describe::portal, std::string(name)});
    return *this;
}

case_builder& case_builder::execute(std::string_view portal, std::int32_t max_rows) {
    fe::encode(pending_.send, fe::execute{std::string(portal), max_rows});
    return *this;
}

case_builder& case_builder::close_statement(std::string_view name) {
    fe::encode(pending_.send, fe::close{fe::close::statement, std::string(name)});
    return *this;
}

case_builder& case_builder::close_portal(std::string_view name) {
    fe::encode(pending_.send, fe::close{fe::close::portal, std::string(name)});
    return *this;
}

case_builder& case_builder::flush() {
    fe::encode(pending_.send, fe::flush{});
    return *this;
}

case_builder& case_builder::function_call(std::uint32_t oid,
                                          std::vector<std::optional<std::string>> args,
                                          std::vector<std::int16_t> arg_formats,
                                          std::int16_t result_format) {
    fe::encode(pending_.send,
               fe::function_call{oid, std::move(arg_formats), std::move(args), result_format});
    ++pending_.goal.ready;
    end_step();
    return *this;
}

case_builder& case_builder::pbde(std::string_view sql,
                                 std::vector<std::optional<std::string>> params,
                                 std::vector<std::int16_t> result_formats) {
    parse("", sql);
    bind("", "", std::move(params), {}, std::move(result_formats));
    describe_portal("");
    return execute("");
}

case_builder& case_builder::sync() {
    sync_pipelined();
    end_step();
    return *this;
}

case_builder& case_builder::sync_pipelined() {
    fe::encode(pending_.send, fe::sync{});
    ++pending_.goal.ready;
    return *this;
}

case_builder& case_builder::end() {
    end_step();
    return *this;
}

case_builder& case_builder::end_after(std::size_t messages) {
    pending_.goal.ready = 0;
    pending_.goal.messages = messages;
    end_step();
    return *this;
}

case_builder& case_builder::end_at_close() {
    pending_.goal.ready = 0;
    pending_.goal.until_close = true;
    end_step();
    return *this;
}

test_case case_builder::build() {
    end_step();
    return std::move(case_);
}

test_case simple_case(std::string name, std::initializer_list<std::string_view> sqls) {
    return case_builder(std::move(name)).qs(sqls).build();
}

std::string fixture_sql() {
    return R"sql(
CREATE SCHEMA fx;
CREATE TABLE fx.items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2),
                       tags text[], added timestamptz, payload jsonb);
INSERT INTO fx.items VALUES
  (1, 'apple', 1.25, '{fruit,red}', '2024-01-02 03:04:05.678+00', '{"kind": "fruit"}'),
  (2, 'bread', 3.50, '{bakery}', '2024-02-29 12:00:00+00', '{"kind": "bakery", "sliced": true}'),
  (3, 'cheese', 12.99, '{}', '1999-12-31 23:59:59.999999+00', 'null'),
  (4, 'dates', NULL, NULL, NULL, NULL),
  (5, 'éclair ☕', 2.10, '{"with space", "quo\"te"}', '2038-01-19 03:14:08+00', '[1, 2.5, "x"]');
CREATE TABLE fx.parents (id int PRIMARY KEY, label text UNIQUE);
INSERT INTO fx.parents VALUES (1, 'one'), (2, 'two');
CREATE TABLE fx.locked (id int);
CREATE TABLE fx.secret (id int);
CREATE VIEW fx.item_names AS SELECT id, upper(name) AS name FROM fx.items;
ANALYZE fx.items;
)sql" + fixture_grants_sql();
}

std::string fixture_grants_sql() {
    return "GRANT USAGE ON SCHEMA fx TO alice;"
           "GRANT SELECT ON fx.items, fx.parents, fx.locked, fx.item_names TO alice;"
           "GRANT REFERENCES ON fx.parents TO alice;";
}

std::string reset_sql() {
    // DROP OWNED also revokes alice's privileges on the fixture: grant them again.
    return "DROP OWNED BY alice CASCADE; CREATE SCHEMA alice AUTHORIZATION alice;" +
           fixture_grants_sql();
}

std::string lock_holder_sql() {
    return "BEGIN; LOCK TABLE fx.locked IN ACCESS EXCLUSIVE MODE; SELECT pg_advisory_lock(4242)";
}

std::vector<test_case> full_corpus() {
    std::vector<test_case> all;
    for (auto part :
         {simple_query_cases, transaction_cases, ddl_dml_cases, error_cases, extended_cases,
          copy_cases, type_cases, session_cases, connection_cases, settings_cases}) {
        for (auto& c : part())
            all.push_back(std::move(c));
    }
    return all;
}

}  // namespace shardgate::difftest
