// Generic walk of the protobuf-c parse tree and the built-in write-function list.
#include "classify_tree.hpp"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <iterator>

#include "shardgate/router/classify.hpp"
#include "sql_scanner.hpp"

namespace shardgate::router {
namespace {

// Built-ins that a hot standby refuses (checked against a PG15 standby: nextval "cannot execute
// nextval() in a read-only transaction", lo_create "cannot assign OIDs during recovery",
// txid_current, pg_current_wal_lsn, pg_notify, brin_summarize_*), or whose effect belongs to the
// primary or to one server session: advisory locks run on a standby but exclude no one on the
// primary; set_config, setseed, currval / lastval, lo_open's descriptors, pg_export_snapshot,
// backend pids and statistics resets are per server. Sorted: binary search. Lists:
// https://www.postgresql.org/docs/15/functions-admin.html, functions-sequence.html, lo-funcs.html
constexpr std::string_view builtin_writers[] = {
    "brin_desummarize_range",
    "brin_summarize_new_values",
    "brin_summarize_range",
    "currval",
    "dblink_exec",
    "gin_clean_pending_list",
    "lastval",
    "lo_close",
    "lo_creat",
    "lo_create",
    "lo_export",
    "lo_from_bytea",
    "lo_import",
    "lo_lseek",
    "lo_lseek64",
    "lo_open",
    "lo_put",
    "lo_tell",
    "lo_tell64",
    "lo_truncate",
    "lo_truncate64",
    "lo_unlink",
    "loread",
    "lowrite",
    "nextval",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_cancel_backend",
    "pg_copy_logical_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_create_restore_point",
    "pg_current_wal_flush_lsn",
    "pg_current_wal_insert_lsn",
    "pg_current_wal_lsn",
    "pg_current_xact_id",
    "pg_drop_replication_slot",
    "pg_export_snapshot",
    "pg_file_rename",
    "pg_file_unlink",
    "pg_file_write",
    "pg_import_system_collations",
    "pg_log_backend_memory_contexts",
    "pg_logical_emit_message",
    "pg_logical_slot_get_binary_changes",
    "pg_logical_slot_get_changes",
    "pg_notify",
    "pg_promote",
    "pg_reload_conf",
    "pg_replication_origin_advance",
    "pg_replication_origin_create",
    "pg_replication_origin_drop",
    "pg_replication_origin_session_reset",
    "pg_replication_origin_session_setup",
    "pg_replication_origin_xact_reset",
    "pg_replication_origin_xact_setup",
    "pg_replication_slot_advance",
    "pg_rotate_logfile",
    "pg_start_backup",
    "pg_stat_reset",
    "pg_stat_reset_replication_slot",
    "pg_stat_reset_shared",
    "pg_stat_reset_single_function_counters",
    "pg_stat_reset_single_table_counters",
    "pg_stat_reset_slru",
    "pg_stat_reset_subscription_stats",
    "pg_stat_statements_reset",
    "pg_stop_backup",
    "pg_switch_wal",
    "pg_terminate_backend",
    "set_config",
    "setseed",
    "setval",
    "txid_current",
};
static_assert(std::is_sorted(std::begin(builtin_writers), std::end(builtin_writers)));

}  // namespace

bool builtin_write_function(std::string_view name) {
    if (const auto dot = name.rfind('.'); dot != std::string_view::npos) {
        name.remove_prefix(dot + 1);
    }
    // All advisory-lock functions: pg_advisory_lock, _xact_, _shared, _unlock*, pg_try_*.
    if (name.starts_with("pg_advisory_") || name.starts_with("pg_try_advisory_")) return true;
    return std::binary_search(std::begin(builtin_writers), std::end(builtin_writers), name);
}

namespace detail {
namespace {

std::string function_name(const PgQuery__FuncCall& fc) {
    std::string name;
    for (std::size_t i = 0; i < fc.n_funcname; ++i) {
        const PgQuery__Node* part = fc.funcname[i];
        if (part == nullptr || part->node_case != PG_QUERY__NODE__NODE_STRING) continue;
        if (!name.empty()) name += '.';
        name += part->string->sval;
    }
    return name;
}

// Checks one message by its type: the walk reaches every message, whether a Node wraps it or a
// field holds it directly (CallStmt.funccall, SelectStmt.locking_clause items, ...).
void note_message(const ProtobufCMessage* m, tree_facts& f) {
    const ProtobufCMessageDescriptor* d = m->descriptor;
    if (d == &pg_query__func_call__descriptor) {
        const auto* fc = reinterpret_cast<const PgQuery__FuncCall*>(m);
        // EXTRACT(...), x AT TIME ZONE y and the like are written as syntax, not as calls.
        if (fc->funcformat == PG_QUERY__COERCION_FORM__COERCE_SQL_SYNTAX) return;
        std::string name = function_name(*fc);
        if (builtin_write_function(name)) f.builtin_write = true;
        if (std::find(f.functions.begin(), f.functions.end(), name) == f.functions.end()) {
            f.functions.push_back(std::move(name));
        }
    } else if (d == &pg_query__locking_clause__descriptor) {
        f.locking = true;
    } else if (d == &pg_query__insert_stmt__descriptor || d == &pg_query__update_stmt__descriptor ||
               d == &pg_query__delete_stmt__descriptor || d == &pg_query__merge_stmt__descriptor) {
        f.dml = true;
    } else if (d == &pg_query__range_var__descriptor) {
        const auto* rv = reinterpret_cast<const PgQuery__RangeVar*>(m);
        if (rv->relpersistence != nullptr && std::strcmp(rv->relpersistence, "t") == 0) {
            f.temp = true;
        }
    }
}

const ProtobufCMessage* field_message(const ProtobufCMessage* m, const ProtobufCFieldDescriptor& fd,
                                      std::size_t i) {
    const auto* base = reinterpret_cast<const char*>(m);
    if (fd.label == PROTOBUF_C_LABEL_REPEATED) {
        const auto* items = *reinterpret_cast<ProtobufCMessage* const* const*>(base + fd.offset);
        return items[i];
    }
    return *reinterpret_cast<const ProtobufCMessage* const*>(base + fd.offset);
}

std::size_t field_count(const ProtobufCMessage* m, const ProtobufCFieldDescriptor& fd) {
    const auto* base = reinterpret_cast<const char*>(m);
    if (fd.label == PROTOBUF_C_LABEL_REPEATED) {
        return *reinterpret_cast<const std::size_t*>(base + fd.quantifier_offset);
    }
    // A oneof member is set only when the case field names it (the members share storage).
    if ((fd.flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
        const auto which = *reinterpret_cast<const std::uint32_t*>(base + fd.quantifier_offset);
        return which == fd.id ? 1 : 0;
    }
    return 1;
}

}  // namespace

void collect(const ProtobufCMessage* m, tree_facts& f, int depth) {
    if (m == nullptr) return;
    if (depth > max_depth) {
        f.too_deep = true;
        return;
    }
    note_message(m, f);
    const ProtobufCMessageDescriptor* d = m->descriptor;
    if (d == &pg_query__node__descriptor) {
        // Node is a oneof of ~250 members: go straight to the set one (scanning every member of
        // every Node made a miss several times slower than the parse itself).
        const auto* n = reinterpret_cast<const PgQuery__Node*>(m);
        const ProtobufCFieldDescriptor* fd =
            protobuf_c_message_descriptor_get_field(d, static_cast<unsigned>(n->node_case));
        if (fd != nullptr && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            collect(field_message(m, *fd, 0), f, depth + 1);
        }
        return;
    }
    for (unsigned i = 0; i < d->n_fields; ++i) {
        const ProtobufCFieldDescriptor& fd = d->fields[i];
        if (fd.type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const std::size_t n = field_count(m, fd);
        for (std::size_t k = 0; k < n; ++k) {
            collect(field_message(m, fd, k), f, depth + 1);
        }
    }
}

namespace {

bool is_word(std::string_view w, std::string_view lower_kw) {
    if (w.size() != lower_kw.size()) return false;
    for (std::size_t i = 0; i < w.size(); ++i) {
        const char ch = (w[i] >= 'A' && w[i] <= 'Z') ? static_cast<char>(w[i] - 'A' + 'a') : w[i];
        if (ch != lower_kw[i]) return false;
    }
    return true;
}

bool is_any(std::string_view w, std::initializer_list<std::string_view> words) {
    for (const std::string_view k : words) {
        if (is_word(w, k)) return true;
    }
    return false;
}

// Keywords after which the grammar nests the next operand without parentheses (left-deep
// JoinExpr / set operations, NOT, IS, LIKE, ... A_Exprs). AND and OR are not: their argument
// lists are flat.
bool nests(std::string_view w) {
    return is_any(w, {"join", "union", "intersect", "except", "not", "is", "isnull", "notnull",
                      "like", "ilike", "similar", "between", "in", "overlaps", "collate", "at"});
}

}  // namespace

std::uint32_t nesting_estimate(std::string_view text) {
    const sql_scanner sc(text);
    struct level {
        std::uint32_t chain;  // the enclosing level's chain when this one opened
        bool is_case;
    };
    std::vector<level> open;
    std::uint32_t chain = 0;  // operators and nesting keywords since the last , ; AND OR WHEN ...
    std::uint32_t outer = 0;  // the chains of every enclosing level
    std::uint32_t worst = 0;
    auto push = [&](bool is_case) {
        open.push_back({chain, is_case});
        outer += chain;
        chain = 0;
    };
    auto pop = [&] {
        chain = open.back().chain;
        outer -= chain;
        open.pop_back();
    };
    for (std::uint32_t pos = 0;;) {
        const token t = sc.next(pos);
        if (t.kind == token_kind::end || t.kind == token_kind::error) break;
        const std::string_view w = text.substr(t.begin, t.end - t.begin);
        if (t.kind == token_kind::punct) {
            if (w == "(" || w == "[")
                push(false);
            else if ((w == ")" || w == "]") && !open.empty())
                pop();
            else if (w == "," || w == ";")
                chain = 0;
            else if (w == "::")
                ++chain;
        } else if (t.kind == token_kind::op) {
            ++chain;
        } else if (t.kind == token_kind::identifier) {
            if (is_word(w, "case"))
                push(true);
            else if (is_word(w, "end") && !open.empty() && open.back().is_case)
                pop();
            else if (is_any(w, {"and", "or", "when", "then", "else"}))
                chain = 0;
            else if (nests(w))
                ++chain;
        }
        worst = std::max(worst, outer + chain + static_cast<std::uint32_t>(open.size()));
    }
    return worst;
}

std::string_view node_name(const PgQuery__Node* n) {
    if (n == nullptr) return "";
    const ProtobufCFieldDescriptor* fd = protobuf_c_message_descriptor_get_field(
        &pg_query__node__descriptor, static_cast<unsigned>(n->node_case));
    if (fd == nullptr || fd->descriptor == nullptr) return "";
    return static_cast<const ProtobufCMessageDescriptor*>(fd->descriptor)->short_name;
}

}  // namespace detail
}  // namespace shardgate::router
