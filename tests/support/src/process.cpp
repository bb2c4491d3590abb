// Child processes for test support: fork/exec with privilege drop, timeouts, /proc inspection.
#include "shardgate/testsupport/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace shardgate::testsupport {
namespace {

// Who the child becomes; looked up before fork because getpwnam is not async-signal-safe.
struct identity {
    bool drop = false;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
};

identity identity_for(bool as_postgres) {
    identity id;
    if (!as_postgres || !running_as_root()) return id;
    passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("running as root but there is no `postgres` user");
    id.drop = true;
    id.uid = pw->pw_uid;
    id.gid = pw->pw_gid;
    int count = 32;
    id.groups.resize(static_cast<std::size_t>(count));
    if (::getgrouplist("postgres", id.gid, id.groups.data(), &count) < 0) {
        id.groups.resize(static_cast<std::size_t>(count));
        ::getgrouplist("postgres", id.gid, id.groups.data(), &count);
    }
    id.groups.resize(static_cast<std::size_t>(count));
    return id;
}

void write_all(int fd, const std::string& text) {
    // async-signal-safe best effort (used in the child between fork and exec)
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n <= 0) return;
        done += static_cast<std::size_t>(n);
    }
}

// fork + exec. In the child only async-signal-safe calls are made: this process has threads.
pid_t fork_exec(const std::vector<std::string>& args, const identity& id, const std::string& cwd,
                int in_fd, int out_fd, bool die_with_parent) {
    if (args.empty()) throw std::invalid_argument("empty command");
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const std::string exec_error = "cannot execute " + args[0] + "\n";
    const std::string cwd_error = "cannot chdir to " + cwd + "\n";
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid != 0) return pid;

    // Child. Signal dispositions and the blocked mask survive exec: reset them so a server
    // started from a process that blocks SIGTERM (sg-local) still obeys SIGTERM.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
        ::sigaction(sig, &dfl, nullptr);
    // Own process group: a Ctrl-C meant for the test runner must not reach the servers, the
    // runner tears them down itself.
    ::setpgid(0, 0);
    if (die_with_parent) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
    }
    int devnull = ::open("/dev/null", O_RDWR);
    int in = in_fd >= 0 ? in_fd : devnull;
    if (in >= 0) ::dup2(in, 0);
    int out = out_fd >= 0 ? out_fd : devnull;
    if (out >= 0) {
        ::dup2(out, 1);
        ::dup2(out, 2);
    }
    ::close_range(3, ~0U, 0);
    if (id.drop) {
        if (::setgroups(id.groups.size(), id.groups.data()) != 0 || ::setgid(id.gid) != 0 ||
            ::setuid(id.uid) != 0) {
            write_all(2, "cannot switch to the postgres user\n");
            ::_exit(126);
        }
    }
    if (::chdir(cwd.c_str()) != 0) {
        write_all(2, cwd_error);
        ::_exit(126);
    }
    ::execvp(argv[0], argv.data());
    write_all(2, exec_error);
    ::_exit(127);
}

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

std::string join(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) {
        if (!out.empty()) out += ' ';
        out += a;
    }
    return out;
}

// SHARDGATE_TEST_TRACE=1 prints every command with its duration to stderr.
bool trace_enabled() {
    static const bool on = [] {
        const char* v = std::getenv("SHARDGATE_TEST_TRACE");
        return v != nullptr && *v != '\0' && std::string(v) != "0";
    }();
    return on;
}

}  // namespace

bool running_as_root() {
    return ::geteuid() == 0;
}

command_result run_command(const std::vector<std::string>& argv, const command_options& options) {
    const identity id = identity_for(options.as_postgres);
    // A memfd, not a pipe: a daemon the command leaves behind cannot keep us waiting for EOF.
    int out = ::memfd_create("sg-command-output", MFD_CLOEXEC);
    if (out < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
    command_result result;
    const auto t0 = std::chrono::steady_clock::now();
    try {
        const pid_t pid = fork_exec(argv, id, options.cwd.string(), -1, out, false);
        std::optional<int> code = wait_child(pid, options.timeout);
        if (!code) {
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            code = wait_child(pid, 10s);
            result.timed_out = true;
        }
        result.exit_code = code.value_or(-1);
        if (trace_enabled()) {
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - t0);
            std::fprintf(stderr, "[testsupport] %5lld ms  exit %d  %s\n",
                         static_cast<long long>(ms.count()), result.exit_code,
                         join(argv).substr(0, 160).c_str());
        }
        ::lseek(out, 0, SEEK_SET);
        char buf[8192];
        ssize_t n;
        while ((n = ::read(out, buf, sizeof buf)) > 0)
            result.output.append(buf, static_cast<std::size_t>(n));
    } catch (...) {
        ::close(out);
        throw;
    }
    ::close(out);
    return result;
}

