// Blocking libpq helpers for tests.
#include "shardgate/testsupport/pg_client.hpp"

namespace shardgate::testsupport {
namespace {

struct result_deleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

}  // namespace

pg_connection::pg_connection(const std::string& conninfo, std::chrono::seconds connect_timeout) {
    // connect_timeout comes first so a value in `conninfo` (expanded from dbname) wins.
    const std::string timeout = std::to_string(connect_timeout.count());
    const char* keys[] = {"connect_timeout", "dbname", nullptr};
    const char* values[] = {timeout.c_str(), conninfo.c_str(), nullptr};
    conn_.reset(PQconnectdbParams(keys, values, 1));
    if (!conn_) throw pg_error("libpq: out of memory", "");
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
        throw pg_error("cannot connect (" + conninfo + "): " + trim(PQerrorMessage(conn_.get())),
                       "");
    }
}

std::vector<pg_row> pg_connection::query(const std::string& sql) {
    if (!PQsendQuery(conn_.get(), sql.c_str())) {
        throw pg_error("cannot send query: " + trim(PQerrorMessage(conn_.get())), "");
    }
    // Read every result so that the error of any statement surfaces, keep the last rows.
    std::vector<pg_row> rows;
    std::optional<pg_error> error;
    while (PGresult* raw = PQgetResult(conn_.get())) {
        result_ptr res(raw);
        const ExecStatusType status = PQresultStatus(raw);
        if (status == PGRES_TUPLES_OK || status == PGRES_SINGLE_TUPLE) {
            rows.clear();
            const int n = PQntuples(raw);
            const int m = PQnfields(raw);
            for (int i = 0; i < n; ++i) {
                pg_row row;
                for (int j = 0; j < m; ++j) {
                    if (PQgetisnull(raw, i, j)) {
                        row.emplace_back(std::nullopt);
                    } else {
                        row.emplace_back(
                            std::string(PQgetvalue(raw, i, j),
                                        static_cast<std::size_t>(PQgetlength(raw, i, j))));
                    }
                }
                rows.push_back(std::move(row));
            }
        } else if (status != PGRES_COMMAND_OK && status != PGRES_EMPTY_QUERY && !error) {
            const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
            error.emplace(trim(PQresultErrorMessage(raw)) + " [query: " + sql + "]",
                          state ? state : "");
        }
    }
    if (error) throw *error;
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
        throw pg_error("connection lost: " + trim(PQerrorMessage(conn_.get())), "");
    }
    return rows;
}

void pg_connection::exec(const std::string& sql) {
    query(sql);
}

std::string pg_connection::query_value(const std::string& sql) {
    auto rows = query(sql);
    if (rows.empty() || rows[0].empty()) throw pg_error("no rows from: " + sql, "");
    if (!rows[0][0]) throw pg_error("NULL from: " + sql, "");
    return *rows[0][0];
}

std::string pg_connection::quote_literal(std::string_view value) const {
    char* q = PQescapeLiteral(conn_.get(), value.data(), value.size());
    if (q == nullptr) throw pg_error(PQerrorMessage(conn_.get()), "");
    std::string out(q);
    PQfreemem(q);
    return out;
}

std::string pg_connection::quote_identifier(std::string_view name) const {
    char* q = PQescapeIdentifier(conn_.get(), name.data(), name.size());
    if (q == nullptr) throw pg_error(PQerrorMessage(conn_.get()), "");
    std::string out(q);
    PQfreemem(q);
    return out;
}

std::string conninfo_value(std::string_view value) {
    bool plain = !value.empty();
    for (char c : value) {
        if (c == ' ' || c == '\'' || c == '\\' || c == '=' || c == '\t' || c == '\n') plain = false;
    }
    if (plain) return std::string(value);
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

std::string make_conninfo(const std::vector<std::pair<std::string, std::string>>& pairs) {
    std::string out;
    for (const auto& [key, value] : pairs) {
        if (!out.empty()) out += ' ';
        out += key + "=" + conninfo_value(value);
    }
    return out;
}

}  // namespace shardgate::testsupport
