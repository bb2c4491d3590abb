// A small blocking Postgres wire client over a loopback TCP socket, keeping every backend
// message raw (type + body bytes) so two servers' replies can be compared byte for byte.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "shardgate/protocol/write_buffer.hpp"

namespace shardgate::difftest {

// One backend message as received: the type byte and the body without the length field.
struct backend_message {
    char type = 0;
    std::string body;
    bool operator==(const backend_message&) const = default;
};
using message_stream = std::vector<backend_message>;

// The connection failed, timed out, or broke the protocol.
class wire_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct login_params {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string user;
    std::string password;
    std::string database;
    // Sent in the StartupMessage after user and database, in this order.
    std::vector<std::pair<std::string, std::string>> params;
    // Bound on every blocking operation (connect, each read_* call, each send).
    std::chrono::milliseconds timeout{10000};
};

// What read_until() stops at.
struct read_goal {
    int ready = 1;             // this many ReadyForQuery messages
    std::size_t messages = 0;  // with ready == 0 and until_close false: exactly this many
    bool until_close = false;  // read until the server closes the connection
};

// Blocking client: connect + StartupMessage + authentication (SCRAM-SHA-256, md5, cleartext,
// trust) in the constructor (a refused login is not an exception: see login_refused()), then raw
// frontend bytes out and raw backend messages in. Async messages (NoticeResponse,
// NotificationResponse, ParameterStatus) are simply part of the stream, in the order the server
// sent them.
class raw_client {
  public:
    explicit raw_client(const login_params& params);
    ~raw_client();  // Terminate (best effort) and close
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;

    // Everything the server sent during the login: up to and including ReadyForQuery, or, when
    // the server refused the login, up to its ErrorResponse and the close that follows.
    [[nodiscard]] const message_stream& login_messages() const { return login_; }
    [[nodiscard]] bool login_refused() const { return refused_; }
    // The BackendKeyData of the login (0, 0 if none was sent).
    [[nodiscard]] std::pair<std::int32_t, std::int32_t> backend_key() const { return key_; }

    // Sends a CancelRequest for this session's key on a new connection to the same server.
    void send_cancel() const;

    // Writes all of `out`. Reads whatever the server sends meanwhile into the input buffer, so
    // a large pipelined batch cannot deadlock against a server that is writing results.
    void send(const protocol::write_buffer& out);
    // Same bytes, written `piece` bytes at a time with a pause after each write, so the other
    // end sees messages split at many points.
    void send_in_pieces(const protocol::write_buffer& out, std::size_t piece,
                        std::chrono::microseconds pause);

    // Reads messages until `goal` is met. Each CopyInResponse is answered with the next buffer
    // from `copy_in` (CopyData.../CopyDone or CopyFail, maybe followed by Sync). On a timeout or
    // an unexpected close, throws wire_error; the messages read so far are in partial().
    message_stream read_until(const read_goal& goal,
                              std::deque<protocol::write_buffer>* copy_in = nullptr);
    message_stream read_until_ready(std::deque<protocol::write_buffer>* copy_in = nullptr) {
        return read_until(read_goal{}, copy_in);
    }
    // The messages the last failed read_until() had collected before it threw.
    [[nodiscard]] const message_stream& partial() const { return partial_; }

    // True once the server closed its side.
    [[nodiscard]] bool closed() const { return fd_ < 0 || eof_; }

  private:
    void connect_socket(const login_params& p);
    void send_bytes(const std::byte* data, std::size_t size);
    void login(const login_params& p);
    // Next whole message; false when the server closed the connection at a message boundary.
    bool next_message(backend_message& m, std::chrono::steady_clock::time_point deadline);
    // One poll + read; false on EOF.
    bool fill(std::chrono::steady_clock::time_point deadline);
    std::chrono::steady_clock::time_point deadline() const;

    std::string host_;
    int port_ = 0;
    int fd_ = -1;
    bool eof_ = false;
    bool refused_ = false;
    std::pair<std::int32_t, std::int32_t> key_{0, 0};
    std::chrono::milliseconds timeout_{10000};
    std::vector<std::byte> in_;  // received, not yet decoded bytes start at in_pos_
    std::size_t in_pos_ = 0;
    message_stream login_;
    message_stream partial_;
};

}  // namespace shardgate::difftest
