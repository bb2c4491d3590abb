// One Query on several server connections, answered as one (fanout.hpp).
#include "core/fanout.hpp"

#include <algorithm>
#include <charconv>

#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/errors.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/frontend.hpp"

namespace shardgate::proxy {
namespace pr = shardgate::protocol;

namespace {

// "SELECT 5" -> {"SELECT", 5}; "INSERT 0 5" -> {"INSERT 0", 5}; "BEGIN" -> {"BEGIN", nullopt}.
std::pair<std::string, std::optional<std::uint64_t>> split_tag(std::string_view tag) {
    const auto space = tag.rfind(' ');
    if (space == std::string_view::npos) return {std::string(tag), std::nullopt};
    const auto digits = tag.substr(space + 1);
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc{} || end != digits.data() + digits.size())
        return {std::string(tag), std::nullopt};
    return {std::string(tag.substr(0, space)), n};
}

}  // namespace

fanout::fanout(std::size_t backends) : backends_(backends) {}

void fanout::start(std::span<const std::byte> query_body) {
    for (auto& b : backends_) {
        const auto mark = b.out.begin_message('Q');
        b.out.bytes(query_body);
        b.out.end_message(mark);
    }
}

fanout_action fanout::on_bytes(std::size_t k, std::span<const std::byte> bytes) {
    auto& b = backends_[k];
    if (b.closed || b.ready) return next();  // nothing more is expected from it
    (void)b.in.append(bytes);
    const pr::frame_decoder dec(pr::postgres_max_message_length);
    for (;;) {
        const auto f = dec.feed(b.in.pending());
        if (f.status == pr::frame_status::error) {
            lost(k);
            break;
        }
        if (f.status != pr::frame_status::ok) break;
        message(k, f.msg.type, b.in.pending().first(f.consumed), f.msg.body);
        b.in.consume(f.consumed);
        if (b.ready || b.closed) break;
    }
    if (std::all_of(backends_.begin(), backends_.end(),
                    [](const backend& x) { return x.ready || x.closed; }))
        finish();
    return next();
}

fanout_action fanout::on_closed(std::size_t k) {
    if (!backends_[k].closed && !backends_[k].ready) lost(k);
    backends_[k].closed = true;
    if (std::all_of(backends_.begin(), backends_.end(),
                    [](const backend& x) { return x.ready || x.closed; }))
        finish();
    return next();
}

void fanout::message(std::size_t k, char type, std::span<const std::byte> whole,
                     std::span<const std::byte> body) {
    auto& b = backends_[k];
    switch (type) {
        case 'T':
            // One RowDescription for the client; every backend's must be the same.
            if (row_description_.empty()) {
                row_description_.assign(whole.begin(), whole.end());
                if (!failed_) client_out_.bytes(whole);
            } else if (!std::equal(whole.begin(), whole.end(), row_description_.begin(),
                                   row_description_.end())) {
                pr::write_buffer e;
                pr::encode_error(e, {pr::severity::error, "XX000",
                                     "the servers of a fan-out returned different columns"});
                fail(k, e.view().subspan(5));
            }
            break;
        case 'C': {
            const auto cc = pr::be::decode_command_complete(body);
            if (!cc) {
                lost(k);  // a malformed CommandComplete: the stream cannot be trusted
                break;
            }
            auto [verb, n] = split_tag(cc->tag);
            if (!tag_seen_) tag_verb_ = std::move(verb);
            tag_seen_ = true;
            b.count += n.value_or(0);
            if (!n) b.count = ~std::uint64_t{0};  // a tag without a count (BEGIN, SET)
            break;
        }
        case 'E':
            fail(k, body);
            break;
        case 'G':
            // COPY FROM STDIN has no place in a fan-out: the server is told so (and answers
            // with an error and ReadyForQuery), and the client gets the error.
            pr::fe::encode(b.out, pr::fe::copy_fail{"COPY is not supported in a fan-out"});
            refuse_copy(k);
            break;
        case 'Z':
            b.ready = true;
            b.status = body.empty() ? 'I' : static_cast<char>(body[0]);
            break;
        case 'S':  // ParameterStatus: the first backend speaks for all
        case 'I':  // EmptyQueryResponse: once
            if (k == 0 && !failed_) client_out_.bytes(whole);
            break;
        case 'd':  // COPY TO STDOUT data and end: not relayed (see 'H')
        case 'c':
            break;
        case 'H':  // COPY TO STDOUT: its rows are dropped (above), the statement fails
            refuse_copy(k);
            break;
        default:  // DataRow, notices, notifications: as they arrive
            if (!failed_) client_out_.bytes(whole);
            break;
    }
}

