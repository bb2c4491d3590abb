// shardgate entry point: command line, config, logging, then the proxy server.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "config.hpp"
#include "listener.hpp"
#include "version.hpp"

int main(int argc, char** argv) {
    using namespace shardgate::proxy;
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
    try {
        auto cfg = load_config(config_path);
        if (check_only) {
            std::cout << config_path << ": OK\n";
            return 0;
        }
        spdlog::set_level(spdlog::level::from_str(cfg->log_level));
        spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%t] %v");
        std::signal(SIGPIPE, SIG_IGN);
        proxy_server server(cfg);
        return server.run();
    } catch (const config_error& e) {
        std::cerr << "shardgate: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "shardgate: " << e.what() << "\n";
        return 1;
    }
}
