// Blocking libpq helpers for tests: connect with a timeout, run SQL, quote conninfo values.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace shardgate::testsupport {

// A failed connection or statement. sqlstate is empty for connection failures.
class pg_error : public std::runtime_error {
  public:
    pg_error(const std::string& message, std::string sqlstate)
        : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }

  private:
    std::string sqlstate_;
};

using pg_row = std::vector<std::optional<std::string>>;  // nullopt is SQL NULL

// One libpq connection. Statements use the simple query protocol (PQexec), so several
// statements may be sent in one string.
class pg_connection {
  public:
    explicit pg_connection(const std::string& conninfo,
                           std::chrono::seconds connect_timeout = std::chrono::seconds(10));

    void exec(const std::string& sql);
    std::vector<pg_row> query(const std::string& sql);  // rows of the last statement
    // First column of the first row; throws if there is no row or it is NULL.
    std::string query_value(const std::string& sql);

    std::string quote_literal(std::string_view value) const;
    std::string quote_identifier(std::string_view name) const;

    PGconn* native() const { return conn_.get(); }

  private:
    struct closer {
        void operator()(PGconn* c) const { PQfinish(c); }
    };
    std::unique_ptr<PGconn, closer> conn_;
};

// Quotes a conninfo value only when it needs it ('...' with \ and ' escaped).
std::string conninfo_value(std::string_view value);

// "key=value" pairs joined with spaces, values quoted as needed.
std::string make_conninfo(const std::vector<std::pair<std::string, std::string>>& pairs);

}  // namespace shardgate::testsupport
