// Query loop of a transaction-pooled client (pool_mode = transaction), on the Asio workers.
// The client holds a server connection from the first message of a transaction until the
// ReadyForQuery that shows it idle ('I') with nothing owed; then the connection goes back to
// the pool. Messages are handled whole: named prepared statements are renamed and prepared on
// demand (statement_mux.hpp). A client that leaves other state in its server session (SET,
// SQL PREPARE, LISTEN, temporary tables, WITH HOLD cursors, session advisory locks: see
// router/session_effects.hpp) is pinned to its connection until it disconnects.
#include <spdlog/spdlog.h>

#include "session.hpp"
#include "shardgate/pool/replica_health.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/scanner.hpp"
#include "shardgate/protocol/sqlstate.hpp"
#include "shardgate/router/session_effects.hpp"
#include "text.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace rt = shardgate::router;
namespace {

// What a client message does to its server session, for the messages that may pin.
rt::session_effect effect_of(char type, std::span<const std::byte> body, bool truncated) {
    if (truncated) return rt::session_effect::unknown;
    switch (type) {
        case 'Q':
            return rt::find_session_effect(cstring(body).first);
        case 'P': {
            auto [name, rest] = cstring(body);
            // Named statements are shared through statement_mux; only what the query does
            // to the session counts.
            (void)name;
            return rt::find_session_effect(cstring(rest).first);
        }
        case 'F':  // a fast-path call may run anything (set_config, advisory locks...)
            return rt::session_effect::unknown;
        default:
            return rt::session_effect::none;
    }
}

// The SET/RESET statements of a Query, when every other statement in it leaves nothing in the
// session (asyncpg's reset: SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL).
std::optional<std::vector<std::pair<rt::tracked_setting, std::string>>> trackable_settings(
    std::string_view sql) {
    static const rt::shape_lexer lexer;
    thread_local rt::shape_result res;
    lexer.lex(sql, res);
    if (!res.ok() || res.statement_count() == 0) return std::nullopt;
    std::vector<std::pair<rt::tracked_setting, std::string>> out;
    for (const auto& st : res.statements()) {
        auto t = rt::trackable_setting(st.shape);
        if (t) {
            out.emplace_back(std::move(*t), std::string(sql.substr(st.offset, st.length)));
        } else if (rt::session_effect_of(st.shape) != rt::session_effect::none) {
            return std::nullopt;  // something else that stays in the session: pin
        }
    }
    return out;
}

// A Query or Parse body whose statement raises 0A000 saying why the original is refused.
// A Query or Parse body (named as `body`'s) whose statement makes the server raise `code`,
// `message` and `hint`: the server fails it as its own error would, inside a transaction too.
std::vector<std::byte> raising(char type, std::span<const std::byte> body, std::string_view code,
                               std::string_view message, std::string_view hint) {
    auto quoted = [](std::string_view v) {
        std::string q = "'";
        for (char ch : v) {
            if (ch == '\'') q += '\'';
            q += ch;
        }
        return q + "'";
    };
    const std::string sql = "DO $shardgate$BEGIN RAISE EXCEPTION USING ERRCODE = " + quoted(code) +
                            ", MESSAGE = " + quoted(message) + ", HINT = " + quoted(hint) +
                            "; END$shardgate$";
    std::vector<std::byte> out;
    auto put = [&out](std::string_view s) {
        for (char ch : s)
            out.push_back(static_cast<std::byte>(ch));
        out.push_back(std::byte{0});
    };
    if (type == 'P') {
        auto [name, rest] = cstring(body);
        put(name);
        put(sql);
        out.push_back(std::byte{0});  // no parameter types
        out.push_back(std::byte{0});
        (void)rest;
    } else {
        put(sql);
    }
    return out;
}

std::vector<std::byte> refusal(char type, std::span<const std::byte> body, rt::session_effect e) {
    return raising(type, body, "0A000",
                   "shardgate: " + std::string(rt::to_string(e)) +
                       " would tie this client to one server connection, and "
                       "transaction_pinning = refuse",
                   "Use a session-mode pool for this client, or set transaction_pinning = pin.");
}

// A value shardgate cannot route by, for one of its own settings: Postgres' words for a bad
// enum value (it would take any value for a placeholder).
std::vector<std::byte> setting_refusal(char type, std::span<const std::byte> body,
                                       const rt::setting_error& e) {
    std::string_view hint = "Available values: auto, primary, replica.";
    if (e.name == rt::routing_setting::consistency)
        hint = "Available values: eventual, session, primary.";
    else if (e.name == rt::routing_setting::min_lsn)
        hint = "The value is a WAL location such as '0/16B3748' (shardgate.last_commit_lsn).";
    return raising(type, body, "22023",
                   "invalid value for parameter \"" + std::string(rt::to_string(e.name)) +
                       "\": \"" + e.value + "\"",
                   hint);
}

// DISCARD ALL / DEALLOCATE ALL (a Query body mentioning ALL, after its effect was found).
bool mentions_all(std::span<const std::byte> body) {
    const std::string q = ascii_lower(cstring(body).first);
    return q.find("discard all") != std::string::npos ||
           q.find("deallocate all") != std::string::npos ||
           q.find("deallocate prepare all") != std::string::npos;
}

// The words of `sql` in lower case, split at white space and semicolons (for the few
// one-statement commands recognised here; anything with quotes or comments is not one).
std::vector<std::string> words_of(std::string_view sql) {
    std::vector<std::string> out;
    std::string cur;
    for (char ch : sql) {
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == ';') {
            if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
        } else {
            cur += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

bool is_discard_all(std::string_view sql) {
    const auto w = words_of(sql);
    return w.size() == 2 && w[0] == "discard" && w[1] == "all";
}

// The statement name of a Query that is exactly DEALLOCATE [PREPARE] name, folded as Postgres
// folds identifiers (lower case unless double-quoted).
std::optional<std::string> deallocated_name(std::string_view sql) {
    auto trim = [](std::string_view v) {
        while (!v.empty() &&
               (v.front() == ' ' || v.front() == '\t' || v.front() == '\n' || v.front() == '\r'))
            v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\n' ||
                              v.back() == '\r' || v.back() == ';'))
            v.remove_suffix(1);
        return v;
    };
    auto word = [&trim](std::string_view& v, std::string_view w) {
        v = trim(v);
        if (v.size() <= w.size() || ascii_lower(v.substr(0, w.size())) != w) return false;
        const char next = v[w.size()];
        if (next != ' ' && next != '\t' && next != '\n' && next != '\r') return false;
        v.remove_prefix(w.size());
        return true;
    };
    std::string_view v = sql;
    if (!word(v, "deallocate")) return std::nullopt;
    std::string_view after_prepare = v;
    if (word(after_prepare, "prepare")) v = after_prepare;
    v = trim(v);
    if (v.empty() || v.find(';') != std::string_view::npos) return std::nullopt;
    if (v.front() == '"') {
        if (v.size() < 3 || v.back() != '"' ||
            v.substr(1, v.size() - 2).find('"') != std::string_view::npos)
            return std::nullopt;
        return std::string(v.substr(1, v.size() - 2));
    }
    for (char ch : v) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '_' || ch == '$' ||
                        static_cast<unsigned char>(ch) >= 0x80;
        if (!ok) return std::nullopt;
    }
    if (ascii_lower(v) == "all") return std::nullopt;
    return ascii_lower(v);
}

}  // namespace

