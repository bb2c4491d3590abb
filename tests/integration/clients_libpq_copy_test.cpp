// libpq COPY through shardgate: 10 MB in and out in 3 formats, aborts, a cancel, a 20 MB bytea.
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client_fixture.hpp"
#include "shardgate/testsupport/testsupport.hpp"

using namespace shardgate::testsupport;
using namespace client_tests;
using namespace std::chrono_literals;

namespace {

// FNV-1a: a checksum to compare megabytes without printing them on a mismatch.
std::uint64_t fnv1a(const std::string& s) {
    std::uint64_t h = 14695981039346656037ULL;
    for (unsigned char ch : s)
        h = (h ^ ch) * 1099511628211ULL;
    return h;
}

// Deterministic pseudo-random bytes.
std::string random_bytes(std::size_t n, std::uint64_t seed) {
    std::string s(n, '\0');
    for (auto& ch : s) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ch = static_cast<char>(seed >> 56);
    }
    return s;
}

// About `bytes` of COPY text rows "id\tpayload\n", already in the form COPY TO writes them
// (escaped tabs and backslashes, some NULLs and empty strings).
std::string copy_text_rows(std::size_t bytes, long& rows) {
    static const std::string alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789,\"'";
    std::string out;
    out.reserve(bytes + 256);
    const std::string noise = random_bytes(bytes, 42);
    rows = 0;
    std::size_t pos = 0;
    while (out.size() < bytes) {
        ++rows;
        out += std::to_string(rows) + "\t";
        if (rows % 1000 == 0) {
            out += "\\N";
        } else if (rows % 1000 != 1) {
            const std::size_t len = 40 + static_cast<unsigned char>(noise[pos++ % bytes]) % 80;
            for (std::size_t i = 0; i < len; ++i) {
                const auto c = static_cast<unsigned char>(noise[pos++ % bytes]);
                if (c < 3) {
                    out += c == 0 ? "\\t" : c == 1 ? "\\\\" : "\\n";
                } else {
                    out += alphabet[c % alphabet.size()];
                }
            }
        }
        out += "\n";
    }
    return out;
}

struct copy_out {
    std::string data;
    std::string status;  // "PGRES_COMMAND_OK COPY n" or the error
};

copy_out copy_to(PGconn* c, const std::string& sql) {
    copy_out out;
    result_ptr r = wrap(PQexec(c, sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_COPY_OUT) {
        out.status = std::string("not COPY OUT: ") + PQresultErrorMessage(r.get());
        return out;
    }
    char* buf = nullptr;
    int n;
    while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
        out.data.append(buf, static_cast<std::size_t>(n));
        PQfreemem(buf);
    }
    if (n == -2) out.status = std::string("PQgetCopyData: ") + PQerrorMessage(c);
    r = wrap(PQgetResult(c));
    out.status += std::string(PQresStatus(PQresultStatus(r.get()))) + " " + PQcmdStatus(r.get()) +
                  PQresultErrorMessage(r.get());
    while (PGresult* extra = PQgetResult(c))
        PQclear(extra);
    return out;
}

// COPY ... FROM STDIN with `data` sent in `chunk`-byte pieces (not aligned to rows); the final
// result as "STATUS TAG" or "STATUS sqlstate message".
std::string copy_from(PGconn* c, const std::string& sql, const std::string& data, std::size_t chunk,
                      const char* abort_message = nullptr) {
    result_ptr r = wrap(PQexec(c, sql.c_str()));
    if (PQresultStatus(r.get()) != PGRES_COPY_IN)
        return std::string("not COPY IN: ") + PQresultErrorMessage(r.get());
    for (std::size_t at = 0; at < data.size(); at += chunk) {
        const std::size_t n = std::min(chunk, data.size() - at);
        if (PQputCopyData(c, data.data() + at, static_cast<int>(n)) != 1)
            return std::string("PQputCopyData failed: ") + PQerrorMessage(c);
    }
    if (PQputCopyEnd(c, abort_message) != 1)
        return std::string("PQputCopyEnd failed: ") + PQerrorMessage(c);
    r = wrap(PQgetResult(c));
    std::string s = PQresStatus(PQresultStatus(r.get()));
    s += PQresultStatus(r.get()) == PGRES_COMMAND_OK
             ? " " + std::string(PQcmdStatus(r.get()))
             : " " + sqlstate(r.get()) + " " + PQresultErrorMessage(r.get());
    while (PGresult* extra = PQgetResult(c))
        PQclear(extra);
    return s;
}

}  // namespace

