// One shard for tests: a primary, streaming replicas, and waiting for them to catch up.
#include "shardgate/testsupport/pg_shard.hpp"

#include <future>
#include <stdexcept>
#include <thread>

namespace shardgate::testsupport {

std::uint64_t parse_lsn(const std::string& text) {
    const auto slash = text.find('/');
    if (slash == std::string::npos) throw std::invalid_argument("not an LSN: " + text);
    return (std::stoull(text.substr(0, slash), nullptr, 16) << 32) |
           std::stoull(text.substr(slash + 1), nullptr, 16);
}

pg_shard::pg_shard(pg_shard_options options)
    : pg_shard(std::make_shared<work_dir>("shardgate-shard"), std::move(options)) {}

pg_shard::pg_shard(std::shared_ptr<work_dir> dir, pg_shard_options options)
    : dir_(std::move(dir)), options_(std::move(options)) {
    pg_server_options primary_options = options_.server;
    primary_options.name = options_.name + "-primary";
    primary_ = std::make_unique<pg_server>(dir_, primary_options);
    // pg_basebackup is mostly waiting on I/O and the primary: clone the replicas concurrently.
    std::vector<std::future<std::unique_ptr<pg_server>>> pending;
    for (int i = 0; i < options_.replicas; ++i) {
        pg_server_options o = options_.server;
        o.name = options_.name + "-replica" + std::to_string(next_replica_++);
        pending.push_back(std::async(std::launch::async, [this, o] {
            return std::make_unique<pg_server>(dir_, o, *primary_);
        }));
    }
    std::exception_ptr failure;
    for (auto& f : pending) {
        try {
            replicas_.push_back(f.get());
        } catch (...) {
            if (!failure) failure = std::current_exception();
        }
    }
    if (failure) std::rethrow_exception(failure);
}

pg_shard::~pg_shard() {
    replicas_.clear();
    primary_.reset();
}

std::vector<pg_server*> pg_shard::servers() {
    std::vector<pg_server*> out{primary_.get()};
    for (auto& r : replicas_)
        out.push_back(r.get());
    return out;
}

pg_server& pg_shard::add_replica() {
    pg_server_options o = options_.server;
    o.name = options_.name + "-replica" + std::to_string(next_replica_++);
    replicas_.push_back(std::make_unique<pg_server>(dir_, o, *primary_));
    return *replicas_.back();
}

void pg_shard::wait_for_replicas_streaming(std::chrono::milliseconds timeout) const {
    if (replicas_.empty()) return;
    pg_connection primary = primary_->connect_superuser();
    // The insert position covers asynchronously committed transactions not yet written out.
    std::uint64_t target = parse_lsn(primary.query_value("SELECT pg_current_wal_insert_lsn()"));
    // When the last record ends exactly at a page boundary, the insert position points past the
    // next page's header (24 bytes, 40 at a segment start), which replay never reaches until
    // more WAL comes. No record can end inside a header, so waiting for the page start is exact.
    if (const auto in_page = target % 8192; in_page == 24 || in_page == 40) target -= in_page;
    std::string names;
    for (const auto& r : replicas_)
        names += (names.empty() ? "" : ",") + primary.quote_literal(r->name());
    const std::string streaming_sql =
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
        "AND application_name IN (" +
        names + ")";
    std::vector<pg_connection> replicas;
    for (const auto& r : replicas_)
        replicas.push_back(r->connect_superuser());

    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string missing;
    for (;;) {
        missing.clear();
        const std::string streaming = primary.query_value(streaming_sql);
        if (streaming != std::to_string(replicas_.size())) {
            missing +=
                streaming + " of " + std::to_string(replicas_.size()) + " replicas streaming; ";
        }
        for (std::size_t i = 0; i < replicas.size(); ++i) {
            auto rows = replicas[i].query("SELECT pg_last_wal_replay_lsn()");
            const std::string lsn = rows.empty() || !rows[0][0] ? "0/0" : *rows[0][0];
            if (parse_lsn(lsn) < target)
                missing += replicas_[i]->name() + " replayed only " + lsn + "; ";
        }
        if (missing.empty()) return;
        if (std::chrono::steady_clock::now() >= deadline) {
            throw std::runtime_error("shard " + options_.name +
                                     ": replicas did not catch up in time (" + missing + "target " +
                                     std::to_string(target) + ")");
        }
        std::this_thread::sleep_for(10ms);
    }
}

}  // namespace shardgate::testsupport
