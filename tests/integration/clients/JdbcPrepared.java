// Real pgjdbc prepared statements through a transaction pooler: N threads, one Connection each,
// PreparedStatement objects reused so pgjdbc switches to named server statements (S_1, S_2, ...)
// after prepareThreshold (1 for half the threads, the default 5 for the rest).
//
// Run with the single-file source launcher (Debian 12: default-jdk-headless,
// libpostgresql-jdbc-java):
//   java -cp /usr/share/java/postgresql.jar JdbcPrepared.java --port P --user U --password W
//        --dbname D [--threads 50] [--rounds 300] [--deadline 75] [--min-executions 100000]
//        [--property name=value ...]  (more pgjdbc connection properties, for every connection)
// Each round runs shared statements (same text in every thread), per-thread statements and a
// mix of parameter types, in autocommit or in an explicit transaction (committed, or rolled
// back and checked), plus batches and one-off statements that pgjdbc closes (Close) once its
// small statement cache evicts them. Every result is checked. No DEALLOCATE / DISCARD: pgjdbc's
// statement cache is never broken behind its back. Prints one JSON line with the totals and the
// first error; exits 1 on any error or wrong result, 2 when the deadline passed first, 3 when
// fewer than --min-executions ran.
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

public final class JdbcPrepared {
    static final String KV = "jdbc_kv";
    static final String ITEMS = "jdbc_items";
    static final int ITEM_ROWS = 5;
    static final LocalDate DAY0 = LocalDate.of(2024, 1, 1);

    static String host = "127.0.0.1", user, password = "", dbname;
    static int port, threads = 50, rounds = 300;
    static double deadlineSeconds = 75;
    static long minExecutions = 100_000;
    static final Map<String, String> extraProperties = new HashMap<>();  // --property k=v

    // Totals over all clients, and the first error seen.
    static final LongAdder executions = new LongAdder(), transactions = new LongAdder(),
            rollbacks = new LongAdder(), batches = new LongAdder(), oneOffs = new LongAdder(),
            namedParses = new LongAdder(), namedBinds = new LongAdder(),
            closes = new LongAdder(), errors = new LongAdder(), notExist = new LongAdder(),
            alreadyExists = new LongAdder();
    static final Map<String, LongAdder> byKind = new HashMap<>();
    static final Map<String, Integer> errorKinds = new HashMap<>();
    static volatile String firstError;
    static final AtomicBoolean deadlineHit = new AtomicBoolean();
    // pgjdbc logs every frontend message at FINEST on this logger; counting the named ones shows
    // the server-side statements really were used. Kept in a static field: JUL holds loggers
    // weakly and would drop the level and handler.
    static final Logger protocolLog = Logger.getLogger("org.postgresql.core.v3.QueryExecutorImpl");

    static synchronized void error(String where, Throwable e) {
        errors.increment();
        String text = where + ": " + e.getClass().getSimpleName();
        if (e instanceof SQLException s && s.getSQLState() != null)
            text += " [" + s.getSQLState() + "]";
        text += ": " + String.valueOf(e.getMessage()).strip();
        String lower = text.toLowerCase();
        if (lower.contains("prepared statement") && lower.contains("does not exist"))
            notExist.increment();
        if (lower.contains("prepared statement") && lower.contains("already exists"))
            alreadyExists.increment();
        if (firstError == null) firstError = text;
        String kind = text.replaceAll("\\bt[0-9]+\\b", "t*").replaceAll("round [0-9]+", "round *");
        errorKinds.merge(kind.substring(0, Math.min(200, kind.length())), 1, Integer::sum);
    }

    static void check(boolean ok, String what) {
        if (!ok) throw new IllegalStateException("wrong result: " + what);
    }