TEST_CASE("COPY FROM STDIN and TO STDOUT, 10 MB in text, csv and binary") {
    fixture f;
    pg_connection c(f.proxy_conninfo());
    pg_connection direct(f.direct_conninfo());
    c.exec("CREATE TABLE big (id int PRIMARY KEY, payload text)");
    c.exec("CREATE TABLE big_csv (LIKE big); CREATE TABLE big_bin (LIKE big)");

    long rows = 0;
    const std::string text = copy_text_rows(10 << 20, rows);
    const std::string tag = "PGRES_COMMAND_OK COPY " + std::to_string(rows);
    MESSAGE(rows << " rows, " << text.size() << " bytes of COPY text");
    CHECK(copy_from(c.native(), "COPY big FROM STDIN", text, 65521) == tag);

    const char* const formats[] = {"text", "csv", "binary"};
    std::vector<copy_out> outs;
    for (const std::string format : formats) {
        CAPTURE(format);
        const std::string sql =
            std::string("COPY (SELECT * FROM big ORDER BY id) TO STDOUT (FORMAT ") + format + ")";
        copy_out p = copy_to(c.native(), sql);
        copy_out d = copy_to(direct.native(), sql);
        CHECK(p.status == tag);
        CHECK(d.status == tag);
        CHECK(p.data.size() == d.data.size());
        CHECK(fnv1a(p.data) == fnv1a(d.data));
        outs.push_back(std::move(p));
    }
    CHECK(outs[0].data.size() == text.size());
    CHECK(fnv1a(outs[0].data) == fnv1a(text));  // the text rows were already canonical

    // The csv and binary streams loaded back give the same table.
    CHECK(copy_from(c.native(), "COPY big_csv FROM STDIN (FORMAT csv)", outs[1].data, 100000) ==
          tag);
    CHECK(copy_from(c.native(), "COPY big_bin FROM STDIN (FORMAT binary)", outs[2].data, 4093) ==
          tag);
    for (const std::string table : {"big_csv", "big_bin"}) {
        CAPTURE(table);
        copy_out back = copy_to(
            c.native(), std::string("COPY (SELECT * FROM ") + table + " ORDER BY id) TO STDOUT");
        CHECK(back.status == tag);
        CHECK(fnv1a(back.data) == fnv1a(text));
    }
    CHECK(direct.query_value("SELECT count(*) FROM big_bin WHERE payload IS NULL") ==
          std::to_string(rows / 1000));
}

TEST_CASE("COPY FROM STDIN: aborted by the client, failing on bad data; the connection lives") {
    fixture f;
    pg_connection proxy(f.proxy_conninfo());
    pg_connection direct(f.direct_conninfo());
    proxy.exec("CREATE TABLE t (id int, v text)");
    long rows = 0;
    const std::string data = copy_text_rows(2 << 20, rows);

    std::string bad = data;
    std::size_t row11 = 0;
    for (int i = 0; i < 10; ++i)
        row11 = bad.find('\n', row11) + 1;
    bad.replace(row11, bad.find('\t', row11) - row11, "eleven");

    // The same steps directly and through shardgate give the same transcript.
    auto run = [&](pg_connection& c) {
        std::vector<std::string> t;
        PGconn* pc = c.native();
        // PQputCopyEnd with an error message: CopyFail.
        t.push_back(copy_from(pc, "COPY t FROM STDIN", data, 8192, "client gave up"));
        t.push_back(c.query_value("SELECT count(*) FROM t"));
        t.push_back(std::to_string(PQtransactionStatus(pc)));
        // The same inside a transaction: it is aborted, ROLLBACK brings it back.
        c.exec("BEGIN");
        t.push_back(copy_from(pc, "COPY t FROM STDIN", data.substr(0, 1000), 100, "again"));
        t.push_back(std::to_string(PQtransactionStatus(pc)));
        c.exec("ROLLBACK");
        // Bad data in row 11: the server fails while the client still sends megabytes.
        t.push_back(copy_from(pc, "COPY t FROM STDIN", bad, 65536));
        t.push_back(c.query_value("SELECT count(*) FROM t"));
        t.push_back(copy_from(pc, "COPY t FROM STDIN", data, 65536));
        c.exec("TRUNCATE t");
        return t;
    };
    const std::vector<std::string> d = run(direct);
    const std::vector<std::string> p = run(proxy);
    CHECK(p == d);
    REQUIRE(p.size() == 8);
    CHECK(p[0].rfind("PGRES_FATAL_ERROR 57014 ERROR:  COPY from stdin failed: client gave up\n",
                     0) == 0);
    CHECK(p[1] == "0");
    CHECK(p[2] == std::to_string(PQTRANS_IDLE));
    CHECK(p[3].rfind("PGRES_FATAL_ERROR 57014 ERROR:  COPY from stdin failed: again\n", 0) == 0);
    CHECK(p[4] == std::to_string(PQTRANS_INERROR));
    CHECK(p[5] ==
          "PGRES_FATAL_ERROR 22P02 ERROR:  invalid input syntax for type integer: \"eleven\"\n"
          "CONTEXT:  COPY t, line 11, column id: \"eleven\"\n");
    CHECK(p[6] == "0");
    CHECK(p[7] == "PGRES_COMMAND_OK COPY " + std::to_string(rows));
}

