#!/usr/bin/env python3
"""Real Python drivers through a transaction pooler, all at once: psycopg 3 with
prepare_threshold=0 (prepare on first use) and with the default threshold, and asyncpg (named
prepared statements with its statement cache ON, a Pool and plain connections, conn.prepare()).

Each client runs a small set of parameterized statements many times, in and out of explicit
transactions, and checks every result. Prints one JSON line with the totals and the first error;
exits 1 on any error or wrong result, 2 when the deadline passed first.
Standard library + psycopg + asyncpg only (Debian 12: python3-psycopg, python3-asyncpg).
"""

import argparse
import asyncio
import collections
import json
import sys
import threading
import time

import asyncpg
import psycopg

TABLE = "py_prepared_kv"


class Stats:
    """Counters shared by the psycopg threads and the asyncpg tasks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.executions = collections.Counter()  # per client kind
        self.transactions = 0
        self.errors = 0
        self.first_error = None
        self.error_kinds = collections.Counter()
        self.deadline_hit = False

    def add(self, kind, executions, in_transaction=False):
        with self.lock:
            self.executions[kind] += executions
            self.transactions += 1 if in_transaction else 0

    def error(self, kind, what, exc=None):
        text = what
        if exc is not None:
            state = getattr(exc, "sqlstate", None)
            text += f": {type(exc).__name__}"
            text += f" [{state}]" if state else ""
            text += f": {str(exc).strip()}"
        with self.lock:
            self.errors += 1
            msg = f"{kind}: {text}"
            if self.first_error is None:
                self.first_error = msg
            self.error_kinds[msg[:200]] += 1


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", default="")
    p.add_argument("--dbname", required=True)
    p.add_argument("--psycopg-prepared", type=int, default=17, help="prepare_threshold=0 clients")
    p.add_argument("--psycopg-default", type=int, default=8, help="default threshold clients")
    p.add_argument("--asyncpg-pool", type=int, default=15, help="asyncpg Pool size (and tasks)")
    p.add_argument("--asyncpg-conns", type=int, default=10, help="plain asyncpg connections")
    p.add_argument("--rounds", type=int, default=500, help="rounds per client")
    p.add_argument("--deadline", type=float, default=80.0, help="seconds; stop early after it")
    return p.parse_args()


# --- psycopg 3 (threads, one connection each) -------------------------------------------------


def psycopg_round(conn, key, r, tag, expect):
    """The statement set: 4 executions, plus 3 in a pipelined executemany every 10th round.
    Returns (executions, new expected value)."""
    n = 0
    conn.execute(f"INSERT INTO {TABLE} VALUES (%s, 0) ON CONFLICT (k) DO NOTHING", (key,))
    n += 1
    cur = conn.execute(f"UPDATE {TABLE} SET v = v + 1 WHERE k = %s", (key,))
    n += 1
    if cur.rowcount != 1:
        raise AssertionError(f"UPDATE touched {cur.rowcount} rows")
    expect += 1
    got = conn.execute(f"SELECT v FROM {TABLE} WHERE k = %s", (key,)).fetchone()[0]
    n += 1
    if got != expect:
        raise AssertionError(f"SELECT v: got {got}, want {expect}")
    # Different Python ints dump as int2/int4/int8: several prepared variants of one query.
    x = r * (1 if r % 3 else 100003)
    row = conn.execute("SELECT %s * 2, %s::text || '/' || %s", (x, tag, r)).fetchone()
    n += 1
    if row != (x * 2, f"{tag}/{r}"):
        raise AssertionError(f"SELECT x*2: got {row!r}, want {(x * 2, f'{tag}/{r}')!r}")
    if r % 10 == 5:  # psycopg runs executemany in pipeline mode: one Sync for all three
        with conn.cursor() as c:
            c.executemany(f"UPDATE {TABLE} SET v = v + %s WHERE k = %s", [(0, key)] * 3)
        n += 3
    return n, expect


def psycopg_client(args, stats, kind, idx, threshold, autocommit, stop_at):
    key = idx
    tag = f"{kind}{idx}"
    expect = 0
    try:
        kwargs = {} if threshold is None else {"prepare_threshold": threshold}
        conn = psycopg.connect(
            host=args.host, port=args.port, user=args.user, password=args.password,
            dbname=args.dbname, sslmode="disable", connect_timeout=10,
            autocommit=autocommit, **kwargs)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        stats.error(kind, f"client {idx}: connect", e)
        return
    try:
        for r in range(args.rounds):
            if time.monotonic() > stop_at:
                stats.deadline_hit = True
                break
            in_txn = r % 4 == 0
            try:
                if in_txn:
                    with conn.transaction():
                        n, expect = psycopg_round(conn, key, r, tag, expect)
                else:
                    n, expect = psycopg_round(conn, key, r, tag, expect)
                    if not autocommit:
                        conn.commit()
                stats.add(kind, n, in_txn or not autocommit)
            except Exception as e:  # noqa: BLE001
                stats.error(kind, f"client {idx} round {r}", e)
                if conn.closed:
                    return
                conn.rollback()
                expect = conn.execute(f"SELECT v FROM {TABLE} WHERE k = %s",
                                      (key,)).fetchone()[0]
                if not autocommit:
                    conn.rollback()
    except Exception as e:  # noqa: BLE001 - the client could not recover: give up on it
        stats.error(kind, f"client {idx} gave up", e)
    finally:
        conn.close()


# --- asyncpg (one event loop: a Pool and plain connections) -----------------------------------


async def asyncpg_round(conn, key, r, tag, expect):
    """The statement set through asyncpg's statement cache: 4 executions."""
    await conn.execute(f"INSERT INTO {TABLE} VALUES ($1, 0) ON CONFLICT (k) DO NOTHING", key)
    status = await conn.execute(f"UPDATE {TABLE} SET v = v + 1 WHERE k = $1", key)
    if status != "UPDATE 1":
        raise AssertionError(f"UPDATE status {status!r}")
    expect += 1
    got = await conn.fetchval(f"SELECT v FROM {TABLE} WHERE k = $1", key)
    if got != expect:
        raise AssertionError(f"fetchval v: got {got}, want {expect}")
    rows = await conn.fetch("SELECT g, $2::text FROM generate_series(1, $1::int) g", r % 4 + 1,
                            tag)
    want = [(g, tag) for g in range(1, r % 4 + 2)]
    if [tuple(row) for row in rows] != want:
        raise AssertionError(f"fetch: got {rows!r}, want {want!r}")
    return 4, expect


