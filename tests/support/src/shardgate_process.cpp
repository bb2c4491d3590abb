// Runs the shardgate binary for tests: config file, free port, readiness wait, signals, logs.
#include "shardgate/testsupport/shardgate_process.hpp"

#include <signal.h>

#include <cstdlib>
#include <regex>
#include <stdexcept>
#include <thread>

#include "shardgate/testsupport/pg_client.hpp"
#include "shardgate/testsupport/process.hpp"
#include "shardgate/testsupport/shardgate_config.hpp"

namespace shardgate::testsupport {
namespace {

std::string substitute_port(std::string text, std::string_view placeholder, int port) {
    const std::string value = std::to_string(port);
    for (auto pos = text.find(placeholder); pos != std::string::npos;
         pos = text.find(placeholder, pos + value.size())) {
        text.replace(pos, placeholder.size(), value);
    }
    return text;
}

bool has_http_placeholder(const std::string& text) {
    return text.find(http_port_placeholder) != std::string::npos;
}

// A free port other than `taken` (free_port() may hand out the same port twice in a row).
int free_port_except(int taken) {
    for (;;) {
        const int p = free_port();
        if (p != taken) return p;
    }
}

}  // namespace

bool sanitized_shardgate() {
    const char* v = std::getenv("SHARDGATE_SANITIZED");
    return v != nullptr && *v != '\0' && std::string_view(v) != "0";
}

std::filesystem::path default_shardgate_binary() {
    if (const char* env = std::getenv("SHARDGATE_BINARY"); env != nullptr && *env != '\0')
        return env;
#ifdef SHARDGATE_BINARY
    return SHARDGATE_BINARY;
#else
    return "shardgate";
#endif
}

shardgate_process::shardgate_process(std::filesystem::path binary, std::string config_toml)
    : shardgate_process(shardgate_options{std::move(binary), std::move(config_toml)}) {}

shardgate_process::shardgate_process(shardgate_options options)
    : options_(std::move(options)), dir_(std::make_unique<work_dir>("shardgate-proxy")) {
    config_file_ = dir_->path() / "shardgate.toml";
    log_file_ = dir_->path() / "shardgate.log";
    config_template_ = options_.config_toml;
    port_from_placeholder_ = config_template_.find(port_placeholder) != std::string::npos;
    if (options_.port != 0) {
        port_ = options_.port;
    } else if (port_from_placeholder_) {
        port_ = free_port();
    } else {
        std::smatch m;
        static const std::regex listen_port(R"((^|\n)\s*listen_port\s*=\s*(\d+))");
        if (!std::regex_search(config_template_, m, listen_port)) {
            throw std::invalid_argument("shardgate config has neither @PORT@ nor listen_port = N");
        }
        port_ = std::stoi(m[2].str());
    }
    write_config(config_template_);
    start();
}

shardgate_process::~shardgate_process() {
    try {
        stop(5s);
    } catch (const std::exception&) {
        // Destructors must not throw; PDEATHSIG and the watchdog are the last resort.
    }
}

void shardgate_process::write_config(const std::string& toml_in) {
    std::string toml = toml_in;
    const std::string section = "[shardgate]\n";
    const auto at = toml.find(section);
    if (client_tls_run() && at != std::string::npos &&
        toml.find("tls_cert_file") == std::string::npos) {
        const auto& tls = dir_->tls();
        toml.insert(at + section.size(), "tls_cert_file = \"" + tls.cert_file.string() +
                                             "\"\ntls_key_file = \"" + tls.key_file.string() +
                                             "\"\n");
    }
    config_template_ = toml;
    if (http_port_ == 0 && has_http_placeholder(toml)) http_port_ = free_port_except(port_);
    write_file(config_file_, substitute_port(substitute_port(toml, port_placeholder, port_),
                                             http_port_placeholder, http_port_));
}

void shardgate_process::start() {
    if (pid_ != 0) throw std::logic_error("shardgate is already running");
    for (int attempt = 0;; ++attempt) {
        try {
            spawn_and_wait();
            return;
        } catch (const std::runtime_error& e) {
            // Someone else took a port between free_port() and shardgate's bind: take others.
            const std::string what = e.what();
            const bool new_port = port_from_placeholder_ && options_.port == 0;
            const bool new_http_port = has_http_placeholder(config_template_);
            if (attempt >= 3 || !(new_port || new_http_port) ||
                what.find("in use") == std::string::npos) {
                throw;
            }
            if (new_port) port_ = free_port();
            if (new_http_port) http_port_ = free_port_except(port_);
            write_config(config_template_);
        }
    }
}

void shardgate_process::spawn_and_wait() {
    std::vector<std::string> argv = {options_.binary.string(), "--config", config_file_.string()};
    argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
    const auto log_offset =
        std::filesystem::exists(log_file_) ? std::filesystem::file_size(log_file_) : 0;
    spawn_options so;
    so.cwd = dir_->path();
    so.output_file = log_file_;
    so.die_with_parent = true;
    pid_ = spawn_process(argv, so);
    exit_code_.reset();
    write_file(dir_->path() / "shardgate.pid", std::to_string(pid_) + "\n");

    auto output_since_start = [&] {
        std::string log = read_file(log_file_);
        log = log.size() > log_offset ? log.substr(log_offset) : std::string();
        if (log.size() > 4000) log = "...\n" + log.substr(log.size() - 4000);
        return log;
    };
    const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
    for (;;) {
        if (auto code = wait_child(pid_, 0ms)) {
            reap(*code);
            throw std::runtime_error(
                "shardgate (" + options_.binary.string() + ") exited with " +
                std::to_string(*code) + " before accepting connections on port " +
                std::to_string(port_) + "; its output:\n" + output_since_start());
        }
        if (port_accepts(port_)) return;
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid_, SIGKILL);
            reap(wait_child(pid_, 5s).value_or(-1));
            throw std::runtime_error("shardgate did not accept connections on port " +
                                     std::to_string(port_) + " within " +
                                     std::to_string(options_.start_timeout.count()) +
                                     " ms; its output:\n" + output_since_start());
        }
        std::this_thread::sleep_for(10ms);
    }
}

