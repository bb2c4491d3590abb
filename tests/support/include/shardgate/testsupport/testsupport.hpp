// Everything the test support library offers: real Postgres topologies and a shardgate process.
#pragma once

#include "shardgate/testsupport/pg_client.hpp"
#include "shardgate/testsupport/pg_server.hpp"
#include "shardgate/testsupport/pg_shard.hpp"
#include "shardgate/testsupport/pg_topology.hpp"
#include "shardgate/testsupport/process.hpp"
#include "shardgate/testsupport/shardgate_config.hpp"
#include "shardgate/testsupport/shardgate_process.hpp"
#include "shardgate/testsupport/work_dir.hpp"