async def asyncpg_fetch_v(conn, key):
    return await conn.fetchval(f"SELECT v FROM {TABLE} WHERE k = $1", key) or 0


async def asyncpg_pool_client(args, stats, pool, idx, stop_at):
    """A request handler's life: acquire per round (the Pool resets the connection on release)."""
    kind = "asyncpg_pool"
    key, tag, expect = 1000 + idx, f"pool{idx}", 0
    for r in range(args.rounds):
        if time.monotonic() > stop_at:
            stats.deadline_hit = True
            return
        in_txn = r % 4 == 0
        try:
            async with pool.acquire(timeout=30) as conn:
                if in_txn:
                    async with conn.transaction():
                        n, expect = await asyncpg_round(conn, key, r, tag, expect)
                else:
                    n, expect = await asyncpg_round(conn, key, r, tag, expect)
            stats.add(kind, n, in_txn)
        except Exception as e:  # noqa: BLE001
            stats.error(kind, f"task {idx} round {r}", e)
            try:
                async with pool.acquire(timeout=30) as conn:
                    expect = await asyncpg_fetch_v(conn, key)
            except Exception:  # noqa: BLE001
                return


async def asyncpg_conn_client(args, stats, idx, stop_at):
    """A plain connection: cached statements plus explicit conn.prepare() (kept and one-off)."""
    kind = "asyncpg_conn"
    key, tag, expect = 2000 + idx, f"conn{idx}", 0
    try:
        conn = await asyncpg.connect(host=args.host, port=args.port, user=args.user,
                                     password=args.password, database=args.dbname, ssl=False,
                                     timeout=10)
    except Exception as e:  # noqa: BLE001
        stats.error(kind, f"conn {idx}: connect", e)
        return
    try:
        triple = await conn.prepare("SELECT $1::bigint * 3, $2::text")
        for r in range(args.rounds):
            if time.monotonic() > stop_at:
                stats.deadline_hit = True
                return
            in_txn = r % 4 == 1
            try:
                if in_txn:
                    async with conn.transaction():
                        n, expect = await asyncpg_round(conn, key, r, tag, expect)
                else:
                    n, expect = await asyncpg_round(conn, key, r, tag, expect)
                row = await triple.fetchrow(r, tag)
                n += 1
                if tuple(row) != (r * 3, tag):
                    raise AssertionError(f"prepared fetchrow: got {row!r}")
                if r % 20 == 7:  # a one-off statement: closed by asyncpg once collected
                    once = await conn.prepare(f"SELECT $1::int + {r}")
                    got = await once.fetchval(idx)
                    n += 1
                    if got != idx + r:
                        raise AssertionError(f"one-off prepare: got {got}")
                    del once
                stats.add(kind, n, in_txn)
            except Exception as e:  # noqa: BLE001
                stats.error(kind, f"conn {idx} round {r}", e)
                if conn.is_closed():
                    return
                try:
                    expect = await asyncpg_fetch_v(conn, key)
                except Exception:  # noqa: BLE001
                    return
    finally:
        await conn.close()


