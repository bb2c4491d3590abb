// The transaction-pooling session core (txn_core.hpp). Messages are handled whole: named
// prepared statements are renamed and prepared on demand (statement_mux.hpp). A client that
// leaves other state in its server session (SET, SQL PREPARE, LISTEN, temporary tables, WITH
// HOLD cursors, session advisory locks: see router/session_effects.hpp) is pinned to its
// connection until it disconnects.
#include "core/txn_core.hpp"

#include <algorithm>

#include "core/text.hpp"
#include "core/txn_statements.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/scanner.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace rt = shardgate::router;

std::string_view to_string(backend_disposition d) {
    switch (d) {
        case backend_disposition::clean:
            return "clean";
        case backend_disposition::dirty:
            return "dirty";
        case backend_disposition::poisoned:
            return "poisoned";
    }
    return "?";
}

std::string_view to_string(txn_action::kind k) {
    switch (k) {
        case txn_action::kind::read:
            return "read";
        case txn_action::kind::need_server:
            return "need_server";
        case txn_action::kind::release:
            return "release";
        case txn_action::kind::close:
            return "close";
    }
    return "?";
}

txn_action txn_core::resume(const txn_event& e) {
    switch (e.what) {
        case txn_event::kind::client_bytes:
            // After Terminate the client is only watched for its close; what it sends is
            // dropped, as Postgres reads nothing more.
            if (tracker_.terminated()) return {};
            if (!e.bytes.empty() && !client_in_.append(e.bytes)) {
                refuse_client_memory();
                return close(link_end::client_protocol_error, true);
            }
            return after_client();
        case txn_event::kind::server_bytes:
            if (backend_ == nullptr) return {};
            if (!server_bytes(e.bytes)) return close(link_end::server_protocol_error, true);
            return after_server(e.server_unsent);
        case txn_event::kind::attached:
            attach(*e.backend);
            return after_client();
        case txn_event::kind::no_server:
            fail_waiting(e.code, e.message, client_out_);
            return {};
        case txn_event::kind::ended:
            return close(e.why, e.server_open);
    }
    return {};
}

txn_action txn_core::after_client() {
    switch (client_messages()) {
        case step::failed:
            return close(link_end::client_protocol_error, true);
        case step::need_server:
            return {txn_action::kind::need_server};
        case step::done:
            break;
    }
    if (finished()) return close(link_end::client_closed, true);
    return {};
}

txn_action txn_core::after_server(bool server_unsent) {
    if (finished()) return close(link_end::client_closed, true);
    if (!may_detach() || server_unsent) return {};
    detach();
    return {txn_action::kind::release};
}

txn_action txn_core::close(link_end why, bool server_open) {
    txn_action a{txn_action::kind::close, why};
    if (backend_ == nullptr) return a;
    if (!mux_.settled()) tracker_.mark_dirty();  // replies still owed: not reusable
    backend_->txn_status = tracker_.txn_status();
    a.had_server = true;
    a.disposition = end_disposition(why, server_open, false);
    mux_.detach();  // the connection keeps its status: a dirty one is rolled back
    backend_ = nullptr;
    return a;
}

bool txn_core::need_server_first(const pr::frame_decoder& dec) {
    // A server connection for the first complete message (the bytes wait in client_in_).
    while (backend_ == nullptr) {
        const auto first = dec.feed(client_in_.pending());
        if (first.status != pr::frame_status::ok || first.msg.type == 'X') break;
        // A plain BEGIN may be answered and held: then the next message chooses the server.
        if (routing_ != nullptr && routing_->route_start()) continue;
        return true;
    }
    if (backend_ != nullptr && routing_ != nullptr) {
        // What shardgate answered and held goes first, on the server the statement chose.
        if (auto held = routing_->take_held(); !held.empty()) {
            tracker_.on_client('Q');
            mux_.hidden_query(held, to_server_);
        }
    }
    return false;
}

txn_core::step txn_core::client_messages() {
    const pr::frame_decoder dec(opts_.max_message_size);
    if (need_server_first(dec)) return step::need_server;
    // Whole messages only: statements are renamed and replies re-sequenced per message.
    for (;;) {
        const auto f = dec.feed(client_in_.pending());
        if (f.status == pr::frame_status::error) {
            client_error_ = f.error;
            return step::failed;
        }
        if (f.status != pr::frame_status::ok) break;
        const char t = f.msg.type;
        tracker_.on_client(t);
        if (routing_ != nullptr) routing_->on_client_message(t, f.msg.body);
        if (t == 'X') {
            client_in_.clear();  // Postgres reads nothing after Terminate
            break;
        }
        client_message(t, f.msg.body, f.consumed);
    }
    client_at_boundary_ = client_in_.empty();
    return step::done;
}

void txn_core::client_message(char t, std::span<const std::byte> body, std::size_t consumed) {
    bool discard_all = false;
    const auto effect = track_settings(t, body, discard_all);
    if (t == 'E') settings_.executed();
    const auto m = rewrite(t, body, effect);
    if (m.effect != rt::session_effect::none && !pinned_) {
        pinned_ = true;
        pin_reason_ = m.effect;
    }
    forward(t, m, body);
    if ((discard_all || m.effect == rt::session_effect::discard ||
         m.effect == rt::session_effect::prepare) &&
        t == 'Q' && mentions_all(body)) {
        mux_.forget_all();
        if (routing_ != nullptr) routing_->forget_prepared();
    }
    client_in_.consume(consumed);
}

