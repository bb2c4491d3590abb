// Scale: 10,000 idle clients over 20 server connections (pool_mode = "transaction") through a
// real shardgate and Postgres. Checks shardgate's own open-file limit, measures its memory per
// idle client (VmRSS), that queries are still served with all of them connected, that the
// backend sees at most pool_size connections, and that everything is released when they leave.
// The clients are raw non-blocking sockets on one epoll set: 10,000 PGconn would be slow.
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int clients_wanted = 10000;
constexpr int pool_size = 20;
constexpr int max_client_conn = 10100;
// Logins in flight at once: far below the listen backlog (somaxconn, tcp_max_syn_backlog).
constexpr int max_in_flight = 256;
// Descriptors this process needs besides the clients (libpq, Postgres probes, files).
constexpr rlim_t own_fd_headroom = 512;

using conn_ptr = std::unique_ptr<PGconn, void (*)(PGconn*)>;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// A "Name:   value kB" line of /proc/<pid>/status, in KiB (-1 if missing).
long proc_status_kib(pid_t pid, const std::string& name) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(name + ":", 0) == 0) return std::stol(line.substr(name.size() + 1));
    }
    return -1;
}

std::size_t open_fds(pid_t pid) {
    std::error_code ec;
    std::size_t n = 0;
    for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
         !ec && it != end; it.increment(ec))
        ++n;
    return n;
}

// The soft "Max open files" of another process, from /proc/<pid>/limits.
std::string soft_fd_limit_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Max open files", 0) == 0) {
            std::istringstream words(line.substr(std::strlen("Max open files")));
            std::string soft;
            words >> soft;
            return soft;
        }
    }
    return "";
}

void set_soft_fd_limit(rlim_t soft) {
    rlimit lim{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
    lim.rlim_cur = soft;
    REQUIRE_MESSAGE(::setrlimit(RLIMIT_NOFILE, &lim) == 0, "setrlimit: ", std::strerror(errno));
}

// Raises this process's RLIMIT_NOFILE to at least `want`: the soft limit up to the hard one,
// and the hard one too when allowed (root). Returns the hard limit.
rlim_t raise_own_fd_limit(rlim_t want) {
    rlimit lim{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
    if (lim.rlim_max < want) {
        rlimit more{want, want};
        if (::setrlimit(RLIMIT_NOFILE, &more) == 0) lim = more;
    }
    lim.rlim_cur = lim.rlim_max;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lim) == 0);
    return lim.rlim_max;
}

std::pair<int, int> ephemeral_port_range() {
    std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
    int lo = 0;
    int hi = 0;
    in >> lo >> hi;
    return {lo, hi};
}

void put_u32(std::string& out, std::uint32_t v) {
    out += static_cast<char>(v >> 24);
    out += static_cast<char>(v >> 16);
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v);
}

std::uint32_t get_u32(const std::string& s, std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i)
        v = (v << 8) | static_cast<unsigned char>(s[at + i]);
    return v;
}

// StartupMessage, protocol 3.0.
// https://www.postgresql.org/docs/15/protocol-message-formats.html
std::string startup_message(const std::string& user, const std::string& database) {
    std::string body;
    put_u32(body, 196608);
    for (const auto& s : {std::string("user"), user, std::string("database"), database}) {
        body += s;
        body += '\0';
    }
    body += '\0';
    std::string out;
    put_u32(out, static_cast<std::uint32_t>(body.size() + 4));
    return out + body;
}

// Takes one whole backend message off the front of `buf`: {type, body}, or type 0 if
// incomplete.
std::pair<char, std::string> next_message(std::string& buf) {
    if (buf.size() < 5) return {0, {}};
    const std::uint32_t len = get_u32(buf, 1);
    if (buf.size() < 1 + static_cast<std::size_t>(len)) return {0, {}};
    std::pair<char, std::string> m{buf[0], buf.substr(5, len - 4)};
    buf.erase(0, 1 + len);
    return m;
}

// The 'M' field of an ErrorResponse body.
std::string error_text(const std::string& body) {
    for (std::size_t i = 0; i < body.size() && body[i] != '\0';) {
        const char code = body[i];
        const std::size_t end = body.find('\0', i + 1);
        if (end == std::string::npos) break;
        if (code == 'M') return body.substr(i + 1, end - i - 1);
        i = end + 1;
    }
    return "?";
}

