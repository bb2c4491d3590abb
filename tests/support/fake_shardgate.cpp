// A stand-in for shardgate in the support self-test: reads listen_port from --config, accepts
// and closes TCP connections, logs SIGHUP, exits 0 on SIGTERM. Proxies nothing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace {

volatile sig_atomic_t got_hup = 0;
volatile sig_atomic_t got_term = 0;

void on_signal(int sig) {
    if (sig == SIGHUP) got_hup = 1;
    if (sig == SIGTERM) got_term = 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3 || std::string(argv[1]) != "--config") {
        std::fprintf(stderr, "usage: fake_shardgate --config FILE\n");
        return 2;
    }
    std::ifstream in(argv[2]);
    std::stringstream text;
    text << in.rdbuf();
    std::smatch m;
    const std::string config = text.str();
    if (!std::regex_search(config, m, std::regex(R"(listen_port\s*=\s*(\d+))"))) {
        std::fprintf(stderr, "fake_shardgate: no listen_port in %s\n", argv[2]);
        return 2;
    }
    const int port = std::stoi(m[1].str());
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGHUP, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 16) != 0) {
        std::perror("fake_shardgate: bind");
        return 1;
    }
    std::printf("fake_shardgate listening on 127.0.0.1:%d\n", port);
    std::fflush(stdout);
    while (!got_term) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            int c = accept(fd, nullptr, nullptr);
            if (c >= 0) close(c);
        }
        if (got_hup) {
            got_hup = 0;
            std::printf("fake_shardgate: reload requested\n");
            std::fflush(stdout);
        }
    }
    std::printf("fake_shardgate: stopping\n");
    return 0;
}
