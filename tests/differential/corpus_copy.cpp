// Corpus: COPY FROM STDIN (text, csv, binary, split chunks, bad data, CopyFail, extended
// protocol) and COPY TO STDOUT (text, csv, binary, queries, large outputs).
// https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-COPY
#include <string>

#include "corpus.hpp"

namespace shardgate::difftest {
namespace {

std::string be_int(std::int64_t v, int n) {
    std::string s;
    for (int i = n - 1; i >= 0; --i)
        s += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
    return s;
}

// COPY BINARY stream for (int4, text) rows; a nullopt text is NULL.
// Format: https://www.postgresql.org/docs/15/sql-copy.html#id-1.9.3.55.9.4
std::string binary_copy(const std::vector<std::pair<int, std::optional<std::string>>>& rows) {
    std::string s("PGCOPY\n\xff\r\n\0", 11);
    s += be_int(0, 4) + be_int(0, 4);  // flags, header extension length
    for (const auto& [n, t] : rows) {
        s += be_int(2, 2) + be_int(4, 4) + be_int(n, 4);
        s += t ? be_int(static_cast<std::int64_t>(t->size()), 4) + *t : be_int(-1, 4);
    }
    return s + be_int(-1, 2);
}

std::string many_lines(int n) {
    std::string s;
    for (int i = 1; i <= n; ++i)
        s += std::to_string(i) + "\tline " + std::to_string(i) + "\n";
    return s;
}

}  // namespace

std::vector<test_case> copy_cases() {
    const std::string create = "CREATE TABLE t (n int, s text)";
    const std::string check = "SELECT * FROM t ORDER BY n";
    std::vector<test_case> v;
    auto c = [&](std::string name) { return case_builder(std::move(name)).q(create); };
    v.push_back(c("copy_in_text")
                    .q_copy_in("COPY t FROM STDIN", {"1\tone\n2\ttwo\n3\t\\N\n"})
                    .q(check)
                    .build());
    v.push_back(c("copy_in_text_escapes_and_unicode")
                    .q_copy_in("COPY t (n, s) FROM STDIN",
                               {"1\ttab\\there\n2\tnew\\nline\n3\tback\\\\slash\n4\t日本 🙂\n"})
                    .q(check)
                    .build());
    v.push_back(c("copy_in_csv_header_quotes")
                    .q_copy_in("COPY t FROM STDIN WITH (FORMAT csv, HEADER true)",
                               {"n,s\n1,\"a, with comma\"\n2,\"quote \"\"q\"\"\"\n3,\n4,\"\"\n"})
                    .q("SELECT n, s, s IS NULL AS is_null FROM t ORDER BY n")
                    .build());
    v.push_back(c("copy_in_binary")
                    .q_copy_in("COPY t FROM STDIN WITH (FORMAT binary)",
                               {binary_copy({{1, "bin"}, {-7, std::nullopt}, {99, "ü"}})})
                    .q(check)
                    .build());
    v.push_back(c("copy_in_rows_split_across_chunks")
                    .q_copy_in("COPY t FROM STDIN", {"1\tsp", "lit\n2", "\ttwo\n", "3\tthree\n"})
                    .q(check)
                    .build());
    v.push_back(c("copy_in_many_chunks_10k_rows")
                    .q_copy_in("COPY t FROM STDIN", {many_lines(5000), many_lines(5000)})
                    .q("SELECT count(*), sum(n) FROM t")
                    .build());
    v.push_back(c("copy_in_empty").q_copy_in("COPY t FROM STDIN", {}).q(check).build());
    v.push_back(c("copy_in_bad_data")
                    .q_copy_in("COPY t FROM STDIN", {"1\tok\nnot_a_number\tbad\n"})
                    .q(check)
                    .build());
    v.push_back(c("copy_in_too_many_columns")
                    .q_copy_in("COPY t FROM STDIN", {"1\ta\textra\n"})
                    .q_copy_in("COPY t FROM STDIN WITH (FORMAT csv)", {"1\n"})
                    .build());
    v.push_back(c("copy_in_copy_fail")
                    .q_copy_in("COPY t FROM STDIN", {"1\tsent\n"}, "client gave up")
                    .q(check)
                    .build());
    v.push_back(c("copy_in_inside_transaction_rolled_back")
                    .q("BEGIN")
                    .q_copy_in("COPY t FROM STDIN", {"1\tx\n"})
                    .q(check)
                    .q("ROLLBACK")
                    .q(check)
                    .build());
    v.push_back(c("copy_in_error_in_transaction")
                    .q("BEGIN")
                    .q_copy_in("COPY t FROM STDIN", {"oops\n"})
                    .q("SELECT 1")
                    .q("ROLLBACK")
                    .build());
    v.push_back(
        c("copy_in_multi_statement_query")
            .q_copy_in("SELECT 'before'; COPY t FROM STDIN; SELECT count(*) FROM t", {"5\tfive\n"})
            .build());
    v.push_back(c("copy_in_end_marker_line")
                    .q_copy_in("COPY t FROM STDIN", {"1\ta\n\\.\n"})
                    .q(check)
                    .build());
    v.push_back(c("copy_in_extended_protocol")
                    .parse("", "COPY t FROM STDIN")
                    .bind("", "")
                    .execute("")
                    .copy_in_then_sync({"10\tten\n20\ttwenty\n"})
                    .q(check)
                    .build());
    v.push_back(c("copy_in_extended_like_libpq")
                    .parse("", "COPY t FROM STDIN WITH (FORMAT csv)")
                    .bind("", "")
                    .describe_portal("")
                    .execute("")
                    .ignored_sync()
                    .copy_in_then_sync({"7,seven\n"})
                    .q(check)
                    .build());
    v.push_back(c("copy_in_extended_copy_fail")
                    .parse("", "COPY t FROM STDIN")
                    .bind("", "")
                    .execute("")
                    .copy_in_then_sync({"1\tx\n"}, "stop")
                    .q(check)
                    .build());
    v.push_back(c("copy_in_permission_and_missing_table")
                    .q("COPY fx.items FROM STDIN")
                    .q("COPY no_table FROM STDIN")
                    .build());
    v.push_back(simple_case("copy_out_text",
                            {"COPY fx.items TO STDOUT", "COPY fx.items (id, name) TO STDOUT"}));
    v.push_back(simple_case(
        "copy_out_csv",
        {"COPY fx.items TO STDOUT WITH (FORMAT csv, HEADER true)",
         "COPY (SELECT 1 AS a, 'x,y' AS b, NULL AS c) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *)",
         "COPY fx.items TO STDOUT WITH (FORMAT csv, DELIMITER ';', NULL 'NULL')"}));
    v.push_back(simple_case("copy_out_binary",
                            {"COPY fx.items TO STDOUT WITH (FORMAT binary)",
                             "COPY (SELECT g, g::text, NULL::int FROM generate_series(1, 3) g) TO "
                             "STDOUT (FORMAT binary)"}));
    v.push_back(
        simple_case("copy_out_query_and_large",
                    {"COPY (SELECT g, md5(g::text) FROM generate_series(1, 50000) g) TO STDOUT",
                     "COPY (SELECT repeat('z', 300000)) TO STDOUT"}));
    v.push_back(simple_case("copy_out_errors",
                            {"COPY (SELECT 1/0) TO STDOUT",
                             "COPY (SELECT g, 1 / (g - 3) FROM generate_series(1, 5) g) TO STDOUT",
                             "COPY fx.secret TO STDOUT", "COPY fx.items TO '/tmp/nope'"}));
    v.push_back(c("copy_round_trip")
                    .q_copy_in("COPY t FROM STDIN WITH (FORMAT csv)", {"1,a\n2,b\n3,\"c\nd\"\n"})
                    .q("COPY t TO STDOUT WITH (FORMAT csv)")
                    .q("COPY t TO STDOUT WITH (FORMAT binary)")
                    .build());
    return v;
}

}  // namespace shardgate::difftest