struct raw_client {
    enum class state : std::uint8_t { unused, connecting, reading, ready, failed };
    int fd = -1;
    state st = state::unused;
    std::string in;
};

struct login_result {
    int ready = 0;
    int failed = 0;
    std::string first_error;
};

// Opens `clients.size()` connections to 127.0.0.1:port, at most max_in_flight logging in at
// once, each sending a StartupMessage and reading until ReadyForQuery. Logged-in sockets stay
// open and leave the epoll set.
login_result login_all(std::vector<raw_client>& clients, int port, clock_type::time_point until) {
    login_result r;
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(ep >= 0);
    const std::string hello = startup_message("alice", "app");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto n = clients.size();
    std::size_t next = 0;
    int in_flight = 0;
    auto fail = [&](raw_client& c, const std::string& why) {
        if (r.first_error.empty()) r.first_error = why;
        ++r.failed;
        --in_flight;
        ::close(c.fd);  // also leaves the epoll set
        c.fd = -1;
        c.st = raw_client::state::failed;
    };
    std::array<epoll_event, 512> events{};
    while (static_cast<std::size_t>(r.ready + r.failed) < n && clock_type::now() < until) {
        while (in_flight < max_in_flight && next < n) {
            auto& c = clients[next];
            c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            ++in_flight;
            c.st = raw_client::state::connecting;
            epoll_event ev{};
            ev.events = EPOLLOUT;
            ev.data.u64 = next++;
            if (c.fd < 0) {
                fail(c, std::string("socket: ") + std::strerror(errno));
            } else if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) !=
                           0 &&
                       errno != EINPROGRESS) {
                fail(c, std::string("connect: ") + std::strerror(errno));
            } else if (::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
                fail(c, std::string("epoll_ctl: ") + std::strerror(errno));
            }
        }
        const int got = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        for (int i = 0; i < got; ++i) {
            auto& c = clients[events[i].data.u64];
            if (c.st == raw_client::state::connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) {
                    fail(c, std::string("connect: ") + std::strerror(err));
                    continue;
                }
                // A fresh socket's send buffer takes these few bytes at once.
                if (::send(c.fd, hello.data(), hello.size(), MSG_NOSIGNAL) !=
                    static_cast<ssize_t>(hello.size())) {
                    fail(c, std::string("send: ") + std::strerror(errno));
                    continue;
                }
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.u64 = events[i].data.u64;
                ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
                c.st = raw_client::state::reading;
                continue;
            }
            if (c.st != raw_client::state::reading) continue;
            char buf[4096];
            const ssize_t k = ::recv(c.fd, buf, sizeof buf, 0);
            if (k == 0 || (k < 0 && errno != EAGAIN)) {
                fail(c, k == 0 ? "closed by shardgate during login"
                               : std::string("recv: ") + std::strerror(errno));
                continue;
            }
            if (k < 0) continue;
            c.in.append(buf, static_cast<std::size_t>(k));
            for (auto m = next_message(c.in); m.first != 0; m = next_message(c.in)) {
                if (m.first == 'E') {
                    fail(c, "ErrorResponse: " + error_text(m.second));
                    break;
                }
                if (m.first == 'Z') {
                    ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
                    c.st = raw_client::state::ready;
                    std::string().swap(c.in);
                    ++r.ready;
                    --in_flight;
                    break;
                }
            }
        }
    }
    ::close(ep);
    if (static_cast<std::size_t>(r.ready + r.failed) < n && r.first_error.empty())
        r.first_error = "timed out with " + std::to_string(n - r.ready - r.failed) + " pending";
    return r;
}

