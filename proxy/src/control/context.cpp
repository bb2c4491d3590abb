// TLS context set-up for both sides of the proxy.
#include "control/context.hpp"

namespace shardgate::proxy {

void proxy_context::close_idle_clients() {
    closing_idle.store(true);
    for (auto& p : planes)
        p->close_idle();
}

void proxy_context::init_tls() {
    if (cfg->client_tls()) {
        auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
        ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
        error_code ec;
        ctx->use_certificate_chain_file(cfg->tls_cert_file, ec);
        if (ec)
            throw config_error(cfg->tls_cert_file + ": cannot load certificate: " + ec.message());
        ctx->use_private_key_file(cfg->tls_key_file, ssl::context::pem, ec);
        if (ec)
            throw config_error(cfg->tls_key_file + ": cannot load private key: " + ec.message());
        client_tls = std::move(ctx);
    }
    for (const auto& [name, db] : cfg->databases) {
        if (db.server_tls == server_tls_mode::disable) continue;
        auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
        ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
        if (!db.server_tls_ca_file.empty()) {
            error_code ec;
            ctx->load_verify_file(db.server_tls_ca_file, ec);
            if (ec)
                throw config_error(db.server_tls_ca_file +
                                   ": cannot load CA file: " + ec.message());
        }
        server_tls.emplace(name, std::move(ctx));
    }
}

}  // namespace shardgate::proxy
