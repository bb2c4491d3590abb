// Blocking Postgres wire client for the differential test: POSIX socket, poll() timeouts, login.
// Message flow: https://www.postgresql.org/docs/15/protocol-flow.html
#include "raw_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frame.hpp"
#include "shardgate/protocol/frontend.hpp"
#include "shardgate/protocol/md5.hpp"
#include "shardgate/protocol/scram.hpp"

namespace shardgate::difftest {
namespace pr = shardgate::protocol;
using clock = std::chrono::steady_clock;

namespace {

std::string sys_error(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

int remaining_ms(clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

}  // namespace

raw_client::raw_client(const login_params& params)
    : host_(params.host), port_(params.port), timeout_(params.timeout) {
    connect_socket(params);
    try {
        login(params);
    } catch (...) {
        ::close(fd_);
        fd_ = -1;
        throw;
    }
}

raw_client::~raw_client() {
    if (fd_ < 0) return;
    if (!eof_) {
        pr::write_buffer out;
        pr::fe::encode(out, pr::fe::terminate{});
        // Best effort: the socket is non-blocking and the message is 5 bytes.
        [[maybe_unused]] const auto n = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
    }
    ::close(fd_);
}

clock::time_point raw_client::deadline() const {
    return clock::now() + timeout_;
}

void raw_client::connect_socket(const login_params& p) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw wire_error(sys_error("socket"));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(p.port));
    if (::inet_pton(AF_INET, p.host.c_str(), &addr.sin_addr) != 1) {
        ::close(fd_);
        fd_ = -1;
        throw wire_error("not an IPv4 address: " + p.host);
    }
    int rc = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    if (rc != 0 && errno == EINPROGRESS) {
        pollfd pfd{fd_, POLLOUT, 0};
        rc = ::poll(&pfd, 1, remaining_ms(deadline()));
        int err = 0;
        socklen_t len = sizeof err;
        if (rc == 1 && ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
            rc = 0;
        } else {
            errno = rc == 0 ? ETIMEDOUT : err;
            rc = -1;
        }
    }
    if (rc != 0) {
        const std::string msg = sys_error("connect to " + p.host + ":" + std::to_string(p.port));
        ::close(fd_);
        fd_ = -1;
        throw wire_error(msg);
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void raw_client::login(const login_params& p) {
    pr::fe::startup_message startup;
    startup.params = {{"user", p.user}, {"database", p.database}};
    startup.params.insert(startup.params.end(), p.params.begin(), p.params.end());
    pr::write_buffer out;
    pr::fe::encode(out, startup);
    send(out);

    std::optional<pr::auth::scram_client> scram;
    const auto until = deadline();
    backend_message m;
    for (;;) {
        if (!next_message(m, until)) throw wire_error("server closed the connection during login");
        login_.push_back(m);
        const auto body =
            std::span(reinterpret_cast<const std::byte*>(m.body.data()), m.body.size());
        if (m.type == 'E') {  // refused: keep what follows until the server closes
            refused_ = true;
            while (next_message(m, until))
                login_.push_back(m);
            return;
        }
        if (m.type == 'Z') return;
        if (m.type == 'K') {
            auto key = pr::be::decode_backend_key_data(body);
            if (key) key_ = {key->process_id, key->secret_key};
        }
        if (m.type != 'R') continue;  // ParameterStatus, BackendKeyData, notices, ...

        auto auth = pr::be::decode_authentication(body);
        if (!auth) throw wire_error("malformed authentication request");
        out.clear();
        switch (auth->code) {
            case pr::be::authentication::ok:
                continue;
            case pr::be::authentication::cleartext_password:
                pr::fe::encode(out, pr::fe::password_message{p.password});
                break;
            case pr::be::authentication::md5_password:
                pr::fe::encode(
                    out, pr::fe::password_message{pr::auth::md5_client_response(
                             pr::auth::md5_hash_password(p.user, p.password), auth->md5_salt)});
                break;
            case pr::be::authentication::sasl: {
                const auto& mechs = auth->mechanisms;
                if (std::find(mechs.begin(), mechs.end(), "SCRAM-SHA-256") == mechs.end())
                    throw wire_error("server offers no SCRAM-SHA-256");
                scram.emplace(p.password);
                pr::fe::encode(out, pr::fe::sasl_initial_response{"SCRAM-SHA-256",
                                                                  scram->client_first_message()});
                break;
            }
            case pr::be::authentication::sasl_continue: {
                if (!scram) throw wire_error("SASLContinue before SASL");
                auto final_msg = scram->client_final_message(auth->data);
                if (!final_msg) throw wire_error("SCRAM: " + final_msg.error().message);
                pr::fe::encode(out, pr::fe::sasl_response{final_msg.value()});
                break;
            }
            case pr::be::authentication::sasl_final:
                if (!scram || !scram->verify_server_final(auth->data))
                    throw wire_error("SCRAM: the server's signature does not verify");
                continue;
            default:
                throw wire_error("unsupported authentication request " +
                                 std::to_string(auth->code));
        }
        send(out);
    }
}

void raw_client::send(const pr::write_buffer& out) {
    send_bytes(out.data(), out.size());
}

void raw_client::send_in_pieces(const pr::write_buffer& out, std::size_t piece,
                                std::chrono::microseconds pause) {
    for (std::size_t at = 0; at < out.size(); at += piece) {
        send_bytes(out.data() + at, std::min(piece, out.size() - at));
        std::this_thread::sleep_for(pause);
    }
}

void raw_client::send_cancel() const {
    // Blocking socket: a CancelRequest is 16 bytes on loopback.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw wire_error(sys_error("socket"));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port_));
    ::inet_pton(AF_INET, host_.c_str(), &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const std::string msg = sys_error("cancel connect");
        ::close(fd);
        throw wire_error(msg);
    }
    pr::write_buffer out;
    pr::fe::encode(out, pr::fe::cancel_request{key_.first, key_.second});
    const ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    // The server closes the connection without a reply once it has read the request; waiting
    // for that keeps the cancel from racing the test's next step.
    char byte = 0;
    if (n == static_cast<ssize_t>(out.size())) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, remaining_ms(deadline())) == 1) {
            [[maybe_unused]] const auto r = ::recv(fd, &byte, 1, 0);
        }
    }
    ::close(fd);
    if (n != static_cast<ssize_t>(out.size())) throw wire_error("could not send CancelRequest");
}

