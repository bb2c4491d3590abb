// Temporary test directories, the crash-cleanup watchdog and test TLS certificates.
#include "shardgate/testsupport/work_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <vector>

#include "shardgate/testsupport/process.hpp"

namespace shardgate::testsupport {
namespace {

// Runs under /bin/sh in its own process group, reading "dir <path>" lines on stdin. EOF means
// this process is gone: every directory that still exists was not torn down, so its Postgres
// servers get SIGQUIT (immediate shutdown: cleans shared memory), other pid files SIGTERM, then
// anything left SIGKILL, and the directory is removed.
constexpr const char* watchdog_script = R"sh(
dirs=""
while read -r kind path; do
  if [ "$kind" = dir ]; then dirs="$dirs $path"; fi
done
for d in $dirs; do
  [ -d "$d" ] || continue
  pids=""
  for f in "$d"/*/postmaster.pid; do
    [ -f "$f" ] || continue
    p=$(head -n 1 "$f"); case "$p" in ''|*[!0-9]*) continue;; esac
    kill -QUIT "$p" 2>/dev/null && pids="$pids $p"
  done
  for f in "$d"/*.pid; do
    [ -f "$f" ] || continue
    p=$(head -n 1 "$f"); case "$p" in ''|*[!0-9]*) continue;; esac
    kill -TERM "$p" 2>/dev/null && pids="$pids $p"
  done
  i=0
  while [ $i -lt 50 ]; do
    alive=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.1; i=$((i+1))
  done
  for p in $pids; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$d"
done
)sh";

std::mutex watchdog_mutex;
int watchdog_fd = -1;  // write end; O_CLOEXEC so no child of ours keeps the watchdog waiting

void start_watchdog_locked() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    spawn_options options;
    options.die_with_parent = false;  // it must outlive us: that is its whole job
    options.stdin_fd = fds[0];
    try {
        spawn_process({"/bin/sh", "-c", watchdog_script}, options);
    } catch (...) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw;
    }
    ::close(fds[0]);
    watchdog_fd = fds[1];
}

}  // namespace

void register_for_crash_cleanup(const std::filesystem::path& dir) {
    std::lock_guard lock(watchdog_mutex);
    if (watchdog_fd < 0) start_watchdog_locked();
    const std::string line = "dir " + dir.string() + "\n";
    if (::write(watchdog_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        std::cerr << "testsupport: cannot register " << dir << " with the crash watchdog\n";
    }
}

work_dir::work_dir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
        throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    }
    path_ = buf.data();
    chown_to_postgres(path_);
    register_for_crash_cleanup(path_);
}

work_dir::~work_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (ec) std::cerr << "testsupport: cannot remove " << path_ << ": " << ec.message() << "\n";
}

const tls_files& work_dir::tls() {
    std::lock_guard lock(tls_mutex_);
    if (tls_) return *tls_;
    const auto dir = path_ / "tls";
    std::filesystem::create_directory(dir);
    const std::string d = dir.string();
    // EC keys: generating them is instant, unlike RSA.
    const std::vector<std::string> ec_key = {"-newkey", "ec", "-pkeyopt",
                                             "ec_paramgen_curve:prime256v1", "-nodes"};
    std::vector<std::string> ca = {"openssl", "req", "-x509"};
    ca.insert(ca.end(), ec_key.begin(), ec_key.end());
    ca.insert(ca.end(), {"-keyout", d + "/ca.key", "-out", d + "/ca.crt", "-days", "3650", "-subj",
                         "/CN=shardgate test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                         "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
    check_command(ca);
    std::vector<std::string> csr = {"openssl", "req"};
    csr.insert(csr.end(), ec_key.begin(), ec_key.end());
    csr.insert(csr.end(),
               {"-keyout", d + "/server.key", "-out", d + "/server.csr", "-subj", "/CN=localhost"});
    check_command(csr);
    write_file(dir / "server.ext",
               "basicConstraints = CA:FALSE\n"
               "keyUsage = critical, digitalSignature, keyEncipherment\n"
               "extendedKeyUsage = serverAuth\n"
               "subjectAltName = DNS:localhost, IP:127.0.0.1\n");
    check_command({"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.crt",
                   "-CAkey", d + "/ca.key", "-CAcreateserial", "-out", d + "/server.crt", "-days",
                   "3650", "-extfile", d + "/server.ext"});
    chown_to_postgres(dir, true);
    // Postgres refuses a key readable by group or others.
    ::chmod((dir / "server.key").c_str(), 0600);
    tls_ = tls_files{dir / "ca.crt", dir / "server.crt", dir / "server.key"};
    return *tls_;
}

}  // namespace shardgate::testsupport