bool client_session::reset_tail(std::string_view sql, std::string& tail) const {
    if (startup_params_.empty() || sql.find_first_of("'\"-/$") != std::string_view::npos)
        return false;
    const auto w = words_of(sql);
    // RESET ALL, DISCARD ALL, RESET name (SET name TO DEFAULT is left to the next transaction).
    const bool all = w.size() == 2 && (w[0] == "reset" || w[0] == "discard") && w[1] == "all";
    if (!all && !(w.size() == 2 && w[0] == "reset")) return false;
    auto settings = startup_settings();
    if (!all) {
        std::erase_if(settings, [&w](const auto& e) { return ascii_lower(e.first) != w[1]; });
        if (settings.size() > 1) settings.erase(settings.begin(), settings.end() - 1);
    }
    if (settings.empty()) return false;
    tail = set_config_sql(settings);
    return true;
}

const std::string& client_session::current_session_key() {
    if (!session_key_valid_) {
        session_key_cache_ = session_key();
        session_key_valid_ = true;
    }
    return session_key_cache_;
}

client_session::txn_step client_session::txn_client_messages() {
    const pr::frame_decoder dec(cfg_->max_message_size);
    // A server connection for the first complete message (the bytes wait in client_in_).
    while (!conn_) {
        const auto first = dec.feed(client_in_.pending());
        if (first.status != pr::frame_status::ok || first.msg.type == 'X') break;
        // A plain BEGIN may be answered and held: then the next message chooses the server.
        if (split_ && split_route_start()) continue;
        return txn_step::need_server;
    }
    if (conn_ && split_ && !split_->held.empty()) {
        // What shardgate answered and held goes first, on the server the statement chose.
        tracker_.on_client('Q');
        mux_.hidden_query(split_->held, to_server_);
        split_->held.clear();
    }
    // Whole messages only: statements are renamed and replies re-sequenced per message.
    pr::frame_error err = pr::frame_error::none;
    for (;;) {
        const auto f = dec.feed(client_in_.pending());
        if (f.status == pr::frame_status::error) {
            err = f.error;
            break;
        }
        if (f.status != pr::frame_status::ok) break;
        const char t = f.msg.type;
        tracker_.on_client(t);
        if (split_) split_statement(t, f.msg.body);
        if (t == 'X') {
            client_in_.clear();  // Postgres reads nothing after Terminate
            break;
        }
        auto effect = effect_of(t, f.msg.body, false);
        // SET / RESET outside a transaction is remembered and replayed on the next
        // connections instead of pinning (committed when its ReadyForQuery shows success).
        // Drivers also send them through the extended protocol on the unnamed statement
        // (pgjdbc: Parse "SET extra_float_digits = 3", Bind, Execute, Sync): those count once
        // executed.
        if (effect == rt::session_effect::set && conn_ && tracker_.txn_status() == 'I' &&
            pending_settings_.empty()) {
            std::optional<std::vector<std::pair<rt::tracked_setting, std::string>>> sets;
            if (t == 'Q') {
                sets = trackable_settings(cstring(f.msg.body).first);
            } else if (t == 'P') {
                auto [name, rest] = cstring(f.msg.body);
                if (name.empty()) sets = trackable_settings(cstring(rest).first);
            }
            if (sets) {
                pending_settings_ = std::move(*sets);
                pending_settings_failed_ = false;
                pending_settings_unexecuted_ = t == 'P';
                effect = rt::session_effect::none;
            }
        }
        // DISCARD ALL by a client that is not pinned: its settings and statements go, and it
        // stays unpinned (drivers and application pools send it as a reset).
        const bool discard_all = effect == rt::session_effect::discard && t == 'Q' &&
                                 is_discard_all(cstring(f.msg.body).first);
        if (discard_all && conn_ && !pinned_ && tracker_.txn_status() == 'I' &&
            pending_settings_.empty()) {
            pending_settings_.emplace_back(
                rt::tracked_setting{rt::tracked_setting::kind::reset_all, {}}, "DISCARD ALL");
            pending_settings_failed_ = false;
            pending_settings_unexecuted_ = false;
            effect = rt::session_effect::none;
        }
        if (t == 'E') pending_settings_unexecuted_ = false;
        std::span<const std::byte> body = f.msg.body;
        // SQL DEALLOCATE of a protocol-level statement (drivers mix the two).
        std::optional<std::string> dealloc;
        if (conn_ && t == 'Q' && effect == rt::session_effect::prepare) {
            dealloc = deallocated_name(cstring(body).first);
            if (dealloc && mux_.has_statement(*dealloc))
                effect = rt::session_effect::none;
            else
                dealloc.reset();
        }
        if (split_ && split_->error && (t == 'Q' || t == 'P')) {
            // A shardgate.* setting with a value it cannot route by: the server says so.
            refused_ = setting_refusal(t, body, *split_->error);
            body = refused_;
            effect = rt::session_effect::none;
            split_->error.reset();
        }
        if (effect != rt::session_effect::none && !pinned_ && pool_->cfg.refuse_pinning &&
            (t == 'Q' || t == 'P')) {
            // transaction_pinning = "refuse": the server raises the error itself, so a
            // transaction block fails exactly as Postgres would make it fail.
            refused_ = refusal(t, body, effect);
            body = refused_;
            effect = rt::session_effect::none;
        }
        if (effect != rt::session_effect::none && !pinned_) {
            pinned_ = true;
            spdlog::debug("client {}@{} pinned to its server connection ({})", user_name_,
                          database_name_, rt::to_string(effect));
        }
        std::string tail;
        if (dealloc) {
            // One of its protocol statements: nothing pins, shardgate's name is dropped.
            const auto how =
                mux_.deallocate(*dealloc, tracker_.txn_status(), to_server_, client_out_);
            if (how == statement_mux::dealloc::answered) {
                tracker_.on_ready(tracker_.txn_status());
            } else if (how == statement_mux::dealloc::forward) {
                mux_.client_message(t, body, to_server_, client_out_);
            }
        } else if (conn_ && t == 'Q' && body.data() == f.msg.body.data() &&
                   (effect == rt::session_effect::set || effect == rt::session_effect::discard ||
                    !pending_settings_.empty()) &&
                   reset_tail(cstring(body).first, tail)) {
            mux_.client_query_with_tail(body, tail, to_server_, client_out_);
        } else if (conn_) {
            mux_.client_message(t, body, to_server_, client_out_);
        }
        if ((discard_all || effect == rt::session_effect::discard ||
             effect == rt::session_effect::prepare) &&
            t == 'Q' && mentions_all(f.msg.body)) {
            mux_.forget_all();
            if (split_) split_->prepared.clear();
        }
        client_in_.consume(f.consumed);
    }
    if (err != pr::frame_error::none) {
        end_ = link_end::client_protocol_error;
        client_error_ = err;
        return txn_step::failed;
    }
    client_at_boundary_ = client_in_.empty();
    return txn_step::done;
}

