// The SQL -> shape table shared by the shape tests and the libpg_query cross-check.
#pragma once

#include <string_view>
#include <vector>

#include "shardgate/router/shape.hpp"

namespace shape_cases {

using shardgate::router::literal_kind;

struct lit {
    literal_kind kind;
    std::string_view value;
    unsigned slot;
};

struct hint_exp {
    std::string_view key;
    std::string_view value;
};

// shape: the statements' shapes joined by '\n' ("" = no statements); lits: all statements' in
// order; hints: all statements' in order.
struct shape_case {
    std::string_view sql;
    std::string_view shape;
    std::vector<lit> lits;
    std::vector<hint_exp> hints = {};
};

inline lit I(std::string_view v, unsigned s) {
    return {literal_kind::integer, v, s};
}
inline lit N(std::string_view v, unsigned s) {
    return {literal_kind::numeric, v, s};
}
inline lit S(std::string_view v, unsigned s) {
    return {literal_kind::string, v, s};
}
inline lit E(std::string_view v, unsigned s) {
    return {literal_kind::escape_string, v, s};
}
inline lit B(std::string_view v, unsigned s) {
    return {literal_kind::bit_string, v, s};
}
inline lit D(std::string_view v, unsigned s) {
    return {literal_kind::dollar, v, s};
}
inline lit U(std::string_view v, unsigned s) {
    return {literal_kind::unicode, v, s};
}
inline lit P(std::string_view v, unsigned s) {
    return {literal_kind::param, v, s};
}

const std::vector<shape_case>& basic_cases();   // identifiers, strings, numbers, operators
const std::vector<shape_case>& clause_cases();  // IN lists, statements, hints, whole queries

}  // namespace shape_cases
