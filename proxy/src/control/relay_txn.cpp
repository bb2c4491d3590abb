// Query loop of a transaction-pooled client (pool_mode = transaction), on the Asio workers.
// The client holds a server connection from the first message of a transaction until the
// ReadyForQuery that shows it idle ('I') with nothing owed; then the connection goes back to
// the pool. Messages are handled whole: named prepared statements are renamed and prepared on
// demand (statement_mux.hpp). A client that leaves other state in its server session (SET,
// SQL PREPARE, LISTEN, temporary tables, WITH HOLD cursors, session advisory locks: see
// router/session_effects.hpp) is pinned to its connection until it disconnects.
#include <spdlog/spdlog.h>

#include "control/session.hpp"
#include "core/text.hpp"
#include "core/txn_statements.hpp"
#include "shardgate/pool/replica_health.hpp"
#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frontend.hpp"
#include "shardgate/protocol/scanner.hpp"
#include "shardgate/protocol/sqlstate.hpp"
#include "shardgate/router/session_effects.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;
namespace rt = shardgate::router;
bool client_session::reset_tail(std::string_view sql, std::string& tail) const {
    if (startup_params_.empty()) return false;
    const auto statements = setting_statements(sql);
    if (!statements) return false;
    // Which startup parameters the Query leaves at the server's default: the ones whose last
    // word in it is RESET name, SET name TO DEFAULT, SET TIME ZONE LOCAL, RESET ALL or
    // DISCARD ALL (a later SET of the same name in the Query keeps its own value).
    auto settings = startup_settings();
    std::vector<bool> restore(settings.size(), false);
    for (const auto& t : *statements) {
        for (std::size_t i = 0; i < settings.size(); ++i) {
            const bool same = t.what == router::tracked_setting::kind::reset_all ||
                              ascii_lower(settings[i].first) == t.name;
            if (same) restore[i] = t.what != router::tracked_setting::kind::set;
        }
    }
    std::vector<std::pair<std::string, std::string>> put_back;
    for (std::size_t i = 0; i < settings.size(); ++i) {
        // A name given twice (options after a plain parameter): its last value counts.
        if (!restore[i]) continue;
        std::erase_if(put_back, [&](const auto& e) {
            return ascii_lower(e.first) == ascii_lower(settings[i].first);
        });
        put_back.push_back(std::move(settings[i]));
    }
    if (put_back.empty()) return false;
    tail = set_config_sql(put_back);
    return true;
}

const std::string& client_session::current_session_key() {
    if (!session_key_valid_) {
        session_key_cache_ = session_key();
        session_key_valid_ = true;
    }
    return session_key_cache_;
}

