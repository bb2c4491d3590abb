// Prepared statements under transaction pooling: rewriting client messages and the replies.
// Message flow and replies:
// https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
#include "core/statement_mux.hpp"

#include <algorithm>

#include "core/text.hpp"

#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/errors.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace {

void forward(pr::write_buffer& out, char type, std::span<const std::byte> body) {
    const auto mark = out.begin_message(type);
    out.bytes(body);
    out.end_message(mark);
}

}  // namespace

std::string server_statement_name(std::uint64_t id) {
    return "sg" + std::to_string(id);
}

void statement_mux::push(expect what, std::uint64_t statement) {
    if (head_ == expected_.size()) {
        expected_.clear();
        texts_.clear();
        head_ = 0;
    }
    expected_.push_back({what, 0, statement});
}

void statement_mux::push(expect what, std::uint64_t statement, pending_text text) {
    push(what, statement);
    texts_.push_back(std::move(text));
    expected_.back().text = static_cast<std::uint32_t>(texts_.size());
}

void statement_mux::pop() {
    if (++head_ == expected_.size()) {
        expected_.clear();
        texts_.clear();
        head_ = 0;
    }
}

const statement_mux::pending_text& statement_mux::text_of(const pending& p) const {
    static const pending_text none;
    return p.text == 0 ? none : texts_[p.text - 1];
}

statement_mux::pending_text& statement_mux::text_of(pending& p) {
    if (p.text == 0) {
        texts_.emplace_back();
        p.text = static_cast<std::uint32_t>(texts_.size());
    }
    return texts_[p.text - 1];
}

void statement_mux::fail(std::string code, std::string message) {
    push(expect::synth_error, 0, {std::move(code), std::move(message), {}, {}});
    skip_to_sync_ = true;
}

bool statement_mux::ensure_prepared(const client_statement& s, pr::write_buffer& to_server,
                                    expect parse_reply, const std::string& client_name) {
    if (server_->contains(s.id)) {
        server_->touch(s.id);
        return true;
    }
    if (auto victim = server_->add(s.id, max_prepared_)) {
        const auto mark = to_server.begin_message('C');
        to_server.u8('S');
        to_server.cstring(server_statement_name(*victim));
        to_server.end_message(mark);
        push(expect::swallow_close);
    }
    const auto mark = to_server.begin_message('P');
    to_server.cstring(server_statement_name(s.id));
    to_server.bytes(s.key);
    to_server.end_message(mark);
    if (client_name.empty())
        push(parse_reply, s.id);
    else
        push(parse_reply, s.id, {{}, {}, client_name, {}});
    return false;
}

void statement_mux::client_message(char type, std::span<const std::byte> body,
                                   pr::write_buffer& to_server, pr::write_buffer& to_client) {
    if (skip_to_sync_) {
        // Postgres ignores everything after an error up to Sync; so does shardgate.
        if (type == 'S') {
            skip_to_sync_ = false;
            forward(to_server, type, body);
            push(expect::sync);
        }
        return drain(to_client);
    }
    switch (type) {
        case 'P':
            client_parse(body, to_server);
            break;
        case 'B':
            client_bind(body, to_server);
            break;
        case 'D':
        case 'C':
            client_describe_or_close(type, body, to_server);
            break;
        case 'E':
            forward(to_server, type, body);
            push(expect::execute);
            break;
        case 'S':
            forward(to_server, type, body);
            push(expect::sync);
            break;
        case 'Q':
        case 'F':
            forward(to_server, type, body);
            push(expect::query);
            break;
        default:  // Flush, COPY data: no reply of their own
            forward(to_server, type, body);
            break;
    }
    drain(to_client);
}

void statement_mux::client_parse(std::span<const std::byte> body, pr::write_buffer& to_server) {
    auto [name, rest] = cstring(body);
    if (name.empty()) {
        forward(to_server, 'P', body);
        push(expect::parse);
        return;
    }
    std::string n(name);
    if (statements_.count(n) != 0) {
        fail("42P05", "prepared statement \"" + n + "\" already exists");
        return;
    }
    client_statement s{registry_.intern(rest), {rest.begin(), rest.end()}};
    const auto& st = statements_.emplace(n, std::move(s)).first->second;
    // Sent, its ParseComplete goes to the client; already there, shardgate owes one.
    if (ensure_prepared(st, to_server, expect::parse, n))
        push(expect::synth_parse, st.id, {{}, {}, n, {}});
}