    static Connection connect(String appName, Map<String, String> extra) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", password);
        p.setProperty("sslmode", "disable");
        p.setProperty("connectTimeout", "10");
        p.setProperty("socketTimeout", "60");  // a stuck proxy fails the client, not hangs it
        p.setProperty("ApplicationName", appName);
        p.putAll(extraProperties);
        p.putAll(extra);
        String url = "jdbc:postgresql://" + host + ":" + port + "/" + dbname;
        return DriverManager.getConnection(url, p);
    }

    // One client: its Connection and the statements it keeps for its whole life.
    static final class Client extends Thread {
        final int idx;
        final String kind;  // "threshold_1" or "threshold_default"
        final boolean smallCache;  // preparedStatementCacheQueries=4: evictions send Close
        final CountDownLatch ready, go;
        long namedParses, namedBinds, closes;  // counted by the log handler on this thread
        Connection conn;
        PreparedStatement plusOne, upsert, bump, readBack, items, batchHits, mineText, mineTypes;
        long expectV, expectHits;
        boolean rowExists;

        Client(int idx, CountDownLatch ready, CountDownLatch go) {
            super("jdbc-client-" + idx);
            this.idx = idx;
            this.kind = idx % 2 == 0 ? "threshold_1" : "threshold_default";
            this.smallCache = idx % 4 < 2;
            this.ready = ready;
            this.go = go;
        }

        @Override
        public void run() {
            try {
                open();
            } catch (Exception e) {
                error(kind + " t" + idx + " connect", e);
                ready.countDown();
                return;
            }
            ready.countDown();
            try {
                go.await();
                runRounds();
            } catch (Exception e) {
                error(kind + " t" + idx + " gave up", e);
            } finally {
                try {
                    conn.close();
                } catch (SQLException e) {
                    error(kind + " t" + idx + " close", e);
                }
                JdbcPrepared.namedParses.add(namedParses);
                JdbcPrepared.namedBinds.add(namedBinds);
                JdbcPrepared.closes.add(closes);
            }
        }

        void open() throws SQLException {
            Map<String, String> props = new HashMap<>();
            if (kind.equals("threshold_1")) props.put("prepareThreshold", "1");
            if (smallCache) props.put("preparedStatementCacheQueries", "4");
            conn = connect("jdbc-t" + idx, props);
            // Shared text: every client sends the same SQL under its own S_n names.
            plusOne = conn.prepareStatement("SELECT ?::int + 1");
            upsert = conn.prepareStatement("INSERT INTO " + KV + " (k, v, note) VALUES (?, 0, ?) "
                                           + "ON CONFLICT (k) DO NOTHING");
            bump = conn.prepareStatement("UPDATE " + KV + " SET v = v + ?, note = ? WHERE k = ?");
            readBack = conn.prepareStatement("SELECT v, note, hits FROM " + KV + " WHERE k = ?");
            items = conn.prepareStatement(
                    "SELECT id, name, price, added FROM " + ITEMS + " WHERE id <= ? ORDER BY id");
            batchHits = conn.prepareStatement("UPDATE " + KV + " SET hits = hits + ? WHERE k = ?");
            // Per-client text: text, int8 (sent as int4 or int8), bool, float8; numeric, date,
            // bytea, uuid.
            mineText = conn.prepareStatement("SELECT ?::text || '/t" + idx + "', ?::bigint * " + idx
                                             + ", NOT ?::boolean, ?::float8 / 2");
            mineTypes = conn.prepareStatement("SELECT ?::numeric + " + idx + ", ?::date + "
                                              + (idx % 7) + ", length(?::bytea), ?::uuid");
        }

        void runRounds() throws SQLException {
            long stopAt = System.nanoTime() + (long) (deadlineSeconds * 1e9);
            long mine = 0;
            for (int r = 0; r < rounds; r++) {
                if (System.nanoTime() > stopAt) {
                    deadlineHit.set(true);
                    break;
                }
                // Every 4th round is an explicit transaction; every 5th of those rolls back.
                boolean inTxn = r % 4 == idx % 4;
                boolean rollback = inTxn && r % 20 == (idx % 4) + 8;
                long savedV = expectV, savedHits = expectHits;
                boolean savedExists = rowExists;
                try {
                    int n;
                    if (inTxn) {
                        conn.setAutoCommit(false);
                        n = round(r);
                        if (rollback) {
                            conn.rollback();
                            conn.setAutoCommit(true);
                            expectV = savedV;
                            expectHits = savedHits;
                            rowExists = savedExists;
                            n += checkRow(r, savedExists ? null : "absent");
                            rollbacks.increment();
                        } else {
                            conn.commit();
                            conn.setAutoCommit(true);
                        }
                        transactions.increment();
                    } else {
                        n = round(r);
                    }
                    mine += n;
                    executions.add(n);
                } catch (Exception e) {
                    error(kind + " t" + idx + " round " + r, e);
                    if (conn.isClosed()) return;
                    recover();
                }
            }
            synchronized (byKind) {
                byKind.computeIfAbsent(kind, k -> new LongAdder()).add(mine);
            }
        }

        // After an error: end any transaction and re-read what the row holds.
        void recover() throws SQLException {
            if (!conn.getAutoCommit()) {
                conn.rollback();
                conn.setAutoCommit(true);
            }
            readBack.setInt(1, idx);
            try (ResultSet rs = readBack.executeQuery()) {
                rowExists = rs.next();
                expectV = rowExists ? rs.getLong(1) : 0;
                expectHits = rowExists ? rs.getLong(3) : 0;
            }
        }

        // One round of statements; returns how many executions it made.
        int round(int r) throws SQLException {
            int n = 0;
            int x = idx * 100_000 + r;
            plusOne.setInt(1, x);
            try (ResultSet rs = plusOne.executeQuery()) {
                check(rs.next() && rs.getInt(1) == x + 1 && !rs.next(), "SELECT ?::int + 1");
            }
            n++;

            upsert.setInt(1, idx);
            upsert.setString(2, "new");
            int inserted = upsert.executeUpdate();
            check(inserted == (rowExists ? 0 : 1), "INSERT count " + inserted);
            rowExists = true;
            n++;

            long step = r % 7 + 1;
            bump.setLong(1, step);
            bump.setString(2, "t" + idx + "r" + r);
            bump.setInt(3, idx);
            check(bump.executeUpdate() == 1, "UPDATE count");
            expectV += step;
            n++;

            if (r % 5 == 2) {  // a batch: three Bind/Execute, one Sync
                for (int h = 1; h <= 3; h++) {
                    batchHits.setLong(1, h);
                    batchHits.setInt(2, idx);
                    batchHits.addBatch();
                }
                int[] counts = batchHits.executeBatch();
                check(counts.length == 3 && counts[0] == 1 && counts[1] == 1 && counts[2] == 1,
                      "batch counts");
                expectHits += 6;
                batches.increment();
                n += 3;
            }

            n += checkRow(r, "t" + idx + "r" + r);
            n += checkItems(r % ITEM_ROWS + 1);
            n += checkMine(r);
            if (r % 20 == idx % 20) n += oneOff(r);
            return n;
        }

        // The client's row: v, hits and note as expected (note "absent": no row at all).
        int checkRow(int r, String note) throws SQLException {
            readBack.setInt(1, idx);
            try (ResultSet rs = readBack.executeQuery()) {
                if ("absent".equals(note)) {
                    check(!rs.next(), "row after rollback of its INSERT");
                } else {
                    check(rs.next(), "row exists");
                    check(rs.getLong(1) == expectV, "v " + rs.getLong(1) + " != " + expectV);
                    check(note == null || note.equals(rs.getString(2)), "note " + rs.getString(2));
                    check(rs.getLong(3) == expectHits, "hits " + rs.getLong(3));
                    check(!rs.next(), "one row");
                }
            }
            return 1;
        }

        int checkItems(int limit) throws SQLException {
            items.setInt(1, limit);
            int rows = 0;
            try (ResultSet rs = items.executeQuery()) {
                while (rs.next()) {
                    rows++;
                    check(rs.getInt(1) == rows, "item id");
                    check(("item-" + rows).equals(rs.getString(2)), "item name");
                    check(rs.getBigDecimal(3).compareTo(new BigDecimal("1.25").multiply(
                                  BigDecimal.valueOf(rows))) == 0,
                          "item price");
                    check(rs.getObject(4, LocalDate.class).equals(DAY0.plusDays(rows)),
                          "item date");
                }
            }
            check(rows == limit, "items: " + rows + " rows, want " + limit);
            return 1;
        }

        int checkMine(int r) throws SQLException {
            long big = (long) r * 3_000_000_000L;
            mineText.setString(1, "s" + r);
            // Ten rounds as int8, ten as int4: pgjdbc re-parses under a new name when the
            // parameter types change.
            if ((r / 10) % 2 == 0) mineText.setLong(2, big);
            else mineText.setInt(2, r);
            mineText.setBoolean(3, r % 2 == 0);
            mineText.setDouble(4, r + 0.5);
            try (ResultSet rs = mineText.executeQuery()) {
                check(rs.next(), "mineText row");
                check(rs.getString(1).equals("s" + r + "/t" + idx), "mineText text");
                check(rs.getLong(2) == ((r / 10) % 2 == 0 ? big : r) * idx, "mineText bigint");
                check(rs.getBoolean(3) == (r % 2 != 0), "mineText bool");
                check(rs.getDouble(4) == (r + 0.5) / 2, "mineText float8");
            }
            UUID id = new UUID(idx, r);
            mineTypes.setBigDecimal(1, new BigDecimal(r + ".25"));
            mineTypes.setObject(2, DAY0.plusDays(r));
            mineTypes.setBytes(3, new byte[r % 16]);
            mineTypes.setObject(4, id);
            try (ResultSet rs = mineTypes.executeQuery()) {
                check(rs.next(), "mineTypes row");
                check(rs.getBigDecimal(1).compareTo(new BigDecimal(r + ".25").add(
                              BigDecimal.valueOf(idx))) == 0,
                      "mineTypes numeric");
                check(rs.getObject(2, LocalDate.class).equals(DAY0.plusDays(r + idx % 7)),
                      "mineTypes date");
                check(rs.getInt(3) == r % 16, "mineTypes bytea length");
                check(id.equals(rs.getObject(4, UUID.class)), "mineTypes uuid");
            }
            return 2;
        }

        // A statement used six times (named from the 1st or the 5th run) and closed; with the
        // small cache pgjdbc later evicts it and sends Close. Even clients share the text.
        int oneOff(int r) throws SQLException {
            String sql = "SELECT ?::int * 2 + " + r + (idx % 2 == 0 ? "" : " /* t" + idx + " */");
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                for (int i = 0; i < 6; i++) {
                    ps.setInt(1, idx + i);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next() && rs.getInt(1) == (idx + i) * 2 + r, "one-off");
                    }
                }
            }
            oneOffs.increment();
            return 6;
        }
    }

    static void setup() throws SQLException {
        try (Connection c = connect("jdbc-setup", Map.of()); Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS " + KV + ", " + ITEMS);
            s.execute("CREATE TABLE " + KV + " (k int PRIMARY KEY, v bigint NOT NULL, "
                      + "note text NOT NULL, hits bigint NOT NULL DEFAULT 0)");
            s.execute("CREATE TABLE " + ITEMS + " (id int PRIMARY KEY, name text NOT NULL, "
                      + "price numeric(8, 2) NOT NULL, added date NOT NULL)");
            s.execute("INSERT INTO " + ITEMS + " SELECT g, 'item-' || g, 1.25 * g, "
                      + "date '2024-01-01' + g FROM generate_series(1, " + ITEM_ROWS + ") g");
        }
    }

    static void countProtocolMessages() {
        protocolLog.setLevel(Level.FINEST);
        protocolLog.setUseParentHandlers(false);
        protocolLog.addHandler(new Handler() {
            @Override
            public void publish(LogRecord rec) {
                if (!(Thread.currentThread() instanceof Client c)) return;
                String m = rec.getMessage();
                if (m == null) return;
                if (m.startsWith(" FE=> Parse(stmt=S_")) c.namedParses++;
                else if (m.startsWith(" FE=> Bind(stmt=S_")) c.namedBinds++;
                else if (m.startsWith(" FE=> CloseStatement(")) c.closes++;
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        });
    }

    static void parseArgs(String[] argv) {
        for (int i = 0; i + 1 < argv.length; i += 2) {
            String v = argv[i + 1];
            switch (argv[i]) {
                case "--host" -> host = v;
                case "--port" -> port = Integer.parseInt(v);
                case "--user" -> user = v;
                case "--password" -> password = v;
                case "--dbname" -> dbname = v;
                case "--threads" -> threads = Integer.parseInt(v);
                case "--rounds" -> rounds = Integer.parseInt(v);
                case "--deadline" -> deadlineSeconds = Double.parseDouble(v);
                case "--min-executions" -> minExecutions = Long.parseLong(v);
                case "--property" -> extraProperties.put(v.substring(0, v.indexOf('=')),
                                                         v.substring(v.indexOf('=') + 1));
                default -> throw new IllegalArgumentException("unknown option " + argv[i]);
            }
        }
        if (argv.length % 2 != 0 || port == 0 || user == null || dbname == null)
            throw new IllegalArgumentException(
                    "usage: JdbcPrepared --port P --user U --dbname D [--password W] [--host H] "
                    + "[--threads N] [--rounds N] [--deadline S] [--min-executions N] "
                    + "[--property name=value]");
    }

    // Just enough JSON for the report: maps, strings, numbers, booleans, null.
    static String json(Object o) {
        if (o == null) return "null";
        if (o instanceof Map<?, ?> m) {
            StringBuilder b = new StringBuilder("{");
            m.forEach((k, v) -> b.append(b.length() == 1 ? "" : ", ").append(json(k)).append(": ")
                                       .append(json(v)));
            return b.append('}').toString();
        }
        if (!(o instanceof String s)) return String.valueOf(o);
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            if (ch == '"' || ch == '\\') b.append('\\').append(ch);
            else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
            else b.append(ch);
        }
        return b.append('"').toString();
    }

    public static void main(String[] argv) throws Exception {
        parseArgs(argv);
        long started = System.nanoTime();
        countProtocolMessages();
        try {
            setup();
        } catch (SQLException e) {
            error("setup", e);
        }
        if (errors.sum() == 0) {
            CountDownLatch ready = new CountDownLatch(threads), go = new CountDownLatch(1);
            List<Client> clients = new ArrayList<>();
            for (int i = 0; i < threads; i++) clients.add(new Client(i, ready, go));
            clients.forEach(Thread::start);
            if (!ready.await(60, TimeUnit.SECONDS))
                error("connect", new IllegalStateException("clients not connected after 60 s"));
            go.countDown();  // all connected: start together
            for (Client c : clients) c.join();
        }
        long total = executions.sum();
        Map<String, Object> byClient = new LinkedHashMap<>();
        for (String k : List.of("threshold_1", "threshold_default"))
            byClient.put(k, byKind.containsKey(k) ? byKind.get(k).sum() : 0);
        Map<String, Object> kinds = new LinkedHashMap<>();
        synchronized (JdbcPrepared.class) {
            errorKinds.entrySet().stream()
                    .sorted((a, b) -> b.getValue() - a.getValue())
                    .limit(5)
                    .forEach(e -> kinds.put(e.getKey(), e.getValue()));
        }
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("ok", errors.sum() == 0 && !deadlineHit.get() && total >= minExecutions);
        report.put("executions", total);
        report.put("by_client", byClient);
        report.put("clients", threads);
        report.put("transactions", transactions.sum());
        report.put("rollbacks", rollbacks.sum());
        report.put("batches", batches.sum());
        report.put("one_offs", oneOffs.sum());
        report.put("named_parses", namedParses.sum());  // Parse(stmt=S_n) sent by the clients
        report.put("named_binds", namedBinds.sum());  // Bind(stmt=S_n)
        report.put("closes", closes.sum());  // Close(S_n) of evicted statements
        report.put("errors", errors.sum());
        report.put("not_exist_errors", notExist.sum());
        report.put("already_exists_errors", alreadyExists.sum());
        report.put("first_error", firstError);
        report.put("error_kinds", kinds);
        report.put("deadline_hit", deadlineHit.get());
        report.put("seconds", Math.round((System.nanoTime() - started) / 1e7) / 100.0);
        Map<String, Object> versions = new LinkedHashMap<>();
        versions.put("pgjdbc", org.postgresql.Driver.class.getPackage().getImplementationVersion());
        versions.put("java", System.getProperty("java.version"));
        report.put("versions", versions);
        System.out.println(json(report));
        System.out.flush();
        if (errors.sum() > 0) System.exit(1);
        if (deadlineHit.get()) System.exit(2);
        System.exit(total >= minExecutions ? 0 : 3);
    }
}
