// The shape-cached classifier, the uncached classify_query, setting values, and the
// classification enums' names.
#include "shardgate/router/classify.hpp"

#include <string>

namespace shardgate::router {
namespace {

const std::shared_ptr<const statement_class>& unparsable_class() {
    static const auto c = std::make_shared<const statement_class>();
    return c;
}

char lower(char ch) {
    return (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
}
std::string lowered(std::string_view s) {
    std::string out(s);
    for (char& ch : out)
        ch = lower(ch);
    return out;
}

}  // namespace

std::optional<bool> parse_pg_bool(std::string_view s) {
    auto prefix_of = [&](std::string_view word, std::size_t min) {
        if (s.size() < min || s.size() > word.size()) return false;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (lower(s[i]) != word[i]) return false;
        }
        return true;
    };
    if (s.empty()) return std::nullopt;
    if (prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || s == "1") return true;
    if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || s == "0")
        return false;
    return std::nullopt;
}

std::optional<routing_setting> routing_setting_named(std::string_view name) {
    const std::string n = lowered(name);
    if (n == "shardgate.role") return routing_setting::role;
    if (n == "shardgate.consistency") return routing_setting::consistency;
    if (n == "shardgate.min_lsn") return routing_setting::min_lsn;
    if (n == "default_transaction_read_only") return routing_setting::default_read_only;
    if (n == "default_transaction_isolation") return routing_setting::default_isolation;
    if (n == "transaction_read_only") return routing_setting::txn_read_only;
    if (n == "transaction_isolation") return routing_setting::txn_isolation;
    return std::nullopt;
}

std::string_view setting_value(const setting_change& c, const statement_shape* shape) {
    if (c.slot < 0 || shape == nullptr) return c.value;
    for (const literal& l : shape->literals) {
        if (l.slot == static_cast<std::uint32_t>(c.slot)) return l.value;
    }
    return {};
}

classified_query classify_query(std::string_view sql) {
    classified_query out;
    const shape_lexer lexer;
    lexer.lex(sql, out.shapes);
    if (!out.shapes.ok()) {
        out.classes.push_back(unparsable_class());
        return out;
    }
    for (const statement_shape& st : out.shapes.statements()) {
        out.classes.push_back(std::make_shared<const statement_class>(classify_statement(sql, st)));
    }
    return out;
}

void classifier::fill(std::string_view sql, classified_query& out) {
    lexer_.lex(sql, out.shapes);
    out.classes.clear();
    if (!out.shapes.ok()) {
        out.classes.push_back(unparsable_class());
        return;
    }
    for (const statement_shape& st : out.shapes.statements()) {
        std::shared_ptr<const statement_class> c = cache_.find(st.hash, st.shape);
        if (c == nullptr) {
            // A class depends on the shape alone (literal values are read per execution), so
            // every text with this shape may share it; unparsable shapes are cached too.
            c = std::make_shared<const statement_class>(classify_statement(sql, st));
            cache_.insert(st.hash, st.shape, c);
        }
        out.classes.push_back(std::move(c));
    }
}

const classified_query& classifier::classify(std::string_view sql) {
    fill(sql, scratch_);
    return scratch_;
}

classified_query classifier::classify_prepared(std::string_view sql) {
    classified_query out;
    fill(sql, out);
    return out;
}

double classifier::hit_rate() const {
    const shape_cache_stats s = cache_.stats();
    const auto total = s.hits + s.misses;
    return total == 0 ? 0.0 : static_cast<double>(s.hits) / static_cast<double>(total);
}

std::string_view to_string(statement_access a) {
    switch (a) {
        case statement_access::read:
            return "read";
        case statement_access::write:
            return "write";
        case statement_access::session:
            return "session";
    }
    return "?";
}

std::string_view to_string(write_reason r) {
    switch (r) {
        case write_reason::none:
            return "none";
        case write_reason::dml:
            return "dml";
        case write_reason::ddl:
            return "ddl";
        case write_reason::locking_clause:
            return "locking clause";
        case write_reason::select_into:
            return "SELECT INTO";
        case write_reason::cte_dml:
            return "data-modifying WITH";
        case write_reason::write_function:
            return "write function";
        case write_reason::volatile_function:
            return "volatile function";
        case write_reason::configured_write_function:
            return "configured write function";
        case write_reason::lock:
            return "LOCK";
        case write_reason::do_block:
            return "DO";
        case write_reason::call:
            return "CALL";
        case write_reason::copy_from:
            return "COPY FROM";
        case write_reason::copy_server_file:
            return "COPY to a server file";
        case write_reason::explain_analyze_write:
            return "EXPLAIN ANALYZE of a write";
        case write_reason::prepared_sql:
            return "SQL PREPARE/EXECUTE";
        case write_reason::utility:
            return "utility";
        case write_reason::transaction_control:
            return "transaction control";
        case write_reason::session_setting:
            return "session setting";
        case write_reason::cursor:
            return "cursor";
        case write_reason::unparsable:
            return "unparsable";
        case write_reason::too_complex:
            return "too deeply nested";
    }
    return "?";
}

std::string_view to_string(txn_kind k) {
    switch (k) {
        case txn_kind::none:
            return "none";
        case txn_kind::begin:
            return "BEGIN";
        case txn_kind::commit:
            return "COMMIT";
        case txn_kind::rollback:
            return "ROLLBACK";
        case txn_kind::savepoint:
            return "SAVEPOINT";
        case txn_kind::release:
            return "RELEASE";
        case txn_kind::rollback_to:
            return "ROLLBACK TO";
        case txn_kind::prepare:
            return "PREPARE TRANSACTION";
        case txn_kind::commit_prepared:
            return "COMMIT PREPARED";
        case txn_kind::rollback_prepared:
            return "ROLLBACK PREPARED";
        case txn_kind::set_transaction:
            return "SET TRANSACTION";
    }
    return "?";
}

std::string_view to_string(isolation_level l) {
    switch (l) {
        case isolation_level::unset:
            return "";
        case isolation_level::read_uncommitted:
            return "read uncommitted";
        case isolation_level::read_committed:
            return "read committed";
        case isolation_level::repeatable_read:
            return "repeatable read";
        case isolation_level::serializable:
            return "serializable";
    }
    return "?";
}

std::string_view to_string(routing_setting s) {
    switch (s) {
        case routing_setting::role:
            return "shardgate.role";
        case routing_setting::consistency:
            return "shardgate.consistency";
        case routing_setting::min_lsn:
            return "shardgate.min_lsn";
        case routing_setting::default_read_only:
            return "default_transaction_read_only";
        case routing_setting::default_isolation:
            return "default_transaction_isolation";
        case routing_setting::txn_read_only:
            return "transaction_read_only";
        case routing_setting::txn_isolation:
            return "transaction_isolation";
        case routing_setting::all:
            return "all";
    }
    return "?";
}

}  // namespace shardgate::router