bool client_session::txn_server_bytes(std::span<const std::byte> chunk) {
    const pr::frame_decoder dec(pr::postgres_max_message_length);
    server_in_.append(chunk);
    for (;;) {
        const auto f = dec.feed(server_in_.pending());
        if (f.status == pr::frame_status::error) {
            end_ = link_end::server_protocol_error;
            return false;
        }
        if (f.status != pr::frame_status::ok) break;
        if (f.msg.type == 'Z') {
            tracker_.on_ready(f.msg.body.empty() ? 'I' : static_cast<char>(f.msg.body[0]));
            if (split_) {
                split_ready(tracker_.txn_status());
                if (split_->report_lsn) {
                    // Another connection may wait for it: SET shardgate.min_lsn = '...'.
                    split_->report_lsn = false;
                    pr::be::encode(
                        client_out_,
                        pr::be::parameter_status{"shardgate.last_commit_lsn",
                                                 pool::format_lsn(split_->state.last_write_lsn)});
                }
            }
            if (!pending_settings_.empty()) {
                if (!pending_settings_failed_ && !pending_settings_unexecuted_ &&
                    tracker_.txn_status() == 'I')
                    commit_settings();
                else
                    pending_settings_.clear();
                pending_settings_unexecuted_ = false;
            }
        } else if (f.msg.type == 'E') {
            pending_settings_failed_ = true;
            auto e = pr::be::decode_error_response(f.msg.body);
            if (e && (e->severity() == "FATAL" || e->severity() == "PANIC")) tracker_.on_fatal();
        }
        mux_.server_message(server_in_.pending().first(f.consumed), client_out_);
        server_in_.consume(f.consumed);
    }
    server_at_boundary_ = server_in_.empty();
    return true;
}

