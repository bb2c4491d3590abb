// One statement's parse tree (libpg_query, protobuf-c form) -> statement_class.
//
// Why the protobuf tree: Debian's libpg-query-dev ships pg_query.pb-c.h and libpg_query exports
// the protobuf-c unpacker, so the tree arrives as typed C structs with descriptors that a generic
// walk can follow into every child; the JSON form would need a JSON parser (a new dependency) or
// a hand-rolled one. The price, paid once per shape per worker: for a pgbench -S statement
// pg_query_parse_protobuf takes ~9 us and the unpack ~5 us, where pg_query_parse (JSON) takes
// ~2.6 us; a whole miss is ~16 us, a cached decision ~0.3 us (most of it the lexer).
#include "shardgate/router/classify.hpp"

#include <cstring>
#include <string>

#include "classify_tree.hpp"

namespace shardgate::router {
namespace {

// The statement's text as parsed and where it sits in the message, to tie A_Const locations
// (relative to the text) to the lexer's literals (offsets in the message).
struct context {
    std::string_view text;
    const statement_shape* shape = nullptr;
};

void set_read(statement_class& c) {
    c.access = statement_access::read;
    c.reason = write_reason::none;
}
void set_write(statement_class& c, write_reason r) {
    c.access = statement_access::write;
    c.reason = r;
}
void set_session(statement_class& c, write_reason r) {
    c.access = statement_access::session;
    c.reason = r;
}

char lower(char ch) {
    return (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
}

// The lexer's slot for a constant the parser placed at `location`: the literal there, or after a
// unary sign ("- 1": the parser's location is the sign's). -1 if the value is shape text.
std::int32_t literal_slot(const context& cx, std::int32_t location, bool& negated) {
    negated = false;
    if (cx.shape == nullptr || location < 0) return -1;
    std::size_t at = static_cast<std::size_t>(location);
    std::size_t p = at;
    bool sign = false;
    while (p < cx.text.size() && (cx.text[p] == '-' || cx.text[p] == '+' || cx.text[p] == ' ' ||
                                  cx.text[p] == '\t' || cx.text[p] == '\n' || cx.text[p] == '\r')) {
        if (cx.text[p] == '-') negated = !negated;
        sign = sign || cx.text[p] == '-' || cx.text[p] == '+';
        ++p;
    }
    if (!sign) p = at;
    const std::uint32_t want = cx.shape->offset + static_cast<std::uint32_t>(p);
    for (const literal& l : cx.shape->literals) {
        if (l.offset == want) return static_cast<std::int32_t>(l.slot);
        if (l.offset > want) break;
    }
    negated = false;
    return -1;
}

// An A_Const's value as text (integers in decimal, booleans as on / off) and its literal slot.
void const_value(const PgQuery__Node* n, const context& cx, setting_change& c) {
    if (n == nullptr || n->node_case != PG_QUERY__NODE__NODE_A_CONST) return;
    const PgQuery__AConst& k = *n->a_const;
    switch (k.val_case) {
        case PG_QUERY__A__CONST__VAL_SVAL:
            c.value = k.sval->sval;
            break;
        case PG_QUERY__A__CONST__VAL_IVAL:
            c.value = std::to_string(k.ival->ival);
            break;
        case PG_QUERY__A__CONST__VAL_FVAL:
            c.value = k.fval->fval;
            break;
        case PG_QUERY__A__CONST__VAL_BOOLVAL:
            c.value = k.boolval->boolval ? "on" : "off";
            break;
        default:
            break;
    }
    c.slot = literal_slot(cx, k.location, c.negated);
    if (c.slot >= 0) c.value.clear();
}

isolation_level isolation_of(std::string_view s) {
    if (s == "serializable") return isolation_level::serializable;
    if (s == "repeatable read") return isolation_level::repeatable_read;
    if (s == "read committed") return isolation_level::read_committed;
    if (s == "read uncommitted") return isolation_level::read_uncommitted;
    return isolation_level::unset;
}

const PgQuery__AConst* def_const(const PgQuery__DefElem& d) {
    if (d.arg == nullptr || d.arg->node_case != PG_QUERY__NODE__NODE_A_CONST) return nullptr;
    return d.arg->a_const;
}

// transaction_mode_list of BEGIN / START TRANSACTION / SET TRANSACTION / SET SESSION
// CHARACTERISTICS: the grammar writes keywords as DefElems with constants (never literals).
txn_modes modes_of(PgQuery__Node* const* opts, std::size_t n) {
    txn_modes m;
    for (std::size_t i = 0; i < n; ++i) {
        if (opts[i] == nullptr || opts[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM) continue;
        const PgQuery__DefElem& d = *opts[i]->def_elem;
        const PgQuery__AConst* k = def_const(d);
        if (k == nullptr) continue;
        const std::string_view name = d.defname;
        if (name == "transaction_isolation" && k->val_case == PG_QUERY__A__CONST__VAL_SVAL) {
            m.isolation = isolation_of(k->sval->sval);
        } else if (k->val_case == PG_QUERY__A__CONST__VAL_IVAL) {
            const tristate t = k->ival->ival != 0 ? tristate::on : tristate::off;
            if (name == "transaction_read_only") m.read_only = t;
            if (name == "transaction_deferrable") m.deferrable = t;
        }
    }
    return m;
}

bool named(std::string_view name, routing_setting& out) {
    const auto s = routing_setting_named(name);
    if (s) out = *s;
    return s.has_value();
}

// SET TRANSACTION / SET SESSION CHARACTERISTICS / SET / RESET.
void classify_set(const PgQuery__VariableSetStmt& s, const context& cx, statement_class& c) {
    set_session(c, write_reason::session_setting);
    const std::string_view name = s.name != nullptr ? s.name : "";
    if (s.kind == PG_QUERY__VARIABLE_SET_KIND__VAR_SET_MULTI) {
        if (name.starts_with("TRANSACTION")) {  // TRANSACTION, TRANSACTION SNAPSHOT
            set_session(c, write_reason::transaction_control);
            c.txn.kind = txn_kind::set_transaction;
            c.txn.modes = modes_of(s.args, s.n_args);
        } else if (name == "SESSION CHARACTERISTICS") {
            const txn_modes m = modes_of(s.args, s.n_args);
            if (m.read_only != tristate::unset) {
                setting_change ch;
                ch.name = routing_setting::default_read_only;
                ch.value = m.read_only == tristate::on ? "on" : "off";
                c.settings.push_back(std::move(ch));
            }
            if (m.isolation != isolation_level::unset) {
                setting_change ch;
                ch.name = routing_setting::default_isolation;
                ch.value = to_string(m.isolation);
                c.settings.push_back(std::move(ch));
            }
        }
        return;
    }
    setting_change ch;
    ch.local = s.is_local;
    switch (s.kind) {
        case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
            ch.name = routing_setting::all;
            ch.reset = true;
            c.settings.push_back(std::move(ch));
            return;
        case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE:
            if (!named(name, ch.name)) return;
            if (s.n_args > 0) const_value(s.args[0], cx, ch);
            break;
        case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT:
        case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
            if (!named(name, ch.name)) return;
            ch.reset = true;
            break;
        default:  // SET x FROM CURRENT: only inside CREATE FUNCTION
            return;
    }
    c.settings.push_back(std::move(ch));
}

void classify_transaction(const PgQuery__TransactionStmt& t, statement_class& c) {
    set_session(c, write_reason::transaction_control);
    c.txn.chain = t.chain;
    switch (t.kind) {
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
            c.txn.kind = txn_kind::begin;
            c.txn.modes = modes_of(t.options, t.n_options);
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
            c.txn.kind = txn_kind::commit;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
            c.txn.kind = txn_kind::rollback;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT:
            c.txn.kind = txn_kind::savepoint;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE:
            c.txn.kind = txn_kind::release;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO:
            c.txn.kind = txn_kind::rollback_to;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE:
            c.txn.kind = txn_kind::prepare;
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
            c.txn.kind = txn_kind::commit_prepared;
            set_write(c, write_reason::transaction_control);
            break;
        case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
            c.txn.kind = txn_kind::rollback_prepared;
            set_write(c, write_reason::transaction_control);
            break;
        default:
            set_write(c, write_reason::unparsable);
            break;
    }
}

bool is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

// EXPLAIN ANALYZE runs the statement. `(ANALYZE off)` does not, but `(ANALYZE 'off')` and
// `(ANALYZE 0)` have a literal, which the shape cache must not depend on: those count as on.
bool explain_analyzes(const PgQuery__ExplainStmt& e, const context& cx) {
    for (std::size_t i = 0; i < e.n_options; ++i) {
        const PgQuery__Node* o = e.options[i];
        if (o == nullptr || o->node_case != PG_QUERY__NODE__NODE_DEF_ELEM) continue;
        const PgQuery__DefElem& d = *o->def_elem;
        if (std::strcmp(d.defname, "analyze") != 0) continue;
        if (d.arg == nullptr) return true;
        // Skip the option's name (a word, or a quoted identifier), then look at the value.
        std::size_t p = d.location >= 0 ? static_cast<std::size_t>(d.location) : cx.text.size();
        if (p < cx.text.size() && cx.text[p] == '"') {
            p = cx.text.find('"', p + 1);
            p = p == std::string_view::npos ? cx.text.size() : p + 1;
        }
        while (p < cx.text.size() && !is_space(cx.text[p]) && cx.text[p] != ',' &&
               cx.text[p] != ')' && cx.text[p] != '\'')
            ++p;
        while (p < cx.text.size() && is_space(cx.text[p]))
            ++p;
        const char ch = p < cx.text.size() ? lower(cx.text[p]) : ')';
        if (ch < 'a' || ch > 'z') return true;  // a literal, a comment: assume it runs
        const char next = p + 1 < cx.text.size() ? cx.text[p + 1] : ')';
        if (next == '\'' || next == '&') return true;  // E'off', U&'off', B'0', X'0'
        if (d.arg->node_case != PG_QUERY__NODE__NODE_STRING) return true;
        const auto v = parse_pg_bool(d.arg->string->sval);
        if (!v || *v) return true;
    }
    return false;
}

void take_facts(statement_class& c, detail::tree_facts&& f) {
    c.functions = std::move(f.functions);
    c.creates_temp = f.temp;
    if (f.too_deep) {
        set_write(c, write_reason::unparsable);
        c.functions.clear();
    }
}

void classify_node(const PgQuery__Node* n, const context& cx, statement_class& c, int depth);

// A statement nested in EXPLAIN / COPY / DECLARE: its class decides the outer one's.
statement_class classify_inner(const PgQuery__Node* n, const context& cx, int depth) {
    statement_class inner;
    if (depth > 8) return inner;  // EXPLAIN cannot nest; unparsable if it ever does
    classify_node(n, cx, inner, depth + 1);
    return inner;
}

void classify_select(const PgQuery__Node* n, statement_class& c) {
    detail::tree_facts f;
    detail::collect(&n->base, f);
    set_read(c);
    if (n->select_stmt->into_clause != nullptr)
        set_write(c, write_reason::select_into);
    else if (f.dml)
        set_write(c, write_reason::cte_dml);
    else if (f.locking)
        set_write(c, write_reason::locking_clause);
    else if (f.builtin_write)
        set_write(c, write_reason::write_function);
    take_facts(c, std::move(f));
}

void classify_explain(const PgQuery__ExplainStmt& e, const context& cx, statement_class& c,
                      int depth) {
    statement_class inner = classify_inner(e.query, cx, depth);
    set_read(c);
    if (inner.reason == write_reason::prepared_sql || inner.reason == write_reason::unparsable) {
        set_write(c, inner.reason);  // EXPLAIN EXECUTE p needs the server that has p
    } else if (explain_analyzes(e, cx)) {
        if (!inner.read()) set_write(c, write_reason::explain_analyze_write);
        c.functions = std::move(inner.functions);  // they run; without ANALYZE they do not
        c.creates_temp = inner.creates_temp;
    }
}

void classify_copy(const PgQuery__CopyStmt& s, const context& cx, statement_class& c, int depth) {
    detail::tree_facts f;
    if (s.query != nullptr) {
        statement_class inner = classify_inner(s.query, cx, depth);
        c.access = inner.access == statement_access::read ? statement_access::read
                                                          : statement_access::write;
        c.reason = inner.reason;
        c.functions = std::move(inner.functions);
    } else {
        detail::collect(s.where_clause != nullptr ? &s.where_clause->base : nullptr, f);
        set_read(c);
        take_facts(c, std::move(f));
    }
    const bool server_file = s.is_program || (s.filename != nullptr && s.filename[0] != '\0');
    if (s.is_from)
        set_write(c, write_reason::copy_from);
    else if (server_file)
        set_write(c, write_reason::copy_server_file);
}

// Statements whose class is fixed by their node type alone.
bool classify_simple(const PgQuery__Node* n, statement_class& c) {
    switch (n->node_case) {
        case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
            set_read(c);
            return true;
        case PG_QUERY__NODE__NODE_FETCH_STMT:
        case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
            set_session(c, write_reason::cursor);
            return true;
        case PG_QUERY__NODE__NODE_CONSTRAINTS_SET_STMT:
        case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
            set_session(c, write_reason::session_setting);
            return true;
        case PG_QUERY__NODE__NODE_DISCARD_STMT: {
            set_session(c, write_reason::session_setting);
            const auto target = n->discard_stmt->target;
            c.drops_temp = target == PG_QUERY__DISCARD_MODE__DISCARD_ALL ||
                           target == PG_QUERY__DISCARD_MODE__DISCARD_TEMP;
            if (target == PG_QUERY__DISCARD_MODE__DISCARD_ALL) {
                setting_change ch;
                ch.name = routing_setting::all;
                ch.reset = true;
                c.settings.push_back(std::move(ch));
            }
            return true;
        }
        case PG_QUERY__NODE__NODE_PREPARE_STMT:
        case PG_QUERY__NODE__NODE_EXECUTE_STMT:
        case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
            set_write(c, write_reason::prepared_sql);
            return true;
        case PG_QUERY__NODE__NODE_VACUUM_STMT:
        case PG_QUERY__NODE__NODE_CHECK_POINT_STMT:
        case PG_QUERY__NODE__NODE_LISTEN_STMT:
        case PG_QUERY__NODE__NODE_NOTIFY_STMT:
        case PG_QUERY__NODE__NODE_LOAD_STMT:
        case PG_QUERY__NODE__NODE_REINDEX_STMT:
        case PG_QUERY__NODE__NODE_CLUSTER_STMT:
            set_write(c, write_reason::utility);
            return true;
        default:
            return false;
    }
}

// Statements that write whatever they contain; the walk finds their functions and TEMP.
write_reason fixed_write_reason(PgQuery__Node__NodeCase k) {
    switch (k) {
        case PG_QUERY__NODE__NODE_INSERT_STMT:
        case PG_QUERY__NODE__NODE_UPDATE_STMT:
        case PG_QUERY__NODE__NODE_DELETE_STMT:
        case PG_QUERY__NODE__NODE_MERGE_STMT:
        case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
            return write_reason::dml;
        case PG_QUERY__NODE__NODE_LOCK_STMT:
            return write_reason::lock;
        case PG_QUERY__NODE__NODE_DO_STMT:
            return write_reason::do_block;
        case PG_QUERY__NODE__NODE_CALL_STMT:
            return write_reason::call;
        default:
            return write_reason::ddl;  // CREATE / ALTER / DROP / GRANT / COMMENT / ...
    }
}

void classify_node(const PgQuery__Node* n, const context& cx, statement_class& c, int depth) {
    if (n == nullptr) return;  // stays unparsable
    c.node = detail::node_name(n);
    switch (n->node_case) {
        case PG_QUERY__NODE__NODE_SELECT_STMT:
            classify_select(n, c);
            return;
        case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
            classify_explain(*n->explain_stmt, cx, c, depth);
            return;
        case PG_QUERY__NODE__NODE_COPY_STMT:
            classify_copy(*n->copy_stmt, cx, c, depth);
            return;
        case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT: {
            statement_class inner = classify_inner(n->declare_cursor_stmt->query, cx, depth);
            inner.node = c.node;
            c = std::move(inner);
            return;
        }
        case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
            classify_transaction(*n->transaction_stmt, c);
            return;
        case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
            classify_set(*n->variable_set_stmt, cx, c);
            return;
        default:
            break;
    }
    if (classify_simple(n, c)) return;
    detail::tree_facts f;
    detail::collect(&n->base, f);
    set_write(c, fixed_write_reason(n->node_case));
    take_facts(c, std::move(f));
}

// libpg_query's result, freed on scope exit.
class parsed_tree {
  public:
    explicit parsed_tree(const std::string& text) : raw_(pg_query_parse_protobuf(text.c_str())) {
        if (raw_.error == nullptr) {
            tree_ = pg_query__parse_result__unpack(
                nullptr, raw_.parse_tree.len,
                reinterpret_cast<const std::uint8_t*>(raw_.parse_tree.data));
        }
    }
    parsed_tree(const parsed_tree&) = delete;
    parsed_tree& operator=(const parsed_tree&) = delete;
    ~parsed_tree() {
        if (tree_ != nullptr) pg_query__parse_result__free_unpacked(tree_, nullptr);
        pg_query_free_protobuf_parse_result(raw_);
    }
    // The one statement, or nullptr when the text did not parse or held more or fewer.
    [[nodiscard]] const PgQuery__Node* single_statement() const {
        if (tree_ == nullptr || tree_->n_stmts != 1 || tree_->stmts[0] == nullptr) return nullptr;
        return tree_->stmts[0]->stmt;
    }

  private:
    PgQueryProtobufParseResult raw_;
    PgQuery__ParseResult* tree_ = nullptr;
};

}  // namespace

statement_class classify_statement(std::string_view sql, const statement_shape& shape) {
    statement_class c;
    if (shape.offset > sql.size() || shape.length > sql.size() - shape.offset) return c;
    const context cx{sql.substr(shape.offset, shape.length), &shape};
    if (detail::nesting_estimate(cx.text) > detail::max_nesting) {
        c.reason = write_reason::too_complex;
        return c;
    }
    const parsed_tree tree{std::string(cx.text)};
    const PgQuery__Node* stmt = tree.single_statement();
    if (stmt == nullptr) return c;
    classify_node(stmt, cx, c, 0);
    return c;
}

}  // namespace shardgate::router
