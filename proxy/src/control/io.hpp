// The pool module's I/O vocabulary, as the proxy's sessions and listener use it.
#pragma once

#include "shardgate/pool/server_conn.hpp"
#include "shardgate/pool/server_login.hpp"
#include "shardgate/pool/stream.hpp"

namespace shardgate::proxy {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using pool::async_send_cancel;
using pool::async_server_login;
using pool::awaitable;
using pool::backend_address;
using pool::deadline;
using pool::ec_token;
using pool::error_code;
using pool::pg_stream;
using pool::scram_keys;
using pool::server_conn;
using pool::server_login_request;
using pool::server_login_result;
using pool::tcp;
using pool::use_awaitable;

}  // namespace shardgate::proxy