rt::session_effect client_session::txn_track_settings(char t, std::span<const std::byte> body,
                                                      bool& discard_all) {
    auto effect = effect_of(t, body, false);
    // SET / RESET outside a transaction is remembered and replayed on the next
    // connections instead of pinning (committed when its ReadyForQuery shows success).
    // Drivers also send them through the extended protocol on the unnamed statement
    // (pgjdbc: Parse "SET extra_float_digits = 3", Bind, Execute, Sync): those count once
    // executed.
    if (effect == rt::session_effect::set && conn_ && tracker_.txn_status() == 'I' &&
        pending_settings_.empty()) {
        std::optional<std::vector<std::pair<rt::tracked_setting, std::string>>> sets;
        if (t == 'Q') {
            sets = trackable_settings(cstring(body).first);
        } else if (t == 'P') {
            auto [name, rest] = cstring(body);
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
    discard_all =
        effect == rt::session_effect::discard && t == 'Q' && is_discard_all(cstring(body).first);
    if (discard_all && conn_ && !pinned_ && tracker_.txn_status() == 'I' &&
        pending_settings_.empty()) {
        pending_settings_.emplace_back(
            rt::tracked_setting{rt::tracked_setting::kind::reset_all, {}}, "DISCARD ALL");
        pending_settings_failed_ = false;
        pending_settings_unexecuted_ = false;
        effect = rt::session_effect::none;
    }
    return effect;
}

void client_session::txn_forward(char t, std::span<const std::byte> body,
                                 std::span<const std::byte> original, rt::session_effect effect,
                                 const std::optional<std::string>& dealloc) {
    // What goes to the server (and what shardgate answers itself) for one client message:
    // SQL DEALLOCATE of a protocol statement, a Query or Sync followed by shardgate's own
    // tail (startup parameters put back after a RESET, the commit LSN of a write), or the
    // message as the mux rewrites it.
    std::string tail;
    const bool lsn_tail = conn_ && split_ && wants_lsn_tail(t, body);
    if (dealloc) {
        // One of its protocol statements: nothing pins, shardgate's name is dropped.
        const auto how = mux_.deallocate(*dealloc, tracker_.txn_status(), to_server_, client_out_);
        if (how == statement_mux::dealloc::answered) {
            tracker_.on_ready(tracker_.txn_status());
        } else if (how == statement_mux::dealloc::forward) {
            mux_.client_message(t, body, to_server_, client_out_);
        }
    } else if (conn_ && t == 'Q' &&
               ((body.data() == original.data() &&
                 (effect == rt::session_effect::set || effect == rt::session_effect::discard ||
                  !pending_settings_.empty()) &&
                 !mentions_stdin(cstring(body).first) && reset_tail(cstring(body).first, tail)) ||
                lsn_tail)) {
        // The primary's insert LSN comes first in the tail's row (read in txn_server_bytes).
        if (lsn_tail) {
            tail = std::string(lsn_tail_sql) +
                   (tail.empty() ? std::string() : ", " + tail.substr(sizeof("SELECT")));
            split_sent_lsn_tail();
        }
        mux_.client_query_with_tail(body, tail, conn_->params, to_server_, client_out_, lsn_tail);
    } else if (conn_ && t == 'S' && lsn_tail) {
        split_sent_lsn_tail();
        mux_.client_sync_with_tail(body, lsn_tail_sql, to_server_, client_out_);
    } else if (conn_) {
        mux_.client_message(t, body, to_server_, client_out_);
    }
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
        if (split_) {
            split_statement(t, f.msg.body);
            split_count_write(t, f.msg.body);
        }
        if (t == 'X') {
            client_in_.clear();  // Postgres reads nothing after Terminate
            break;
        }
        bool discard_all = false;
        auto effect = txn_track_settings(t, f.msg.body, discard_all);
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
        if (split_ && split_->held_overflow && t == 'Q') {
            refused_ = held_limit_refusal(body);
            body = refused_;
            effect = rt::session_effect::none;
            split_->held_overflow = false;
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
        txn_forward(t, body, f.msg.body, effect, dealloc);
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
    (void)server_in_.append(chunk);  // no budget: the server's messages are bounded by the
                                     // frame decoder, and reading stops while the client is slow
    for (;;) {
        const auto f = dec.feed(server_in_.pending());
        if (f.status == pr::frame_status::error) {
            end_ = link_end::server_protocol_error;
            return false;
        }
        if (f.status != pr::frame_status::ok) break;
        if (f.msg.type == 'Z') {
            const bool tail = mux_.at_lsn_tail();
            const std::string tail_value = mux_.at_tail() ? mux_.take_tail_value() : std::string();
            tracker_.on_ready(f.msg.body.empty() ? 'I' : static_cast<char>(f.msg.body[0]));
            if (split_) {
                if (tail && split_->lsn_tails_answered < split_->lsn_tails_sent)
                    split_tail_lsn(tail_value);  // before the client hears of the commit
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
        } else if (f.msg.type == 'S') {
            // The connection's reported settings stay current: a SET's final value is read
            // from them (commit_settings), and session mode compares them.
            if (auto ps = pr::be::decode_parameter_status(f.msg.body))
                conn_->set_param(ps->name, ps->value);
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
    if (client_writing_) {
        // The other one is waiting for a slow client: past the limit, so does this one, as
        // the data plane stops reading the server (a client that pipelines and does not read
        // would otherwise make client_out_ grow without end).
        while (client_writing_ && client_out_.size() >= client_out_limit) {
            client_drained_.expires_at(asio::steady_timer::time_point::max());
            error_code ignored;
            co_await client_drained_.async_wait(ec_token(ignored));
        }
        co_return;
    }
    client_writing_ = true;
    while (!client_out_.empty() && !ec) {
        std::swap(client_out_, client_sending_);
        co_await client_.async_write_all(client_sending_.view(), ec);
        client_sending_.clear();
    }
    client_writing_ = false;
    client_drained_.cancel();
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
        // A client that pipelines and does not read: what it is owed stays bounded. Its replies
        // wait in the server (flush_client stops the server pump); what shardgate owes itself
        // (a Close of a prepared statement, say) waits in the mux queue, so stop reading it.
        if (mux_.owed() >= max_owed_replies && !pumps_stopping_ && server_pump_running_ && conn_) {
            // The server may hold extended-protocol replies back until a Sync or Flush the
            // client has not sent yet: ask for them, or nothing would ever drain.
            pr::fe::encode(to_server_, pr::fe::flush{});
            co_await server().async_write_all(to_server_.view(), ec);
            to_server_.clear();
            ec = {};
        }
        while (mux_.owed() >= max_owed_replies && !pumps_stopping_ && server_pump_running_) {
            client_drained_.expires_at(asio::steady_timer::time_point::max());
            co_await client_drained_.async_wait(ec_token(ec));
            ec = {};
        }
        auto chunk = co_await client_.async_read_chunk(ec);
        if (ec || pumps_stopping_) {
            if (!pumps_stopping_) end_ = link_end::client_closed;
            break;
        }
        if (tracker_.terminated()) continue;  // only watched for its close now
        if (!client_in_.append(chunk)) {
            refuse_client_memory();
            break;
        }
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
                               self->client_drained_.cancel();
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