bool client_session::txn_server_settled() const {
    return tracker_.server_idle() && mux_.settled() && server_at_boundary_;
}

bool client_session::txn_may_detach() const {
    return txn_server_settled() && tracker_.txn_status() == 'I' && client_at_boundary_ &&
           !pinned_ && !tracker_.server_fatal() && !tracker_.terminated();
}

bool client_session::txn_finished() const {
    return tracker_.terminated() && (!conn_ || txn_server_settled());
}

awaitable<void> client_session::flush_client(error_code& ec) {
    // One writer at a time: whoever writes sends everything queued meanwhile, in order.
    if (client_writing_) co_return;
    client_writing_ = true;
    while (!client_out_.empty() && !ec) {
        std::swap(client_out_, client_sending_);
        co_await client_.async_write_all(client_sending_.view(), ec);
        client_sending_.clear();
    }
    client_writing_ = false;
}

awaitable<void> client_session::relay_transaction_mode() {
    if (!ctx_.planes.empty() && !client_.is_tls() && !server_tls_) {
        relay_kind_ = relay_kind::plane;
        co_return co_await relay_transaction_mode_in_plane();
    }
    relay_kind_ = relay_kind::asio_transaction;
    auto self = shared_from_this();
    auto ex = client_.socket().get_executor();
    // The greeting's connection (if it took one) goes back to the pool at once.
    if (conn_) detach_server();
    error_code ec;
    for (;;) {
        auto chunk = co_await client_.async_read_chunk(ec);
        if (ec || pumps_stopping_) {
            if (!pumps_stopping_) end_ = link_end::client_closed;
            break;
        }
        if (tracker_.terminated()) continue;  // only watched for its close now
        client_in_.append(chunk);
        auto step = txn_client_messages();
        if (step == txn_step::need_server) {
            const bool attached = co_await attach_server();
            if (!attached) {
                if (fatal_sent_) break;
                continue;
            }
            server_pump_running_ = true;
            asio::co_spawn(ex, pump_server_txn(self, attach_generation_),
                           [self](const std::exception_ptr&) {
                               self->server_pump_running_ = false;
                               self->server_pump_done_.cancel();
                           });
            step = txn_client_messages();
        }
        if (step == txn_step::failed) break;
        if (!client_out_.empty()) {
            co_await flush_client(ec);
            if (ec) {
                end_ = link_end::client_write_failed;
                break;
            }
        }
        if (!to_server_.empty()) {
            co_await server().async_write_all(to_server_.view(), ec);
            to_server_.clear();
            if (ec) {
                if (!pumps_stopping_) end_ = link_end::server_write_failed;
                break;
            }
        }
        if (txn_finished()) {
            end_ = link_end::client_closed;
            break;
        }
    }
    // Stop the server pump, then settle the connection (if one is attached).
    pumps_stopping_ = true;
    if (server_pump_running_) {
        error_code ignored;
        if (conn_) server().socket().cancel(ignored);
        server_pump_done_.expires_at(asio::steady_timer::time_point::max());
        co_await server_pump_done_.async_wait(ec_token(ec));
    }
    co_await finish_transaction_mode();
}

