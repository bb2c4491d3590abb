// Creates Postgres data directories quickly: copies of one cached initdb output.
#pragma once

#include <filesystem>

namespace shardgate::testsupport {

// Makes `data_dir` a fresh, stopped cluster whose postgresql.conf includes 'sg_server.conf'.
// initdb costs about a second (several on a loaded 2-core machine) while copying its output
// costs a tenth of that, so the output is cached in /tmp/shardgate-initdb-<key> (key: Postgres
// version and user), shared by processes and created atomically. Copies share one system
// identifier; SHARDGATE_TEST_INITDB_CACHE=0 runs initdb for every cluster instead.
void create_cluster(const std::filesystem::path& data_dir);

}  // namespace shardgate::testsupport
