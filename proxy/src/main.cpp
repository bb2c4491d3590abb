// shardgate entry point: command line, config, logging, then the proxy server.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <iostream>

#include "config/config.hpp"
#include "control/listener.hpp"
#include "control/version.hpp"

namespace {

// Descriptors kept for everything but clients: listener, epoll sets and eventfds, server
// connections, log files, DNS. A guess, not a budget: it only decides when to warn.
constexpr std::uint64_t fd_headroom = 256;

// Every client is a descriptor, and the usual soft RLIMIT_NOFILE (1024) is far below
// max_client_conn: raise the soft limit to the hard one, which needs no privilege.
void raise_fd_limit(std::uint32_t max_client_conn) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        spdlog::warn("getrlimit(RLIMIT_NOFILE): {}", std::strerror(errno));
        return;
    }
    const rlim_t old_soft = lim.rlim_cur;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            spdlog::warn("setrlimit(RLIMIT_NOFILE, {}): {}", lim.rlim_max, std::strerror(errno));
            lim.rlim_cur = old_soft;
        }
    }
    spdlog::info("open file limit (RLIMIT_NOFILE): soft {} -> {}, hard {}", old_soft, lim.rlim_cur,
                 lim.rlim_max);
    const std::uint64_t want = std::uint64_t{max_client_conn} + fd_headroom;
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
        const std::uint64_t clients = lim.rlim_cur > fd_headroom ? lim.rlim_cur - fd_headroom : 0;
        spdlog::warn(
            "open file limit {} is below max_client_conn ({}) + {} for server connections and "
            "the rest: about {} clients can be served; raise the hard limit (ulimit -Hn, "
            "LimitNOFILE=) to at least {}",
            lim.rlim_cur, max_client_conn, fd_headroom, clients, want);
    }
}

}  // namespace

int main(int argc, char** argv) {
    using namespace shardgate::proxy;
    try {
        CLI::App app{"shardgate: Postgres wire-protocol proxy"};
        std::string config_path = "shardgate.toml";
        bool check_only = false;
        bool show_version = false;
        app.add_option("-c,--config", config_path, "configuration file (TOML)");
        app.add_flag("--check", check_only, "validate the configuration and exit");
        app.add_flag("-V,--version", show_version, "print the version and exit");
        CLI11_PARSE(app, argc, argv);
        if (show_version) {
            std::cout << "shardgate " << version() << "\n";
            return 0;
        }
        auto cfg = load_config(config_path);
        if (check_only) {
            std::cout << config_path << ": OK\n";
            return 0;
        }
        spdlog::set_level(spdlog::level::from_str(cfg->log_level));
        spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%t] %v");
        raise_fd_limit(cfg->max_client_conn);
        std::signal(SIGPIPE, SIG_IGN);
        proxy_server server(cfg, config_path);
        return server.run();
    } catch (const config_error& e) {
        std::cerr << "shardgate: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "shardgate: " << e.what() << "\n";
        return 1;
    } catch (...) {
        std::cerr << "shardgate: unexpected exception\n";
        return 1;
    }
}