std::string check_command(const std::vector<std::string>& argv, const command_options& options) {
    command_result r = run_command(argv, options);
    if (r.exit_code != 0 || r.timed_out) {
        std::string why = r.timed_out ? "timed out" : "exited with " + std::to_string(r.exit_code);
        throw std::runtime_error("command " + why + ": " + join(argv) + "\n" + r.output);
    }
    return r.output;
}

pid_t spawn_process(const std::vector<std::string>& argv, const spawn_options& options) {
    const identity id = identity_for(options.as_postgres);
    int out = -1;
    if (!options.output_file.empty()) {
        out = ::open(options.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (out < 0) throw std::runtime_error("cannot open " + options.output_file.string());
    }
    try {
        pid_t pid = fork_exec(argv, id, options.cwd.string(), options.stdin_fd, out,
                              options.die_with_parent);
        if (out >= 0) ::close(out);
        return pid;
    } catch (...) {
        if (out >= 0) ::close(out);
        throw;
    }
}

std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto pause = 1ms;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return decode_status(status);
        if (r < 0 && errno != EINTR) {
            throw std::runtime_error("waitpid(" + std::to_string(pid) +
                                     "): " + std::strerror(errno));
        }
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(pause);
        pause = std::min<std::chrono::milliseconds>(pause * 2, 20ms);
    }
}

bool process_alive(pid_t pid) {
    if (pid <= 0) return false;
    if (::kill(pid, 0) != 0 && errno != EPERM) return false;
    // Orphans are reparented to an init that may never reap them: a zombie counts as gone.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    auto close_paren = line.rfind(')');
    if (close_paren == std::string::npos || close_paren + 2 >= line.size()) return true;
    char state = line[close_paren + 2];
    return state != 'Z' && state != 'X';
}

bool wait_until_gone(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        bool any = std::any_of(pids.begin(), pids.end(), [](pid_t p) { return process_alive(p); });
        if (!any) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
}

std::vector<pid_t> descendants(pid_t root) {
    std::multimap<pid_t, pid_t> children;  // parent -> child
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
        std::ifstream stat(entry.path() / "stat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        auto close_paren = line.rfind(')');
        if (close_paren == std::string::npos) continue;
        std::istringstream rest(line.substr(close_paren + 2));
        char state = 0;
        pid_t ppid = 0;
        rest >> state >> ppid;
        children.emplace(ppid, static_cast<pid_t>(std::stol(name)));
    }
    std::vector<pid_t> out;
    std::deque<pid_t> todo{root};
    while (!todo.empty()) {
        pid_t p = todo.front();
        todo.pop_front();
        auto [first, last] = children.equal_range(p);
        for (auto it = first; it != last; ++it) {
            out.push_back(it->second);
            todo.push_back(it->second);
        }
    }
    return out;
}

void chown_to_postgres(const std::filesystem::path& path, bool recursive) {
    if (!running_as_root()) return;
    const identity id = identity_for(true);
    auto one = [&](const std::filesystem::path& p) {
        if (::lchown(p.c_str(), id.uid, id.gid) != 0) {
            throw std::runtime_error("chown " + p.string() + ": " + std::strerror(errno));
        }
    };
    one(path);
    if (recursive && std::filesystem::is_directory(path)) {
        for (const auto& e : std::filesystem::recursive_directory_iterator(path))
            one(e.path());
    }
}

int free_port() {
    // The kernel may hand the same ephemeral port to consecutive bind(0) calls once the socket is
    // closed; servers started concurrently would then collide. Never hand out a port twice.
    static std::mutex mutex;
    static std::set<int> handed_out;
    for (int attempt = 0; attempt < 100; ++attempt) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::runtime_error("socket failed");
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        socklen_t len = sizeof addr;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            ::close(fd);
            throw std::runtime_error("cannot bind a free loopback port");
        }
        ::close(fd);
        const int port = ntohs(addr.sin_port);
        std::lock_guard lock(mutex);
        if (handed_out.insert(port).second) return port;
    }
    throw std::runtime_error("no unused free loopback port found");
}

bool port_accepts(int port, const std::string& host) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    bool ok = ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1 &&
              ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string file_tail(const std::filesystem::path& path, std::size_t max_lines) {
    std::ifstream in(path);
    std::deque<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        lines.push_back(line);
        if (lines.size() > max_lines) lines.pop_front();
    }
    std::string out;
    for (const auto& l : lines)
        out += l + "\n";
    return out;
}

}  // namespace shardgate::testsupport