TEST_CASE("COPY TO STDOUT cancelled mid-stream: 57014, then the connection is usable") {
    fixture f;
    for (const std::string& conninfo : {f.proxy_conninfo(), f.direct_conninfo()}) {
        const bool via_proxy = conninfo == f.proxy_conninfo();
        CAPTURE(via_proxy);
        pg_connection c(conninfo);
        PGconn* pc = c.native();
        result_ptr r = wrap(PQexec(
            pc,
            "COPY (SELECT g, repeat('x', 1000) FROM generate_series(1, 50000000) g) TO STDOUT"));
        REQUIRE(PQresultStatus(r.get()) == PGRES_COPY_OUT);
        std::size_t bytes = 0;
        char* buf = nullptr;
        int n = 0;
        while (bytes < (4 << 20) && (n = PQgetCopyData(pc, &buf, 0)) > 0) {
            bytes += static_cast<std::size_t>(n);
            PQfreemem(buf);
        }
        PGcancel* cancel = PQgetCancel(pc);
        char err[256];
        CHECK(PQcancel(cancel, err, sizeof err) == 1);
        PQfreeCancel(cancel);
        while ((n = PQgetCopyData(pc, &buf, 0)) > 0) {
            bytes += static_cast<std::size_t>(n);
            PQfreemem(buf);
        }
        CHECK(n == -1);
        CHECK(bytes < (1000ULL << 20));  // stopped long before the end (50 GB)
        r = wrap(PQgetResult(pc));
        CHECK(PQresultStatus(r.get()) == PGRES_FATAL_ERROR);
        CHECK(sqlstate(r.get()) == "57014");
        CHECK(std::string(PQresultErrorMessage(r.get())) ==
              "ERROR:  canceling statement due to user request\n");
        CHECK(PQgetResult(pc) == nullptr);
        CHECK(c.query_value("SELECT 'usable'") == "usable");
    }
}

TEST_CASE("a 20 MB bytea round trip, binary and text") {
    fixture f;
    pg_connection c(f.proxy_conninfo());
    pg_connection direct(f.direct_conninfo());
    PGconn* pc = c.native();
    c.exec("CREATE TABLE blobs (id int PRIMARY KEY, b bytea)");
    const std::string blob = random_bytes(20 << 20, 7);
    const char* values[] = {blob.data()};
    const int lengths[] = {static_cast<int>(blob.size())};
    const int formats[] = {1};
    const Oid types[] = {17};

    // Binary in, binary out.
    result_ptr r = wrap(PQexecParams(pc, "SELECT $1::bytea, length($1::bytea)", 1, types, values,
                                     lengths, formats, 1));
    INFO(PQresultErrorMessage(r.get()));
    REQUIRE(PQresultStatus(r.get()) == PGRES_TUPLES_OK);
    REQUIRE(PQgetlength(r.get(), 0, 0) == static_cast<int>(blob.size()));
    CHECK(fnv1a(std::string(PQgetvalue(r.get(), 0, 0), blob.size())) == fnv1a(blob));
    r.reset();

    // Stored through shardgate, checked directly; read back as text (hex, 40 MB).
    r = wrap(PQexecParams(pc, "INSERT INTO blobs VALUES (1, $1)", 1, types, values, lengths,
                          formats, 0));
    CHECK(std::string(PQcmdStatus(r.get())) == "INSERT 0 1");
    const std::string md5 = direct.query_value("SELECT md5(b) FROM blobs WHERE id = 1");
    CHECK(c.query_value("SELECT md5(b) FROM blobs WHERE id = 1") == md5);
    r = wrap(PQexec(pc, "SELECT b FROM blobs WHERE id = 1"));
    REQUIRE(PQresultStatus(r.get()) == PGRES_TUPLES_OK);
    REQUIRE(PQgetlength(r.get(), 0, 0) == static_cast<int>(2 + 2 * blob.size()));
    std::size_t unescaped_len = 0;
    unsigned char* raw = PQunescapeBytea(
        reinterpret_cast<const unsigned char*>(PQgetvalue(r.get(), 0, 0)), &unescaped_len);
    REQUIRE(raw != nullptr);
    CHECK(unescaped_len == blob.size());
    CHECK(fnv1a(std::string(reinterpret_cast<char*>(raw), unescaped_len)) == fnv1a(blob));
    PQfreemem(raw);
    CHECK(c.query_value("SELECT 'still usable'") == "still usable");
}