// One simple Query on a logged-in raw client: the first column of the first row, or "ERROR".
std::string raw_query(int fd, const std::string& sql, std::chrono::milliseconds timeout) {
    std::string q = "Q";
    put_u32(q, static_cast<std::uint32_t>(4 + sql.size() + 1));
    q += sql;
    q += '\0';
    if (::send(fd, q.data(), q.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(q.size()))
        return "send failed";
    const auto until = clock_type::now() + timeout;
    std::string in;
    std::string value = "no row";
    while (clock_type::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        const ssize_t k = ::recv(fd, buf, sizeof buf, 0);
        if (k == 0) return "closed";
        if (k < 0) {
            if (errno == EAGAIN) continue;
            return "recv failed";
        }
        in.append(buf, static_cast<std::size_t>(k));
        for (auto m = next_message(in); m.first != 0; m = next_message(in)) {
            if (m.first == 'E') value = "ERROR: " + error_text(m.second);
            if (m.first == 'D' && m.second.size() >= 6) {
                const std::uint32_t len = get_u32(m.second, 2);
                value = m.second.substr(6, len);
            }
            if (m.first == 'Z') return value;
        }
    }
    return "timeout";
}

std::string value(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                          ? std::string(PQgetvalue(r, 0, 0))
                          : std::string("ERROR: ") + PQresultErrorMessage(r);
    PQclear(r);
    return out;
}

bool command_ok(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

}  // namespace

TEST_CASE("10,000 idle clients over 20 server connections in transaction mode") {
    const auto t_start = clock_type::now();
    const rlim_t want_fds = clients_wanted + own_fd_headroom;
    const rlim_t hard = raise_own_fd_limit(want_fds);
    REQUIRE_MESSAGE(hard >= want_fds, "RLIMIT_NOFILE hard limit ", hard, " < ", want_fds);
    const auto [port_lo, port_hi] = ephemeral_port_range();
    REQUIRE_MESSAGE(port_hi - port_lo + 1 > clients_wanted + 1000, "ip_local_port_range ", port_lo,
                    "-", port_hi, " is too small");

    pg_topology topo(pg_topology::builder().build());
    topo.create_role("alice", "secret");
    topo.create_database("app", "alice");
    pg_server& pg = topo.shard(0).primary();
    const std::string toml =
        "[shardgate]\nlisten_port = @PORT@\nworkers = 2\npool_mode = \"transaction\"\n"
        "pool_size = " +
        std::to_string(pool_size) + "\nmax_client_conn = " + std::to_string(max_client_conn) +
        "\n[databases.app]\nport = " + std::to_string(pg.port()) +
        "\nserver_tls = \"disable\"\n"
        // trust for clients (cheap logins); the password is what shardgate logs in with.
        "[users.alice]\nauth = \"trust\"\npassword = \"secret\"\n";
    // shardgate starts with a low soft limit, as under a default login shell, and must raise it
    // itself; the test gets its own back right after.
    set_soft_fd_limit(1024);
    auto sg = std::make_unique<shardgate_process>(shardgate_options{.config_toml = toml});
    set_soft_fd_limit(hard);
    const pid_t sg_pid = sg->pid();
    const std::string sg_limit = soft_fd_limit_of(sg_pid);
    MESSAGE("shardgate's open file limit: ", sg_limit, " (started with 1024)");
    CHECK(read_file(sg->log_file()).find("RLIMIT_NOFILE): soft 1024 -> ") != std::string::npos);
    REQUIRE_MESSAGE((sg_limit == "unlimited" || std::stoull(sg_limit) >= max_client_conn + 20ULL),
                    "shardgate could not raise its open file limit: ", sg_limit);

    const std::string info = "host=127.0.0.1 port=" + std::to_string(sg->port()) +
                             " user=alice dbname=app sslmode=disable connect_timeout=10";
    conn_ptr warm{PQconnectdb(info.c_str()), PQfinish};
    REQUIRE_MESSAGE(PQstatus(warm.get()) == CONNECTION_OK, PQerrorMessage(warm.get()));
    REQUIRE(value(warm.get(), "SELECT 1") == "1");
    std::this_thread::sleep_for(300ms);
    // Server connections from shardgate (every alice backend is one: the test's own probes
    // connect as postgres).
    auto server_backends = [&pg] {
        return std::stoi(pg.query_value(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice' AND datname = 'app' "
            "AND backend_type = 'client backend'"));
    };
    const long rss_before = proc_status_kib(sg_pid, "VmRSS");
    const std::size_t fds_before = open_fds(sg_pid);
    const int backends_before = server_backends();

    std::vector<raw_client> clients(clients_wanted);
    const auto t_login = clock_type::now();
    const auto logins = login_all(clients, sg->port(), t_login + 60s);
    const double login_s = seconds_since(t_login);
    MESSAGE(logins.ready, " of ", clients_wanted, " clients logged in in ", login_s, " s (",
            logins.ready / std::max(login_s, 1e-9), " logins/s)");
    REQUIRE_MESSAGE(logins.ready == clients_wanted, logins.failed,
                    " failed; first error: ", logins.first_error, "\n", sg->log_tail());

    std::this_thread::sleep_for(500ms);  // let the last logins' coroutines settle
    const long rss_idle = proc_status_kib(sg_pid, "VmRSS");
    const long hwm = proc_status_kib(sg_pid, "VmHWM");
    const double per_client = static_cast<double>(rss_idle - rss_before) * 1024.0 / clients_wanted;
    MESSAGE("shardgate VmRSS: ", rss_before, " KiB with 1 client, ", rss_idle, " KiB with ",
            clients_wanted + 1, " (peak ", hwm, " KiB): ", per_client,
            " bytes per idle client (target <= 4096); open fds ", fds_before, " -> ",
            open_fds(sg_pid));
    // An idle client costs its session, its data-plane link and the coroutine frames it waits
    // in (3.4 KB at this writing); a sanitized build's allocator adds redzones.
    if (sanitized_shardgate())
        CHECK(per_client < 64.0 * 1024);
    else
        CHECK(per_client <= 4096.0);

    // Queries still work, from new libpq clients and from idle raw clients, and the backend
    // sees no more than pool_size connections.
    const auto t_query = clock_type::now();
    CHECK(value(warm.get(), "SELECT 40 + 2") == "42");
    std::vector<conn_ptr> extra;
    for (int i = 0; i < 4; ++i) {
        extra.emplace_back(PQconnectdb(info.c_str()), PQfinish);
        REQUIRE_MESSAGE(PQstatus(extra.back().get()) == CONNECTION_OK,
                        PQerrorMessage(extra.back().get()));
        PGconn* c = extra.back().get();
        CHECK(command_ok(c, "BEGIN"));
        CHECK(value(c, "SELECT " + std::to_string(i)) == std::to_string(i));
        CHECK(command_ok(c, "COMMIT"));
    }
    for (int i : {0, 2500, 5000, 7500, clients_wanted - 1})
        CHECK(raw_query(clients[i].fd, "SELECT 'raw" + std::to_string(i) + "'", 10s) ==
              "raw" + std::to_string(i));
    const int backends = server_backends();
    MESSAGE("server connections from shardgate: ", backends, "; queries took ",
            seconds_since(t_query), " s");
    CHECK(backends >= 1);
    CHECK(backends <= pool_size);

    // All leave (Terminate, then close): shardgate lets go of every descriptor and keeps
    // serving.
    const auto t_close = clock_type::now();
    const std::string terminate = std::string("X") + std::string("\0\0\0\4", 4);
    for (auto& c : clients) {
        if (c.fd < 0) continue;
        ::send(c.fd, terminate.data(), terminate.size(), MSG_NOSIGNAL);
        ::close(c.fd);
        c.fd = -1;
    }
    extra.clear();
    // What shardgate may still hold: its descriptors from before plus the server connections
    // its pool opened since (kept idle).
    const std::size_t fds_expected =
        fds_before + static_cast<std::size_t>(server_backends() - backends_before);
    const auto until = clock_type::now() + 30s;
    while (open_fds(sg_pid) > fds_expected && clock_type::now() < until)
        std::this_thread::sleep_for(50ms);
    const std::size_t fds_after = open_fds(sg_pid);
    MESSAGE("after closing: open fds ", fds_after, " (expected at most ", fds_expected, ", in ",
            seconds_since(t_close), " s), VmRSS ", proc_status_kib(sg_pid, "VmRSS"), " KiB");
    CHECK(fds_after <= fds_expected);
    CHECK(value(warm.get(), "SELECT 'still serving'") == "still serving");
    conn_ptr after{PQconnectdb(info.c_str()), PQfinish};
    CHECK(PQstatus(after.get()) == CONNECTION_OK);
    CHECK(value(after.get(), "SELECT 7") == "7");
    CHECK(sg->running());
    MESSAGE("whole test: ", seconds_since(t_start), " s");
    CHECK(seconds_since(t_start) < 100.0);
}
