// One client Query run on several server connections at once and answered as one (the first
// form of the fan-out that sharding needs): the client sees one RowDescription (the servers'
// must agree), every server's rows as they arrive, one CommandComplete with the summed count
// and one ReadyForQuery. An error on any server ends the statement with that server's
// ErrorResponse (its SQLSTATE and fields, the backend named in its detail) and asks the driver
// to cancel the others; every connection then goes back with the disposition its own stream
// earned.
//
// No I/O, no clock: the driver feeds each backend's bytes and carries out the actions
// (tests/unit/proxy/fanout_test.cpp, tests/integration/fanout_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/byte_queue.hpp"
#include "core/txn_core.hpp"
#include "shardgate/protocol/write_buffer.hpp"

namespace shardgate::proxy {

struct fanout_action {
    enum class kind : std::uint8_t {
        read,    // send what is queued (client_out(), to_backend(k)) and read on
        cancel,  // send a cancel request for `backend` (the statement failed elsewhere)
        done,    // every backend answered: give each back as disposition(k)
    };
    kind what = kind::read;
    std::size_t backend = 0;
};

class fanout {
  public:
    explicit fanout(std::size_t backends);

    // The client's Query (its body): sent to every backend.
    void start(std::span<const std::byte> query_body);
    // Bytes from backend k, or its connection closing (or failing to write).
    fanout_action on_bytes(std::size_t k, std::span<const std::byte> bytes);
    fanout_action on_closed(std::size_t k);
    // The cancels still due after an action (one action carries one backend).
    std::optional<std::size_t> next_cancel();

    protocol::write_buffer& to_backend(std::size_t k) { return backends_[k].out; }
    protocol::write_buffer& client_out() { return client_out_; }
    [[nodiscard]] std::size_t size() const { return backends_.size(); }
    [[nodiscard]] bool done() const;
    // Backend k has nothing more to send for this statement (answered, or gone).
    [[nodiscard]] bool finished(std::size_t k) const {
        return backends_[k].ready || backends_[k].closed;
    }
    [[nodiscard]] backend_disposition disposition(std::size_t k) const;
    // The combined transaction status of the final ReadyForQuery.
    [[nodiscard]] char txn_status() const { return status_; }

  private:
    struct backend {
        protocol::write_buffer out;
        byte_queue in;
        bool ready = false;   // its ReadyForQuery came
        bool closed = false;  // its connection broke or sent a malformed stream
        bool cancel_due = false;
        char status = 'I';
        std::uint64_t count = 0;  // rows its CommandComplete reported
    };
    void message(std::size_t k, char type, std::span<const std::byte> whole,
                 std::span<const std::byte> body);
    void fail(std::size_t k, std::span<const std::byte> error_body);
    void refuse_copy(std::size_t k);
    void lost(std::size_t k);
    fanout_action next();
    void finish();

    std::vector<backend> backends_;
    protocol::write_buffer client_out_;
    std::vector<std::byte> row_description_;  // the first one, whole
    std::string tag_verb_;                    // "SELECT", "INSERT 0", "UPDATE"...
    bool tag_seen_ = false;
    bool failed_ = false;    // an error went to the client: the rest is dropped
    bool finished_ = false;  // the final ReadyForQuery went out
    char status_ = 'I';
};

}  // namespace shardgate::proxy