void statement_mux::client_bind(std::span<const std::byte> body, pr::write_buffer& to_server) {
    auto [portal, after_portal] = cstring(body);
    auto [stmt, rest] = cstring(after_portal);
    if (stmt.empty()) {
        forward(to_server, 'B', body);
        push(expect::bind);
        return;
    }
    auto it = statements_.find(std::string(stmt));
    if (it == statements_.end()) {
        fail("26000", "prepared statement \"" + std::string(stmt) + "\" does not exist");
        return;
    }
    ensure_prepared(it->second, to_server);
    const auto mark = to_server.begin_message('B');
    to_server.cstring(portal);
    to_server.cstring(server_statement_name(it->second.id));
    to_server.bytes(rest);
    to_server.end_message(mark);
    push(expect::bind);
}

void statement_mux::client_describe_or_close(char type, std::span<const std::byte> body,
                                             pr::write_buffer& to_server) {
    const char kind = body.empty() ? '\0' : static_cast<char>(body[0]);
    auto [name, rest] = cstring(body.empty() ? body : body.subspan(1));
    if (kind != 'S' || name.empty()) {
        forward(to_server, type, body);
        push(type == 'C'   ? expect::close
             : kind == 'S' ? expect::describe_stmt
                           : expect::describe_portal);
        return;
    }
    auto it = statements_.find(std::string(name));
    if (type == 'C') {
        // Closing is the client's business; the server keeps it for others. Closing a name
        // that does not exist is not an error in Postgres either.
        if (it != statements_.end()) statements_.erase(it);
        push(expect::synth_close);
        return;
    }
    if (it == statements_.end()) {
        fail("26000", "prepared statement \"" + std::string(name) + "\" does not exist");
        return;
    }
    ensure_prepared(it->second, to_server);
    const auto mark = to_server.begin_message('D');
    to_server.u8('S');
    to_server.cstring(server_statement_name(it->second.id));
    to_server.end_message(mark);
    push(expect::describe_stmt);
}

void statement_mux::client_query_with_tail(
    std::span<const std::byte> query, std::string_view tail,
    const std::vector<std::pair<std::string, std::string>>& reported, pr::write_buffer& to_server,
    pr::write_buffer& to_client, bool lsn) {
    forward(to_server, 'Q', query);
    push(expect::query_head);
    const auto mark = to_server.begin_message('Q');
    to_server.cstring(tail);
    to_server.end_message(mark);
    push(expect::query_tail, lsn ? lsn_tail_mark : 0, {{}, {}, {}, reported});
    drain(to_client);
}

void statement_mux::client_sync_with_tail(std::span<const std::byte> sync, std::string_view tail,
                                          pr::write_buffer& to_server,
                                          pr::write_buffer& to_client) {
    skip_to_sync_ = false;  // as client_message does for a Sync
    forward(to_server, 'S', sync);
    push(expect::sync_head);
    const auto mark = to_server.begin_message('Q');
    to_server.cstring(tail);
    to_server.end_message(mark);
    push(expect::query_tail, lsn_tail_mark, {});
    drain(to_client);
}

void statement_mux::hidden_query(std::string_view sql, pr::write_buffer& to_server) {
    const auto mark = to_server.begin_message('Q');
    to_server.cstring(sql);
    to_server.end_message(mark);
    push(expect::query_hidden);
}

