// A temporary directory for one test topology: Postgres data dirs, sockets, logs, certificates.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace shardgate::testsupport {

// The client-TLS run of a suite (ctest's *_client_tls tests set SHARDGATE_TEST_CLIENT_TLS=1
// and PGSSLMODE=require): every topology's Postgres accepts TLS and every shardgate gets the
// test certificate, so the suite's libpq clients speak TLS over TCP (Unix sockets stay plain).
inline bool client_tls_run() {
    const char* e = std::getenv("SHARDGATE_TEST_CLIENT_TLS");
    return e != nullptr && std::string_view(e) == "1";
}

// A self-signed test CA and a server certificate for CN=localhost, SAN DNS:localhost and
// IP:127.0.0.1, so clients can use sslmode=verify-full with either host name.
struct tls_files {
    std::filesystem::path ca_file;    // trust anchor for clients (sslrootcert)
    std::filesystem::path cert_file;  // server certificate (Postgres, or shardgate's client side)
    std::filesystem::path key_file;   // its private key, owned by postgres, mode 0600
};

// mkdtemp under /tmp, owned by postgres when running as root, removed on destruction. Each
// directory is also registered with a watchdog process that, if this process dies without
// tearing down (crash, SIGKILL, ctest timeout), immediately shuts down every Postgres server and
// pid file process under it and removes it.
class work_dir {
  public:
    explicit work_dir(const std::string& prefix = "shardgate-test");
    ~work_dir();
    work_dir(const work_dir&) = delete;
    work_dir& operator=(const work_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }

    // Generates the certificates on first use (openssl command line tool), thread-safe.
    const tls_files& tls();

  private:
    std::filesystem::path path_;
    std::mutex tls_mutex_;
    std::optional<tls_files> tls_;
};

// Adds `dir` to the crash watchdog's list (see work_dir). Processes that should be killed if
// this process dies write their pid to `<dir>/<name>.pid`; Postgres servers are found by their
// `<dir>/<server>/postmaster.pid`.
void register_for_crash_cleanup(const std::filesystem::path& dir);

}  // namespace shardgate::testsupport
