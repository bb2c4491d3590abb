// Walks libpg_query's protobuf-c parse tree generically (through the message descriptors), so
// that no child of any node type is missed when looking for function calls, locking clauses and
// data-modifying statements nested anywhere. Internal to router/.
#pragma once

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shardgate::router::detail {

// What a walk found below (and including) the node it started at.
struct tree_facts {
    bool dml = false;            // an INSERT / UPDATE / DELETE / MERGE node
    bool locking = false;        // a LockingClause (FOR UPDATE / SHARE / ...)
    bool builtin_write = false;  // a call of a builtin_write_function()
    bool temp = false;           // a RangeVar created as TEMP (CREATE TEMP ..., INTO TEMP)
    bool too_deep = false;       // nesting past max_depth: treat the statement as unparsable
    std::vector<std::string> functions;  // as in statement_class::functions
};

// Far deeper than any real query; bounds our recursion.
inline constexpr int max_depth = 3000;

// libpg_query's protobuf writer and protobuf-c's unpacker recurse once per tree level with no
// limit of their own: `SELECT 1+1+...+1` (30,000 terms) or 3,000 nested sub-selects overflow an
// 8 MB stack. Before parsing, nesting_estimate() bounds the tree depth from the tokens (open
// parentheses, brackets and CASEs, plus chains of operators and of keywords that nest without
// parentheses: JOIN, UNION, NOT, IS, ...); above max_nesting the statement is not parsed.
// Measured: the worst constructs at 128 need under 1 MB of stack (crash at 250 with 1 MB);
// worker threads have 8 MB. Real queries stay far below (a 40-table join, 50 nested levels).
inline constexpr std::uint32_t max_nesting = 128;
std::uint32_t nesting_estimate(std::string_view text);

void collect(const ProtobufCMessage* m, tree_facts& f, int depth = 0);

// The node type's name ("SelectStmt"), or "" for a null node. Static storage.
std::string_view node_name(const PgQuery__Node* n);

}  // namespace shardgate::router::detail