void raw_client::send_bytes(const std::byte* data, std::size_t size) {
    if (fd_ < 0) throw wire_error("send on a closed client");
    std::size_t done = 0;
    const auto until = deadline();
    while (done < size) {
        pollfd pfd{fd_, static_cast<short>(POLLOUT | (eof_ ? 0 : POLLIN)), 0};
        const int rc = ::poll(&pfd, 1, remaining_ms(until));
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) throw wire_error(sys_error("poll"));
        if (rc == 0) throw wire_error("timed out sending to the server");
        if ((pfd.revents & POLLIN) != 0) fill(until);  // keep the server's replies flowing
        if ((pfd.revents & (POLLOUT | POLLERR | POLLHUP)) == 0) continue;
        const ssize_t n = ::send(fd_, data + done, size - done, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) throw wire_error(sys_error("send"));
        done += static_cast<std::size_t>(n);
    }
}

bool raw_client::fill(clock::time_point until) {
    if (eof_) return false;
    if (in_pos_ > 0 && in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    } else if (in_pos_ > (1U << 20)) {  // compact now and then, not after every message
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(in_pos_));
        in_pos_ = 0;
    }
    for (;;) {
        pollfd pfd{fd_, POLLIN, 0};
        const int rc = ::poll(&pfd, 1, remaining_ms(until));
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) throw wire_error(sys_error("poll"));
        if (rc == 0) throw wire_error("timed out waiting for the server");
        const std::size_t at = in_.size();
        in_.resize(at + 64 * 1024);
        const ssize_t n = ::recv(fd_, in_.data() + at, 64 * 1024, 0);
        in_.resize(at + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        // A reset after the server's last message (e.g. following a FATAL) is a close too.
        if (n < 0 && errno != ECONNRESET) throw wire_error(sys_error("recv"));
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        return true;
    }
}

bool raw_client::next_message(backend_message& m, clock::time_point until) {
    const pr::frame_decoder decoder;
    for (;;) {
        const auto avail = std::span<const std::byte>(in_).subspan(in_pos_);
        const auto r = decoder.feed(avail);
        if (r.status == pr::frame_status::error) throw wire_error("malformed backend message");
        if (r.status == pr::frame_status::ok) {
            m.type = r.msg.type;
            m.body.assign(reinterpret_cast<const char*>(r.msg.body.data()), r.msg.body.size());
            in_pos_ += r.consumed;
            return true;
        }
        if (!fill(until)) {
            if (in_pos_ != in_.size()) throw wire_error("server closed the connection mid-message");
            return false;
        }
    }
}

message_stream raw_client::read_until(const read_goal& goal,
                                      std::deque<pr::write_buffer>* copy_in) {
    partial_.clear();
    message_stream got;
    const auto until = deadline();
    int ready = 0;
    backend_message m;
    auto done = [&] {
        if (goal.until_close) return false;
        if (goal.ready > 0) return ready >= goal.ready;
        return got.size() >= goal.messages;
    };
    try {
        while (!done()) {
            if (!next_message(m, until)) {
                if (goal.until_close) break;
                throw wire_error("server closed the connection");
            }
            got.push_back(m);
            if (m.type == 'Z') ++ready;
            if (m.type == 'G') {  // CopyInResponse: the test supplies the data
                if (copy_in == nullptr || copy_in->empty())
                    throw wire_error("CopyInResponse but the case has no COPY data");
                const pr::write_buffer data = std::move(copy_in->front());
                copy_in->pop_front();
                send(data);
            }
            if (m.type == 'W') throw wire_error("CopyBothResponse is not supported");
        }
    } catch (const wire_error&) {
        partial_ = std::move(got);
        throw;
    }
    return got;
}

}  // namespace shardgate::difftest