void shardgate_process::reap(int exit_code) {
    exit_code_ = exit_code;
    pid_ = 0;
    std::error_code ec;
    std::filesystem::remove(dir_->path() / "shardgate.pid", ec);
}

int shardgate_process::stop(std::chrono::milliseconds grace) {
    if (pid_ == 0) return exit_code_.value_or(0);
    ::kill(pid_, SIGTERM);
    std::optional<int> code = wait_child(pid_, grace);
    if (!code) {
        ::kill(pid_, SIGKILL);
        code = wait_child(pid_, 10s);
    }
    reap(code.value_or(-1));
    return *exit_code_;
}

void shardgate_process::send_signal(int sig) {
    if (pid_ == 0) throw std::logic_error("shardgate is not running");
    ::kill(pid_, sig);
}

void shardgate_process::reload() {
    send_signal(SIGHUP);
}

bool shardgate_process::running() {
    if (pid_ == 0) return false;
    if (auto code = wait_child(pid_, 0ms)) {
        reap(*code);
        return false;
    }
    return true;
}

std::optional<int> shardgate_process::wait_for_exit(std::chrono::milliseconds timeout) {
    if (pid_ == 0) return exit_code_;
    if (auto code = wait_child(pid_, timeout)) {
        reap(*code);
        return code;
    }
    return std::nullopt;
}

std::string shardgate_process::log_tail(std::size_t lines) const {
    return file_tail(log_file_, lines);
}

std::string shardgate_process::conninfo(const std::string& user, const std::string& password,
                                        const std::string& dbname) const {
    return make_conninfo({{"host", host()},
                          {"port", std::to_string(port_)},
                          {"user", user},
                          {"password", password},
                          {"dbname", dbname}});
}

}  // namespace shardgate::testsupport