void statement_mux::emit_reports(std::string_view held,
                                 const std::vector<std::pair<std::string, std::string>>& reported,
                                 pr::write_buffer& to_client) {
    // ParameterStatus messages, whole, one after another: the last of each name, sorted by
    // name without case as Postgres 15 walks its (sorted) settings when it reports them; a
    // parameter whose final value is the one the client knows is not reported (Postgres sends
    // only changes: the head may set it and the tail put it back).
    std::vector<std::pair<std::string, std::string_view>> last;
    for (std::size_t at = 0; at + 5 <= held.size();) {
        const auto len =
            (static_cast<std::uint32_t>(static_cast<unsigned char>(held[at + 1])) << 24) |
            (static_cast<std::uint32_t>(static_cast<unsigned char>(held[at + 2])) << 16) |
            (static_cast<std::uint32_t>(static_cast<unsigned char>(held[at + 3])) << 8) |
            static_cast<std::uint32_t>(static_cast<unsigned char>(held[at + 4]));
        const auto whole = held.substr(at, 1 + std::size_t{len});
        std::string name(whole.substr(5, whole.find('\0', 5) - 5));
        for (auto& ch : name)
            if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
        std::erase_if(last, [&name](const auto& e) { return e.first == name; });
        last.emplace_back(std::move(name), whole);
        at += whole.size();
    }
    std::stable_sort(last.begin(), last.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [lower_name, whole] : last) {
        const std::string& name = lower_name;  // Clang 14 cannot capture a structured binding
        const auto nul = whole.find('\0', 5);
        const auto value = whole.substr(nul + 1, whole.size() - nul - 2);
        // What the client was last told: a report that went through this mux since, or
        // else the connection's value when the tail was queued.
        const auto told = std::find_if(told_.begin(), told_.end(),
                                       [&](const auto& t) { return t.first == name; });
        const bool known = told != told_.end()
                               ? told->second == value
                               : std::any_of(reported.begin(), reported.end(), [&](const auto& r) {
                                     return ascii_lower(r.first) == name && r.second == value;
                                 });
        if (known) continue;
        const auto bytes = std::as_bytes(std::span(whole.data(), whole.size()));
        to_client.bytes(bytes);
        note_told(bytes);
    }
}

void statement_mux::note_told(std::span<const std::byte> whole) {
    const auto ps = pr::be::decode_parameter_status(whole.subspan(5));
    if (!ps) return;
    auto name = ascii_lower(ps->name);
    const auto it =
        std::find_if(told_.begin(), told_.end(), [&](const auto& t) { return t.first == name; });
    if (it != told_.end())
        it->second = ps->value;
    else
        told_.emplace_back(std::move(name), ps->value);
}

void statement_mux::client_names_in_error(std::span<const std::byte> whole,
                                          pr::write_buffer& to_client) const {
    // Postgres names the statement in some errors ("bind message supplies 1 parameters, but
    // prepared statement \"sg5\" requires 2"): the client must see its own name.
    const std::string_view text(reinterpret_cast<const char*>(whole.data()), whole.size());
    if (text.find("\"sg") == std::string_view::npos || statements_.empty()) {
        to_client.bytes(whole);
        return;
    }
    std::string out(text.substr(5));
    for (std::size_t at = out.find("\"sg"); at != std::string::npos;
         at = out.find("\"sg", at + 1)) {
        std::size_t end = at + 3;
        while (end < out.size() && out[end] >= '0' && out[end] <= '9')
            ++end;
        if (end == at + 3 || end >= out.size() || out[end] != '"') continue;
        const std::string server_name = out.substr(at + 1, end - at - 1);
        for (const auto& [client_name, st] : statements_) {
            if (server_statement_name(st.id) == server_name) {
                out.replace(at + 1, end - at - 1, client_name);
                break;
            }
        }
    }
    const auto mark = to_client.begin_message('E');
    to_client.bytes(std::as_bytes(std::span(out.data(), out.size())));
    to_client.end_message(mark);
}

statement_mux::dealloc statement_mux::deallocate(std::string_view name, char txn_status,
                                                 pr::write_buffer& to_server,
                                                 pr::write_buffer& to_client) {
    auto it = statements_.find(std::string(name));
    if (it == statements_.end() || txn_status == 'E' || skip_to_sync_) return dealloc::forward;
    const auto id = it->second.id;
    if (server_ != nullptr && server_->contains(id)) {
        statements_.erase(it);
        server_->remove(id);
        const auto mark = to_server.begin_message('Q');
        to_server.cstring("DEALLOCATE " + server_statement_name(id));
        to_server.end_message(mark);
        push(expect::query);
        return dealloc::sent;
    }
    if (!settled()) return dealloc::forward;  // the status after what is in flight is unknown
    // Not prepared on this connection: nothing for the server to do.
    statements_.erase(it);
    pr::be::encode(to_client, pr::be::command_complete{"DEALLOCATE"});
    pr::be::encode(to_client, pr::be::ready_for_query{txn_status});
    return dealloc::answered;
}

