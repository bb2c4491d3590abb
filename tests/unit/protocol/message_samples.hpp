// Sample values of every frontend and backend message, with edge cases, shared by the tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shardgate/protocol/backend.hpp"
#include "shardgate/protocol/frontend.hpp"

namespace sg_test {

namespace fe = shardgate::protocol::fe;
namespace be = shardgate::protocol::be;

// One or more of every typed frontend message, with edge cases (empty strings, NULLs, binary).
inline std::vector<fe::frontend_message> frontend_samples() {
    std::vector<fe::frontend_message> v;
    v.emplace_back(fe::password_message{"secret"});
    v.emplace_back(fe::password_message{""});
    v.emplace_back(fe::query{"SELECT 1"});
    v.emplace_back(fe::query{""});
    v.emplace_back(fe::parse{"s1", "SELECT $1::int, $2", {23, 0}});
    v.emplace_back(fe::parse{"", "BEGIN", {}});
    v.emplace_back(
        fe::bind{"p1", "s1", {1}, {std::string("\x00\x00\x00\x2a", 4), std::nullopt}, {0, 1}});
    v.emplace_back(fe::bind{"", "", {}, {}, {}});
    v.emplace_back(fe::bind{"", "s", {0, 1}, {"", std::string(300, 'x')}, {}});
    v.emplace_back(fe::describe{fe::describe::statement, "s1"});
    v.emplace_back(fe::describe{fe::describe::portal, ""});
    v.emplace_back(fe::execute{"", 0});
    v.emplace_back(fe::execute{"p1", 100});
    v.emplace_back(fe::close{fe::close::portal, "p1"});
    v.emplace_back(fe::close{fe::close::statement, ""});
    v.emplace_back(fe::sync{});
    v.emplace_back(fe::flush{});
    v.emplace_back(fe::terminate{});
    v.emplace_back(fe::copy_data{"1\tone\n"});
    v.emplace_back(fe::copy_data{std::string("\x00\xff\x00", 3)});
    v.emplace_back(fe::copy_data{""});
    v.emplace_back(fe::copy_done{});
    v.emplace_back(fe::copy_fail{"aborted by user"});
    v.emplace_back(fe::function_call{1598, {1}, {std::string("\x01\x02", 2), std::nullopt}, 1});
    v.emplace_back(fe::function_call{42, {}, {}, 0});
    return v;
}

inline be::authentication auth(std::int32_t code) {
    be::authentication a;
    a.code = code;
    return a;
}

inline std::vector<be::backend_message> backend_samples() {
    std::vector<be::backend_message> v;
    for (const auto code : {be::authentication::ok, be::authentication::kerberos_v5,
                            be::authentication::cleartext_password, be::authentication::gss,
                            be::authentication::sspi})
        v.emplace_back(auth(code));
    auto md5 = auth(be::authentication::md5_password);
    md5.md5_salt = {std::byte{0x01}, std::byte{0x00}, std::byte{0xfe}, std::byte{0x7f}};
    v.emplace_back(md5);
    auto sasl = auth(be::authentication::sasl);
    sasl.mechanisms = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
    v.emplace_back(sasl);
    for (const auto code : {be::authentication::gss_continue, be::authentication::sasl_continue,
                            be::authentication::sasl_final}) {
        auto a = auth(code);
        a.data = "r=abc,s=c2FsdA==,i=4096";
        v.emplace_back(a);
    }
    v.emplace_back(be::backend_key_data{4242, -559038737});
    v.emplace_back(be::bind_complete{});
    v.emplace_back(be::close_complete{});
    v.emplace_back(be::command_complete{"INSERT 0 3"});
    v.emplace_back(be::command_complete{""});
    v.emplace_back(be::copy_in_response{0, {0, 0, 0}});
    v.emplace_back(be::copy_out_response{1, {1, 1}});
    v.emplace_back(be::copy_both_response{0, {}});
    v.emplace_back(be::copy_data{"1\tone\n"});
    v.emplace_back(be::copy_data{""});
    v.emplace_back(be::copy_done{});
    v.emplace_back(be::data_row{{"1", std::nullopt, "", std::string("\x00\x01", 2)}});
    v.emplace_back(be::data_row{{}});
    v.emplace_back(be::empty_query_response{});
    v.emplace_back(be::error_response{{{'S', "ERROR"},
                                       {'V', "ERROR"},
                                       {'C', "42P01"},
                                       {'M', "relation \"t\" does not exist"},
                                       {'P', "15"},
                                       {'F', "parse_relation.c"},
                                       {'L', "1392"},
                                       {'R', "parserOpenTable"}}});
    v.emplace_back(be::error_response{{}});
    v.emplace_back(be::notice_response{{{'S', "NOTICE"}, {'C', "00000"}, {'M', "hello"}}});
    v.emplace_back(be::function_call_response{"result"});
    v.emplace_back(be::function_call_response{std::nullopt});
    v.emplace_back(be::negotiate_protocol_version{0, {"_pq_.foo", "_pq_.bar"}});
    v.emplace_back(be::negotiate_protocol_version{0, {}});
    v.emplace_back(be::no_data{});
    v.emplace_back(be::notification_response{77, "jobs", "{\"id\":1}"});
    v.emplace_back(be::notification_response{77, "c", ""});
    v.emplace_back(be::parameter_description{{23, 25, 4294967295U}});
    v.emplace_back(be::parameter_description{{}});
    v.emplace_back(be::parameter_status{"server_version", "15.4"});
    v.emplace_back(be::parse_complete{});
    v.emplace_back(be::portal_suspended{});
    v.emplace_back(be::ready_for_query{'I'});
    v.emplace_back(be::ready_for_query{'T'});
    v.emplace_back(be::ready_for_query{'E'});
    v.emplace_back(be::row_description{{{"id", 16384, 1, 23, 4, -1, 0},
                                        {"name", 16384, 2, 1043, -1, 68, 1},
                                        {"", 0, 0, 0, 0, 0, 0}}});
    v.emplace_back(be::row_description{{}});
    return v;
}

}  // namespace sg_test