async def asyncpg_main(args, stats, stop_at):
    tasks = []
    pool = None
    if args.asyncpg_pool > 0:
        try:
            pool = await asyncpg.create_pool(
                host=args.host, port=args.port, user=args.user, password=args.password,
                database=args.dbname, ssl=False, timeout=10, min_size=args.asyncpg_pool,
                max_size=args.asyncpg_pool)
        except Exception as e:  # noqa: BLE001
            stats.error("asyncpg_pool", "create_pool", e)
        if pool is not None:
            tasks += [asyncpg_pool_client(args, stats, pool, i, stop_at)
                      for i in range(args.asyncpg_pool)]
    tasks += [asyncpg_conn_client(args, stats, i, stop_at) for i in range(args.asyncpg_conns)]
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, BaseException):
            stats.error("asyncpg", "task gave up", result)
    if pool is not None:
        try:
            await asyncio.wait_for(pool.close(), 10)
        except Exception as e:  # noqa: BLE001
            stats.error("asyncpg_pool", "close", e)
            pool.terminate()


# --- setup and totals -------------------------------------------------------------------------


def setup(args):
    with psycopg.connect(host=args.host, port=args.port, user=args.user, password=args.password,
                         dbname=args.dbname, sslmode="disable", connect_timeout=10,
                         autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (k int PRIMARY KEY, v bigint NOT NULL)")


def main():
    args = parse_args()
    stats = Stats()
    started = time.monotonic()
    stop_at = started + args.deadline
    try:
        setup(args)
    except Exception as e:  # noqa: BLE001
        stats.error("setup", "create table", e)
    threads = []
    if stats.errors == 0:
        plan = [("psycopg_prepared", 0)] * args.psycopg_prepared
        plan += [("psycopg_default", None)] * args.psycopg_default
        for i, (kind, threshold) in enumerate(plan):
            autocommit = i % 3 != 2  # a third commit themselves (psycopg's default mode)
            t = threading.Thread(target=psycopg_client,
                                 args=(args, stats, kind, i, threshold, autocommit, stop_at))
            t.start()
            threads.append(t)
        try:
            asyncio.run(asyncpg_main(args, stats, stop_at))
        except Exception as e:  # noqa: BLE001
            stats.error("asyncpg", "event loop", e)
    for t in threads:
        t.join()
    total = sum(stats.executions.values())
    report = {
        "ok": stats.errors == 0 and not stats.deadline_hit,
        "executions": total,
        "by_client": dict(sorted(stats.executions.items())),
        "transactions": stats.transactions,
        "clients": (args.psycopg_prepared + args.psycopg_default + args.asyncpg_pool +
                    args.asyncpg_conns),
        "errors": stats.errors,
        "first_error": stats.first_error,
        "error_kinds": dict(stats.error_kinds.most_common(5)),
        "deadline_hit": stats.deadline_hit,
        "seconds": round(time.monotonic() - started, 2),
        "versions": {"psycopg": psycopg.__version__, "asyncpg": asyncpg.__version__},
    }
    print(json.dumps(report), flush=True)
    if stats.errors:
        return 1
    return 2 if stats.deadline_hit else 0


if __name__ == "__main__":
    sys.exit(main())
