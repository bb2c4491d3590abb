// TOML reading helpers for the config loader's source files: errors as "file:line: what is wrong",
// and a table reader that rejects unknown keys. Private to the config loader.
#pragma once

#include <toml++/toml.h>
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

namespace shardgate::proxy::config_detail {

[[noreturn]] inline void fail(const std::string& origin, const toml::source_region& where,
                              const std::string& what) {
    std::ostringstream os;
    os << origin << ":" << where.begin.line << ": " << what;
    throw config_error(os.str());
}

// Reads keys of one table, rejecting unknown ones so typos are caught.
class table_reader {
  public:
    table_reader(const toml::table& t, std::string origin, std::string path)
        : t_(t), origin_(std::move(origin)), path_(std::move(path)) {}

    std::string str(std::string_view key, std::string def) {
        const auto* n = take(key);
        if (n == nullptr) return def;
        if (!n->is_string()) fail(origin_, n->source(), name(key) + " must be a string");
        return std::string(n->as_string()->get());
    }
    std::int64_t integer(std::string_view key, std::int64_t def, std::int64_t lo, std::int64_t hi) {
        const auto* n = take(key);
        if (n == nullptr) return def;
        if (!n->is_integer()) fail(origin_, n->source(), name(key) + " must be an integer");
        const auto v = n->as_integer()->get();
        if (v < lo || v > hi) {
            fail(origin_, n->source(),
                 name(key) + " must be between " + std::to_string(lo) + " and " +
                     std::to_string(hi) + ", not " + std::to_string(v));
        }
        return v;
    }
    // An array of strings (may be empty).
    std::vector<std::string> strings(std::string_view key) {
        const auto* n = take(key);
        std::vector<std::string> out;
        if (n == nullptr) return out;
        const auto* arr = n->as_array();
        if (arr == nullptr) fail(origin_, n->source(), name(key) + " must be an array of strings");
        for (const auto& e : *arr) {
            if (!e.is_string())
                fail(origin_, e.source(), name(key) + " must be an array of strings");
            out.emplace_back(e.as_string()->get());
        }
        return out;
    }
    const toml::node* node(std::string_view key) { return t_.get(key); }
    void finish() {
        for (const auto& [k, v] : t_) {
            if (seen_.count(std::string(k.str())) == 0)
                fail(origin_, v.source(), "unknown setting " + name(k.str()));
        }
    }
    [[noreturn]] void error(std::string_view key, const std::string& what) {
        const auto* n = t_.get(key);
        fail(origin_, n != nullptr ? n->source() : t_.source(), name(key) + ": " + what);
    }

  private:
    const toml::node* take(std::string_view key) {
        seen_.insert(std::string(key));
        return t_.get(key);
    }
    std::string name(std::string_view key) const { return "'" + path_ + std::string(key) + "'"; }

    const toml::table& t_;
    std::string origin_;
    std::string path_;
    std::set<std::string> seen_;
};

}  // namespace shardgate::proxy::config_detail
