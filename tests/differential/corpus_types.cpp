// Corpus: data types and their text output: NULLs, unicode, arrays, bytea, numeric, floats,
// timestamps in several time zones, intervals, json/jsonb, network, ranges, geometry, misc.
#include "corpus.hpp"

namespace shardgate::difftest {

std::vector<test_case> type_cases() {
    std::vector<test_case> v;
    v.push_back(simple_case(
        "nulls_everywhere",
        {"SELECT NULL, NULL::text, NULL::int, ARRAY[NULL]::int[], ROW(NULL, 1), NULL IS NULL",
         "SELECT x FROM (VALUES (1), (NULL), (3)) v(x) ORDER BY x NULLS FIRST",
         "SELECT coalesce(NULL, NULL, 'third'), nullif(1, 1), greatest(NULL, 2, 1)",
         "SELECT '' AS empty_string, NULL AS null_value, ' ' AS space"}));
    v.push_back(simple_case(
        "unicode_text",
        {"SELECT 'héllo wörld' AS latin, 'Ελληνικά' AS greek, '日本語テキスト' AS cjk, "
         "'🙂👍🏽🇫🇷👨‍👩‍👧' AS emoji",
         "SELECT length('🙂👍🏽'), octet_length('🙂👍🏽'), upper('straße'), "
         "lower('ÀÉÎ'), "
         "reverse('añb'), substr('日本語', 2, 1), 'é' < 'f'",
         "SELECT chr(128512), ascii('€'), to_hex(ascii('🙂')), convert_to('ü', 'UTF8'), "
         "U&'\\0041\\00e9\\+01F600'",
         "SELECT E'\\u00e9\\U0001F600', encode('☃'::bytea, 'hex'), normalize('é', NFD) = 'é'"}));
    v.push_back(simple_case("invalid_unicode_escape",
                            {"SELECT E'\\uD800'", "SELECT chr(0)", "SELECT U&'\\DBFF'"}));
    v.push_back(simple_case(
        "arrays",
        {"SELECT ARRAY[1, 2, 3], ARRAY[[1, 2], [3, 4]], '{}'::int[], ARRAY['a', NULL, 'b c', "
         "'q\"uote', 'back\\slash', '']",
         "SELECT (ARRAY[10, 20, 30])[2], (ARRAY[10, 20, 30])[2:3], array_length(ARRAY[[1], [2]], "
         "1), "
         "array_dims(ARRAY[[1, 2, 3]]), '[0:2]={7,8,9}'::int[]",
         "SELECT unnest(ARRAY['x', 'y']) AS u, generate_subscripts(ARRAY['x', 'y'], 1) AS i",
         "SELECT array_agg(id ORDER BY id), array_to_string(ARRAY[1, NULL, 3], ',', '*'), "
         "string_to_array('a,b,,c', ','), ARRAY[1, 2] || 3, 2 = ANY (ARRAY[1, 2]) FROM fx.items",
         "SELECT ARRAY[1.5, 2.25]::numeric[], ARRAY[true, false], ARRAY['2024-01-01'::date], "
         "ARRAY[ARRAY['a']]"}));
    v.push_back(simple_case(
        "bytea_hex_and_escape",
        {"SELECT '\\xdeadbeef'::bytea, 'abc\\000def'::bytea, decode('00ff10', 'hex'), ''::bytea",
         "SET bytea_output = 'escape'",
         "SELECT '\\xdeadbeef'::bytea, 'abc\\000def'::bytea, decode('5c27e9', 'hex')",
         "RESET bytea_output",
         "SELECT encode('\\x00010203'::bytea, 'base64'), encode('\\x00ff'::bytea, 'escape'), "
         "sha256('abc'), md5('abc'::bytea), get_byte('\\x1234'::bytea, 1)",
         "SELECT decode(repeat('ab', 100000), 'hex')"}));
    v.push_back(simple_case(
        "numeric_precision_and_specials",
        {"SELECT 12345678901234567890.123456789012345678901234567890::numeric * 2 AS big, "
         "1::numeric / 3 AS third, round(2.5), round(-2.5), 10::numeric ^ 100 AS googol",
         "SELECT 'NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric, 'NaN'::numeric = "
         "'NaN'::numeric, 'Infinity'::numeric > 1e1000",
         "SELECT factorial(50), sqrt(2::numeric(100, 90)), 0.000000000000000000001::numeric, "
         "-0.0::numeric, 1e-100::numeric(200, 150)",
         "SELECT 123.456::numeric(5, 1), trunc(9.99, 1), mod(10.5, 3), div(17, 5), scale(1.2300), "
         "trim_scale(1.2300), 1.5e30::numeric",
         "SELECT 'Infinity'::numeric - 'Infinity'::numeric"}));
    v.push_back(simple_case(
        "floats", {"SELECT 1e308::float8 * 10",
                   "SELECT 0.1::float8 + 0.2, '-0'::float8, 'NaN'::float4, "
                   "'-Infinity'::float8, 3.4e38::float4, 1.0e-45::float4",
                   "SET extra_float_digits = 0", "SELECT pi(), 1/3::float4, 2.0::float8 / 3",
                   "SET extra_float_digits = 3", "SELECT pi(), 1/3::float4, exp(1::float8)",
                   "RESET extra_float_digits", "SELECT 'inf'::float8, '1e-400'::float8"}));
    v.push_back(simple_case(
        "integers_and_money_and_bits",
        {"SELECT (-2147483648)::int4, 9223372036854775807::int8, (-32768)::int2, 5 / 2, -5 / 2, "
         "-5 % 3, 7 & 3, 1 << 20, ~0, 2 ^ 10",
         "SELECT 12.5::money, '-$1,234.56'::money, 10::money / 3",
         "SELECT B'1011', X'FF'::bit(8), B'1010' # B'0110', bit_count(B'1111'), "
         "'101'::varbit || '1'"}));
    v.push_back(simple_case(
        "timestamps_with_time_zones",
        {"SET TimeZone = 'UTC'",
         "SELECT '2024-03-10 01:30:00-05'::timestamptz, '2024-02-29 23:59:59.999999'::timestamp, "
         "'epoch'::timestamptz, 'infinity'::timestamptz, '-infinity'::timestamp",
         "SET TimeZone = 'America/New_York'",
         "SELECT '2024-03-10 01:30:00-05'::timestamptz, '2024-03-10 02:30'::timestamptz, "
         "'2024-11-03 01:30'::timestamptz, timezone('Asia/Kolkata', '2024-01-01 "
         "00:00+00'::timestamptz)",
         "SET TimeZone = 'Australia/Lord_Howe'", "SELECT '2024-04-07 01:45+00'::timestamptz",
         "SET TimeZone = 'Europe/Berlin'",
         "SELECT date_trunc('day', '2024-03-31 12:00+00'::timestamptz), extract(epoch FROM "
         "'2024-01-01 00:00+00'::timestamptz), to_char('2024-07-04 15:16:17+00'::timestamptz, "
         "'YYYY-MM-DD HH24:MI:SS TZ Day Month')",
         "SELECT '4713-01-01 BC'::date, '294276-12-31'::date, '0001-01-01 00:00:00 BC'::timestamp, "
         "'2024-06-15'::date + 30, '2024-06-15'::date - '2024-01-01'::date",
         "SELECT make_timestamptz(2024, 5, 6, 7, 8, 9.5, 'Asia/Tokyo'), "
         "'12:34:56.789'::time, '12:34:56+05:30'::timetz, '2024-01-01 00:00'::timestamptz AT TIME "
         "ZONE 'UTC'"}));
    v.push_back(simple_case(
        "datestyles_output",
        {"SET TimeZone = 'UTC'", "SET DateStyle = 'ISO, YMD'",
         "SELECT '2024-02-03 04:05:06+00'::timestamptz", "SET DateStyle = 'SQL, DMY'",
         "SELECT '2024-02-03 04:05:06+00'::timestamptz, '03/02/2024'::date",
         "SET DateStyle = 'Postgres, MDY'", "SELECT '2024-02-03 04:05:06+00'::timestamptz",
         "SET DateStyle = 'German'", "SELECT '2024-02-03 04:05:06+00'::timestamptz"}));
    v.push_back(simple_case(
        "intervals",
        {"SELECT '1 year 2 months 3 days 4 hours 5 minutes 6.789 seconds'::interval, "
         "'-1 day +02:00'::interval, '1.5 weeks'::interval, interval '1' month, "
         "'P1Y2M3DT4H5M6S'::interval",
         "SELECT justify_interval('35 days 25 hours'::interval), '2024-01-31'::date + interval '1 "
         "month', age('2024-03-01'::timestamp, '2023-02-28'::timestamp), extract(epoch FROM "
         "'1 day'::interval)",
         "SET IntervalStyle = 'postgres_verbose'", "SELECT '-1 year 2 days 03:04:05'::interval",
         "SET IntervalStyle = 'iso_8601'", "SELECT '-1 year 2 days 03:04:05'::interval",
         "SET IntervalStyle = 'sql_standard'", "SELECT '-1 year 2 days 03:04:05'::interval",
         "RESET IntervalStyle", "SELECT '1 century'::interval, 'nonsense'::interval"}));
    v.push_back(simple_case(
        "json_and_jsonb",
        {"SELECT '{\"b\": 1, \"a\": [1, 2, {\"c\": null}]}'::json, '{\"b\": 1, \"a\": [1, 2, "
         "{\"c\": null}]}'::jsonb, '\"ü🙂\"'::jsonb, '1e3'::jsonb, '[]'::json",
         "SELECT payload -> 'kind', payload ->> 'kind', payload @> '{\"kind\": \"fruit\"}', "
         "jsonb_typeof(payload) FROM fx.items ORDER BY id",
         "SELECT jsonb_pretty('{\"a\": {\"b\": [1, 2]}}'), jsonb_set('{\"a\": 1}', '{b}', '2'), "
         "'{\"a\": 1}'::jsonb || '{\"a\": 2, \"c\": 3}', jsonb_path_query_array('[1, 5, 10]', "
         "'$[*] ? (@ > 2)')",
         "SELECT json_agg(t ORDER BY id), jsonb_object_agg(name, price) FROM fx.items t",
         "SELECT row_to_json(r), to_jsonb(ARRAY[1, 2]), json_build_object('k', 1, 'n', NULL) FROM "
         "(SELECT 1 AS a, 'x' AS b) r",
         "SELECT * FROM jsonb_each('{\"x\": 1, \"y\": [true]}'), jsonb_array_length('[1, 2, 3]')",
         "SELECT '{\"a\": }'::jsonb", "SELECT jsonb_path_query('{}', 'strict $.missing')"}));
    v.push_back(simple_case(
        "uuid_network_and_misc",
        {"SELECT 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid, '192.168.1.5/24'::inet, "
         "'10.0.0.0/8'::cidr, '::1'::inet, '08:00:2b:01:02:03'::macaddr, "
         "host('192.168.1.5/24'::inet), '192.168.1.5'::inet << '192.168.0.0/16'::inet",
         "SELECT 'abc'::char(6) || '|', 'abc'::varchar(6), 'ab  '::char(4) = 'ab', 'x'::name, "
         "'pg_class'::regclass, 'int4'::regtype, 'upper(text)'::regprocedure",
         "SELECT true, 'yes'::bool, 'off'::bool, 't'::bool AND NULL, NOT false"}));
    v.push_back(simple_case(
        "ranges_and_multiranges",
        {"SELECT int4range(1, 10), '[2024-01-01, 2024-02-01)'::daterange, numrange(1.5, NULL), "
         "'empty'::int4range, int8range(5, 5, '[]')",
         "SELECT int4range(1, 10) @> 5, int4range(1, 5) && int4range(4, 8), int4range(1, 5) * "
         "int4range(3, 9), upper(int4range(1, 10)), isempty(int4range(3, 3))",
         "SELECT '{[1,3), [5,8)}'::int4multirange, int4multirange(int4range(1, 2), int4range(2, "
         "4)), "
         "range_agg(int4range(g, g + 1)) FROM generate_series(1, 3) g",
         "SELECT int4range(10, 1)"}));
    v.push_back(simple_case(
        "geometry_and_text_search",
        {"SELECT point(1, 2), '((0,0),(1,1))'::box, circle(point(0, 0), 2), '[(0,0),(3,4)]'::lseg, "
         "area(box(point(0, 0), point(2, 3))), point(0, 0) <-> point(3, 4)",
         "SELECT to_tsvector('english', 'The quick brown foxes jumped'), "
         "plainto_tsquery('english', 'jumping fox'), to_tsvector('english', 'foxes') @@ "
         "to_tsquery('english', 'fox'), ts_rank(to_tsvector('a b c'), to_tsquery('b'))"}));
    v.push_back(simple_case(
        "records_and_rows",
        {"SELECT ROW(1, 'a', NULL, ARRAY[1]), (1, 2) < (1, 3), (SELECT i FROM fx.items i WHERE id "
         "= 1)",
         "SELECT i.*, i FROM fx.items i WHERE id = 2",
         "SELECT * FROM (VALUES (1, 'x')) AS v(a, b) NATURAL JOIN (VALUES (1, 'x')) AS w(a, b)"}));
    v.push_back(simple_case(
        "string_functions",
        {"SELECT format('%s-%I-%L', 'a', 'Mixed Case', E'it\\'s'), quote_ident('x y'), "
         "quote_literal('q''t'), lpad('7', 3, '0'), initcap('hello wORLD'), split_part('a/b/c', "
         "'/', 2), regexp_replace('2024-01-02', '(\\d+)-(\\d+)-(\\d+)', '\\3.\\2.\\1'), "
         "regexp_matches('a1b22c333', '\\d+', 'g')",
         "SELECT string_agg(name, ' | ' ORDER BY name) FROM fx.items",
         "SELECT left('abcdef', -2), right('abcdef', 2), translate('hello', 'el', 'ip'), "
         "position('lo' IN 'hello'), overlay('Txxxxas' PLACING 'hom' FROM 2 FOR 4), "
         "starts_with('prefix', 'pre'), 'abc' LIKE 'a%', 'ABC' ILIKE 'a_c', 'abc' SIMILAR TO "
         "'(a|b)%'"}));
    v.push_back(simple_case(
        "casts_and_formatting",
        {"SELECT 1::text, '42'::int + 1, 3.7::int, '3.7'::float8::int, 1::bool, 't'::text::bool, "
         "to_char(1234567.891, '9G999G999D99'), to_number('1,234.5', '9G999D9'), "
         "to_char(-0.5, 'S9.99'), to_char(interval '25 hours', 'HH24:MI')",
         "SELECT cast('2024-05-05' AS date), '5'::numeric::money, 65::\"char\", "
         "'abc'::bytea::text, "
         "12::oid, xmin IS NOT NULL FROM fx.parents WHERE id = 1"}));
    v.push_back(simple_case(
        "sorting_collation_c",
        {"SELECT s FROM (VALUES ('b'), ('B'), ('a'), ('é'), ('Z'), ('1'), ('')) v(s) ORDER BY s",
         "SELECT s FROM (VALUES ('b'), ('B'), ('a')) v(s) ORDER BY s COLLATE \"C\" DESC"}));
    return v;
}

}  // namespace shardgate::difftest