void statement_mux::error_until_sync() {
    // The server skips every message up to Sync after an error: their replies never come,
    // and what shardgate owed for them is not owed either (as with Postgres, a skipped Parse
    // creates nothing).
    while (!settled() && expected_[head_].what != expect::sync &&
           expected_[head_].what != expect::sync_head) {
        const auto& p = expected_[head_];
        if ((p.what == expect::parse || p.what == expect::swallow_parse) && p.statement != 0 &&
            server_ != nullptr)
            server_->remove(p.statement);
        if ((p.what == expect::parse || p.what == expect::synth_parse) &&
            !text_of(p).client_name.empty())
            statements_.erase(text_of(p).client_name);
        pop();
    }
}

void statement_mux::server_message(std::span<const std::byte> whole, pr::write_buffer& to_client) {
    const char type = static_cast<char>(whole[0]);
    // Notices, notifications and parameter changes can come at any time.
    if (type == 'N' || type == 'A' || type == 'S' || settled()) {
        const auto at = settled() ? expect::sync : expected_[head_].what;
        if (type == 'S' &&
            (at == expect::query_head || at == expect::sync_head || at == expect::query_tail)) {
            // Held back until the tail's ReadyForQuery (the tail follows the head).
            auto& held = text_of(expected_[at == expect::query_tail ? head_ : head_ + 1]).message;
            held.append(reinterpret_cast<const char*>(whole.data()), whole.size());
            return;
        }
        to_client.bytes(whole);
        if (type == 'S') note_told(whole);
        return;
    }
    if (server_around_tail(type, whole, to_client)) return;
    const auto what = expected_[head_].what;
    if (type == 'E') {
        client_names_in_error(whole, to_client);
        if (what == expect::query) return;  // a simple query still ends with ReadyForQuery
        error_until_sync();
        return drain(to_client);
    }
    bool pass = true;
    const bool done = completes(what, type, pass);
    if (pass) to_client.bytes(whole);
    if (done) pop();
    drain(to_client);
}

bool statement_mux::server_around_tail(char type, std::span<const std::byte> whole,
                                       pr::write_buffer& to_client) {
    const auto& head = expected_[head_];
    if (head.what == expect::query_tail) {
        // Only the tail's ReadyForQuery reaches the client (with the transaction's status).
        if (type == 'D' && !tail_row_seen_) {
            tail_row_seen_ = true;
            tail_value_.clear();
            if (auto row = pr::be::decode_data_row(whole.subspan(5));
                row && !row->values.empty() && row->values.front())
                tail_value_ = *row->values.front();
        }
        if (type == 'Z') {
            tail_row_seen_ = false;
            emit_reports(text_of(head).message, text_of(head).reported, to_client);
            to_client.bytes(whole);
            pop();
            drain(to_client);
        }
        return true;
    }
    if (head.what == expect::query_hidden) {
        if (type == 'Z') {
            pop();
            drain(to_client);
        } else if (type == 'E') {
            client_names_in_error(whole, to_client);
        }
        return true;
    }
    if (head.what == expect::query_head || head.what == expect::sync_head) {
        if (type == 'E' && head.what == expect::sync_head) {
            client_names_in_error(whole, to_client);
            return true;
        }
        if (type == 'Z') {
            pop();
        } else {
            to_client.bytes(whole);
        }
        return true;
    }
    return false;
}

bool statement_mux::completes(expect what, char type, bool& pass) {
    bool done = false;
    switch (what) {
        case expect::parse:
            done = type == '1';
            break;
        case expect::swallow_parse:
            done = type == '1';
            pass = !done;
            break;
        case expect::bind:
            done = type == '2';
            break;
        case expect::describe_stmt:
        case expect::describe_portal:
            done = type == 'T' || type == 'n';
            break;
        case expect::execute:
            done = type == 'C' || type == 'I' || type == 's';
            break;
        case expect::close:
            done = type == '3';
            break;
        case expect::swallow_close:
            done = type == '3';
            pass = !done;
            break;
        case expect::sync:
        case expect::query:
            done = type == 'Z';
            break;
        default:
            break;
    }
    return done;
}

void statement_mux::drain(pr::write_buffer& to_client) {
    while (!settled()) {
        const auto& p = expected_[head_];
        if (p.what == expect::synth_parse) {
            pr::be::encode(to_client, pr::be::parse_complete{});
        } else if (p.what == expect::synth_close) {
            pr::be::encode(to_client, pr::be::close_complete{});
        } else if (p.what == expect::synth_error) {
            pr::encode_error(to_client, {pr::severity::error, text_of(p).code, text_of(p).message});
        } else {
            return;
        }
        pop();
    }
}

}  // namespace shardgate::proxy