void fanout::refuse_copy(std::size_t k) {
    pr::write_buffer e;
    pr::encode_error(e, {pr::severity::error, "0A000",
                         "COPY is not supported in a statement run on several servers"});
    fail(k, e.view().subspan(5));
}

void fanout::fail(std::size_t k, std::span<const std::byte> error_body) {
    if (failed_) return;  // the client hears of the first error only
    failed_ = true;
    // The backend's own error, with the backend named in its detail.
    auto e = pr::be::decode_error_response(error_body);
    pr::be::error_response out;
    if (e) out = *e;
    const std::string where = "on server " + std::to_string(k) + " of the fan-out";
    bool had_detail = false;
    for (auto& [code, value] : out.fields) {
        // One server's FATAL ends that connection, not the client's session.
        if ((code == 'S' || code == 'V') && (value == "FATAL" || value == "PANIC")) value = "ERROR";
        if (code == 'D') {
            value += " (" + where + ")";
            had_detail = true;
        }
    }
    if (!had_detail) out.fields.emplace_back('D', "The error was raised " + where + ".");
    pr::be::encode(client_out_, out);
    for (std::size_t j = 0; j < backends_.size(); ++j) {
        auto& other = backends_[j];
        if (j != k && !other.ready && !other.closed) other.cancel_due = true;
    }
}

void fanout::lost(std::size_t k) {
    backends_[k].closed = true;
    pr::write_buffer e;
    pr::encode_error(
        e, {pr::severity::error, "08006", "the server connection was lost during the statement"});
    fail(k, e.view().subspan(5));
}

std::optional<std::size_t> fanout::next_cancel() {
    for (std::size_t k = 0; k < backends_.size(); ++k) {
        auto& b = backends_[k];
        if (b.cancel_due && !b.ready && !b.closed) {
            b.cancel_due = false;
            return k;
        }
        b.cancel_due = false;
    }
    return std::nullopt;
}

fanout_action fanout::next() {
    if (finished_) return {fanout_action::kind::done};
    if (auto k = next_cancel()) return {fanout_action::kind::cancel, *k};
    return {};
}

void fanout::finish() {
    if (finished_) return;
    finished_ = true;
    bool any_t = false;
    bool any_e = false;
    bool any_closed = false;
    std::uint64_t total = 0;
    bool counted = true;
    for (const auto& b : backends_) {
        any_closed = any_closed || b.closed;
        any_t = any_t || (b.ready && b.status == 'T');
        any_e = any_e || (b.ready && b.status == 'E');
        if (b.count == ~std::uint64_t{0}) counted = false;
        total += b.count;
    }
    if (!failed_ && tag_seen_) {
        const std::string tag = counted ? tag_verb_ + " " + std::to_string(total) : tag_verb_;
        pr::be::encode(client_out_, pr::be::command_complete{tag});
    }
    // A transaction block failed on one server has failed for the client.
    status_ = any_e || ((any_closed || failed_) && any_t) ? 'E' : any_t ? 'T' : 'I';
    pr::be::encode(client_out_, pr::be::ready_for_query{status_});
}

bool fanout::done() const {
    return finished_;
}

backend_disposition fanout::disposition(std::size_t k) const {
    const auto& b = backends_[k];
    if (b.closed || !b.ready || !b.in.empty()) return backend_disposition::poisoned;
    if (b.status != 'I') return backend_disposition::dirty;
    return backend_disposition::clean;
}

}  // namespace shardgate::proxy