awaitable<void> client_session::finish_transaction_mode() {
    if (!conn_) {
        if (end_ == link_end::client_protocol_error && client_error_ != pr::frame_error::none)
            co_await reject_client_stream(client_error_);
        if (end_ == link_end::admin_shutdown) co_await send_admin_shutdown();
        client_.close();
        co_return;
    }
    if (!mux_.settled()) tracker_.mark_dirty();  // replies still owed: not reusable
    co_await finish_relay();
}

awaitable<void> client_session::pump_server_txn(std::shared_ptr<client_session> self,
                                                std::uint64_t generation) {
    error_code ec;
    while (!pumps_stopping_ && conn_ && attach_generation_ == generation) {
        const auto chunk = co_await server().async_read_chunk(ec);
        if (ec || pumps_stopping_) {
            if (!pumps_stopping_) {
                end_ = link_end::server_closed;
                self->stop_client_pump();
            }
            co_return;
        }
        if (!txn_server_bytes(chunk)) {
            self->stop_client_pump();
            co_return;
        }
        co_await flush_client(ec);
        if (ec) {
            if (!pumps_stopping_) {
                end_ = link_end::client_write_failed;
                self->stop_client_pump();
            }
            co_return;
        }
        if (txn_finished()) {
            end_ = link_end::client_closed;
            self->stop_client_pump();
            co_return;
        }
        // The end of a transaction: the connection goes back to the pool.
        if (txn_may_detach()) {
            detach_server();
            if (ctx_.closing_idle.load(std::memory_order_relaxed)) {
                end_ = link_end::admin_shutdown;
                self->stop_client_pump();
            }
            co_return;
        }
    }
}

void client_session::stop_client_pump() {
    pumps_stopping_ = true;
    error_code ignored;
    client_.socket().cancel(ignored);
}

}  // namespace shardgate::proxy