txn_core::rewritten txn_core::rewrite(char t, std::span<const std::byte> body,
                                      rt::session_effect effect) {
    rewritten m{body, effect, std::nullopt};
    // SQL DEALLOCATE of a protocol-level statement (drivers mix the two).
    if (backend_ != nullptr && t == 'Q' && effect == rt::session_effect::prepare) {
        m.dealloc = deallocated_name(cstring(body).first);
        if (m.dealloc && mux_.has_statement(*m.dealloc))
            m.effect = rt::session_effect::none;
        else
            m.dealloc.reset();
    }
    if (routing_ != nullptr) {
        if (auto r = routing_->replacement(t, body)) {
            refused_ = std::move(*r);
            m.body = refused_;
            m.effect = rt::session_effect::none;
        }
    }
    if (m.effect != rt::session_effect::none && !pinned_ && opts_.refuse_pinning &&
        (t == 'Q' || t == 'P')) {
        // transaction_pinning = "refuse": the server raises the error itself, so a
        // transaction block fails exactly as Postgres would make it fail.
        refused_ = refusal(t, m.body, m.effect);
        m.body = refused_;
        m.effect = rt::session_effect::none;
    }
    return m;
}

rt::session_effect txn_core::track_settings(char t, std::span<const std::byte> body,
                                            bool& discard_all) {
    auto effect = effect_of(t, body, false);
    // SET / RESET outside a transaction is remembered and replayed on the next
    // connections instead of pinning (committed when its ReadyForQuery shows success).
    // Drivers also send them through the extended protocol on the unnamed statement
    // (pgjdbc: Parse "SET extra_float_digits = 3", Bind, Execute, Sync): those count once
    // executed.
    const bool open = backend_ != nullptr && tracker_.txn_status() == 'I' && !settings_.pending();
    if (effect == rt::session_effect::set && open) {
        std::optional<std::vector<std::pair<rt::tracked_setting, std::string>>> sets;
        if (t == 'Q') {
            sets = trackable_settings(cstring(body).first);
        } else if (t == 'P') {
            auto [name, rest] = cstring(body);
            if (name.empty()) sets = trackable_settings(cstring(rest).first);
        }
        if (sets) {
            settings_.set_pending(std::move(*sets), t == 'P');
            effect = rt::session_effect::none;
        }
    }
    // DISCARD ALL by a client that is not pinned: its settings and statements go, and it
    // stays unpinned (drivers and application pools send it as a reset).
    discard_all =
        effect == rt::session_effect::discard && t == 'Q' && is_discard_all(cstring(body).first);
    if (discard_all && open && !pinned_) {
        std::vector<std::pair<rt::tracked_setting, std::string>> all;
        all.emplace_back(rt::tracked_setting{rt::tracked_setting::kind::reset_all, {}},
                         "DISCARD ALL");
        settings_.set_pending(std::move(all), false);
        effect = rt::session_effect::none;
    }
    return effect;
}

void txn_core::forward(char t, const rewritten& m, std::span<const std::byte> original) {
    // What goes to the server (and what shardgate answers itself) for one client message:
    // SQL DEALLOCATE of a protocol statement, a Query or Sync followed by shardgate's own
    // tail (startup parameters put back after a RESET, the commit LSN of a write), or the
    // message as the mux rewrites it.
    if (backend_ == nullptr) return;
    const auto body = m.body;
    const bool lsn_tail = routing_ != nullptr && routing_->wants_lsn_tail(t, body);
    if (m.dealloc) {
        // One of its protocol statements: nothing pins, shardgate's name is dropped.
        const auto how =
            mux_.deallocate(*m.dealloc, tracker_.txn_status(), to_server_, client_out_);
        if (how == statement_mux::dealloc::answered) {
            tracker_.on_ready(tracker_.txn_status());
        } else if (how == statement_mux::dealloc::forward) {
            mux_.client_message(t, body, to_server_, client_out_);
        }
        return;
    }
    std::string tail;
    const bool reset_tail = t == 'Q' && body.data() == original.data() &&
                            (m.effect == rt::session_effect::set ||
                             m.effect == rt::session_effect::discard || settings_.pending()) &&
                            !mentions_stdin(cstring(body).first) &&
                            settings_.reset_tail(cstring(body).first, tail);
    if (t == 'Q' && (reset_tail || lsn_tail)) {
        // The primary's insert LSN comes first in the tail's row (read in server_bytes).
        if (lsn_tail) {
            tail = std::string(lsn_tail_sql) +
                   (tail.empty() ? std::string() : ", " + tail.substr(sizeof("SELECT")));
            routing_->sent_lsn_tail();
        }
        mux_.client_query_with_tail(body, tail, backend_->params, to_server_, client_out_,
                                    lsn_tail);
    } else if (t == 'S' && lsn_tail) {
        routing_->sent_lsn_tail();
        mux_.client_sync_with_tail(body, lsn_tail_sql, to_server_, client_out_);
    } else {
        mux_.client_message(t, body, to_server_, client_out_);
    }
}

