// TOML reading helpers for the config loader's source files: errors as "file:line: what is wrong",
// and a table reader that rejects unknown keys. Private to the config loader.
#pragma once

#include <toml++/toml.h>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"

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
    bool boolean(std::string_view key, bool def) {
        const auto* n = take(key);
        if (n == nullptr) return def;
        if (!n->is_boolean()) fail(origin_, n->source(), name(key) + " must be true or false");
        return n->as_boolean()->get();
    }
    // A string naming one of `choices`; the error lists them all.
    template <class E>
    E choice(std::string_view key, E def,
             std::initializer_list<std::pair<std::string_view, E>> choices) {
        if (t_.get(key) == nullptr) {
            (void)take(key);
            return def;
        }
        const auto v = str(key, "");
        std::string names;
        for (const auto& [n, e] : choices) {
            if (n == v) return e;
            names += names.empty() ? "" : ", ";
            names += n;
        }
        error(key, "must be one of " + names + ", not '" + v + "'");
    }
    const toml::node* node(std::string_view key) { return t_.get(key); }
    // The key's node (nullptr if absent), marked as known: for values read by hand.
    const toml::node* use(std::string_view key) { return take(key); }
    const std::string& origin() const { return origin_; }
    const std::string& path() const { return path_; }  // "databases.app."
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

    // The key as errors quote it: 'databases.app.port'.
    std::string name(std::string_view key) const { return "'" + path_ + std::string(key) + "'"; }

  private:
    const toml::node* take(std::string_view key) {
        seen_.insert(std::string(key));
        return t_.get(key);
    }
    const toml::table& t_;
    std::string origin_;
    std::string path_;
    std::set<std::string> seen_;
};

// config_replicas.cpp: the read/write-split keys of a [databases.X] table, and the consistency
// key a [databases.X] or [users.X] table may set.
void load_read_split(table_reader& r, database_config& d);
std::optional<router::consistency_mode> load_consistency(table_reader& r);

}  // namespace shardgate::proxy::config_detail
