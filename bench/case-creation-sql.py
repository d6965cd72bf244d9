#!/usr/bin/env python3
"""Plain-SQL twin of POST /api/v1/cases on SQLite, for the benchmark suite.

Usage: bench/case-creation-sql.py DB PERSON CONSULATE OFFICER TYPE CLIENTS SECONDS

Each client (a thread with its own connection, WAL, synchronous=NORMAL,
as the server) writes in one transaction what the API writes for a case with
one attention: the case, the attention, two timeline events and a chained
audit row. Prints "tps p50_ms p99_ms".
"""
import hashlib
import sqlite3
import sys
import threading
import time
import uuid

db, person, consulate, officer, type_id, clients, secs = sys.argv[1:8]
clients, secs = int(clients), float(secs)
lat = []
lock = threading.Lock()
stop = time.monotonic() + secs


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def worker():
    c = sqlite3.connect(db, timeout=30, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.execute("PRAGMA foreign_keys=ON")
    mine = []
    while time.monotonic() < stop:
        t0 = time.monotonic()
        cid, aid, ts = str(uuid.uuid4()), str(uuid.uuid4()), now()
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO cases (id, person_id, consulate_id, country_code, channel, requester_kind, summary, flags, protected, status, assigned_officer_id, opened_at, created_by, version, created_at, updated_at) "
                  "VALUES (?, ?, ?, 'AR', 'phone', 'self', 'Needs help', '[]', 0, 'open', ?, ?, ?, 2, ?, ?)",
                  (cid, person, consulate, officer, ts, officer, ts, ts))
        c.execute("INSERT INTO timeline_events (id, person_id, case_id, consulate_id, kind, at, actor_id, payload) VALUES (?, ?, ?, ?, 'case.opened', ?, ?, '{\"channel\":\"phone\",\"flags\":[]}')",
                  (str(uuid.uuid4()), person, cid, consulate, ts, officer))
        c.execute("INSERT INTO attentions (id, case_id, person_id, consulate_id, attention_type_id, attended_on, channel, officer_id, description, late_registration, created_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, 'phone', ?, 'Orientation', 0, ?)",
                  (aid, cid, person, consulate, type_id, ts[:10], officer, ts))
        c.execute("INSERT INTO timeline_events (id, person_id, case_id, consulate_id, kind, at, actor_id, attention_type_id, payload) VALUES (?, ?, ?, ?, 'attention.recorded', ?, ?, ?, '{\"attention_type\":\"legal_orientation\"}')",
                  (str(uuid.uuid4()), person, cid, consulate, ts, officer, type_id))
        seq, prev = c.execute("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash").fetchone()
        h = hashlib.sha256(f"{prev}{cid}".encode()).hexdigest()
        c.execute("INSERT INTO audit_log (id, seq, at, actor_id, actor_username, actor_role, actor_consulate_id, action, resource_type, resource_id, subject_person_id, client_addr, outcome, details, prev_hash, hash) "
                  "VALUES (?, ?, ?, ?, 'bench.officer', 'officer', ?, 'case.create', 'case', ?, ?, '127.0.0.1', 'success', '{}', ?, ?)",
                  (str(uuid.uuid4()), seq, ts, officer, consulate, cid, person, prev, h))
        c.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (h,))
        c.execute("COMMIT")
        mine.append(time.monotonic() - t0)
    with lock:
        lat.extend(mine)


threads = [threading.Thread(target=worker) for _ in range(clients)]
start = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - start
lat.sort()
print(f"{len(lat) / elapsed:.1f} {lat[len(lat) // 2] * 1000:.2f} {lat[int(len(lat) * 0.99)] * 1000:.2f}")