bool txn_core::server_bytes(std::span<const std::byte> chunk) {
    const pr::frame_decoder dec(pr::postgres_max_message_length);
    (void)server_in_.append(chunk);  // no budget: the server's messages are bounded by the
                                     // frame decoder, and reading stops while the client is slow
    for (;;) {
        const auto f = dec.feed(server_in_.pending());
        if (f.status == pr::frame_status::error) return false;
        if (f.status != pr::frame_status::ok) break;
        if (f.msg.type == 'Z') {
            server_ready(f.msg.body);
        } else if (f.msg.type == 'S') {
            // The connection's reported settings stay current: a SET's final value is read
            // from them (session_settings::end_exchange), and session mode compares them.
            if (auto ps = pr::be::decode_parameter_status(f.msg.body); ps && backend_ != nullptr)
                backend_->set_param(ps->name, ps->value);
        } else if (f.msg.type == 'E') {
            settings_.pending_failed();
            auto e = pr::be::decode_error_response(f.msg.body);
            if (e && (e->severity() == "FATAL" || e->severity() == "PANIC")) tracker_.on_fatal();
        }
        mux_.server_message(server_in_.pending().first(f.consumed), client_out_);
        server_in_.consume(f.consumed);
    }
    server_at_boundary_ = server_in_.empty();
    return true;
}

void txn_core::server_ready(std::span<const std::byte> body) {
    const bool tail = mux_.at_lsn_tail();
    const std::string tail_value = mux_.at_tail() ? mux_.take_tail_value() : std::string();
    tracker_.on_ready(body.empty() ? 'I' : static_cast<char>(body[0]));
    if (routing_ != nullptr) {
        // Another connection may wait for it: SET shardgate.min_lsn = '...'.
        if (auto lsn = routing_->on_ready(tracker_.txn_status(), tail, tail_value))
            pr::be::encode(client_out_,
                           pr::be::parameter_status{"shardgate.last_commit_lsn", *lsn});
    }
    settings_.end_exchange(tracker_.txn_status(), backend_);
}

bool txn_core::settled() const {
    return tracker_.server_idle() && mux_.settled() && server_at_boundary_;
}

bool txn_core::may_detach() const {
    return settled() && tracker_.txn_status() == 'I' && client_at_boundary_ && !pinned_ &&
           !tracker_.server_fatal() && !tracker_.terminated();
}

bool txn_core::finished() const {
    return tracker_.terminated() && (backend_ == nullptr || settled());
}

void txn_core::attach(pool::backend_state& b) {
    backend_ = &b;
    mux_.attach(&b.prepared);
    // Each attachment starts at a message boundary of the server's stream.
    server_in_.clear();
    server_at_boundary_ = true;
}

void txn_core::detach() {
    mux_.detach();
    if (backend_ != nullptr) backend_->txn_status = 'I';
    backend_ = nullptr;
}

bool txn_core::server_clean(bool server_open) const {
    return tracker_.server_idle() && server_at_boundary_ && client_at_boundary_ &&
           !tracker_.dirty() && !tracker_.server_fatal() && server_open;
}

backend_disposition txn_core::end_disposition(link_end end, bool server_open,
                                              bool session_mode) const {
    const bool reusable = server_clean(server_open) &&
                          (end == link_end::client_closed || end == link_end::client_write_failed ||
                           end == link_end::admin_shutdown);
    if (!reusable) return backend_disposition::poisoned;
    // Session mode resets every connection (the pool rolls back a transaction the client left
    // open, runs server_reset_query, and closes a backend with temporary objects); transaction
    // mode only one whose client left session state behind (pinned) or a transaction open.
    if (session_mode || pinned_ || tracker_.txn_status() != 'I') return backend_disposition::dirty;
    return backend_disposition::clean;
}

void txn_core::fail_waiting(std::string_view code, std::string_view message,
                            pr::write_buffer& out) {
    // Not FATAL: the client may try again. Each reply it is owed (a Query, a Sync, a function
    // call among the messages now dropped) is an error + ReadyForQuery.
    std::size_t owed = 0;
    const pr::frame_decoder dec(opts_.max_message_size);
    auto in = client_in_.pending();
    for (auto f = dec.feed(in); f.status == pr::frame_status::ok; f = dec.feed(in)) {
        if (f.msg.type == 'Q' || f.msg.type == 'S' || f.msg.type == 'F') ++owed;
        in = in.subspan(f.consumed);
        client_in_.consume(f.consumed);
    }
    for (std::size_t i = 0; i < std::max<std::size_t>(owed, 1); ++i) {
        pr::encode_error(out, {pr::severity::error, code, message});
        pr::be::encode(out, pr::be::ready_for_query{'I'});
    }
}

void txn_core::refuse_client_memory() {
    client_in_.clear();  // what it held goes back to the budget at once
    client_error_ = pr::frame_error::too_large;
    client_memory_refused_ = true;
}

}  // namespace shardgate::proxy
