// libpg_query calls; it needs a NUL-terminated copy of the text and reports errors as values.
#include "shardgate/router/pg_parse.hpp"

#include <pg_query.h>

#include <string>

namespace shardgate::router {

bool parse_check(std::string_view sql) {
    const std::string text(sql);
    PgQueryParseResult r = pg_query_parse(text.c_str());
    const bool ok = r.error == nullptr;
    pg_query_free_parse_result(r);
    return ok;
}

std::optional<std::uint64_t> pg_fingerprint(std::string_view sql) {
    const std::string text(sql);
    PgQueryFingerprintResult r = pg_query_fingerprint(text.c_str());
    std::optional<std::uint64_t> out;
    if (r.error == nullptr) out = r.fingerprint;
    pg_query_free_fingerprint_result(r);
    return out;
}

}  // namespace shardgate::router
