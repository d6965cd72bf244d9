#!/usr/bin/env python3
"""Fault test: PostgreSQL stops under load and comes back.

Usage: fault-pg.py BASE_URL TOKEN PERSON_ID STOP_CMD START_CMD SERVER_PID

Eight clients create cases and read the person for 2 s; then PostgreSQL is
stopped (STOP_CMD) for 6 s and started again (START_CMD); the load goes on
12 s more. Checks, from every request's start, end, status and Retry-After:
- no 500 and no dropped connection, ever;
- requests started 2 s or more after the stop are answered 503 with
  Retry-After, each within 2 s;
- requests started 10 s or more after the database returned succeed;
- the server process is the same one throughout (no restart).
Exits 1 naming what failed.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid

base, token, person, stop_cmd, start_cmd, server_pid = sys.argv[1:7]
host, port = base.replace("http://", "").split(":")
records = []  # (start, end, kind, status, retry_after, error)
lock = threading.Lock()
running = True


def client(n):
    conn = None
    while running:
        kind = "create" if n % 2 == 0 else "read"
        t0 = time.monotonic()
        status, retry, err = None, None, None
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
            headers = {"Authorization": f"Bearer {token}"}
            if kind == "create":
                body = json.dumps({
                    "person_id": person, "channel": "phone",
                    "requester": {"kind": "self"}, "summary": "Needs help",
                    "attentions": [{"attention_type": "legal_orientation",
                                    "date": time.strftime("%Y-%m-%d", time.gmtime()),
                                    "description": "Orientation"}]})
                headers["Content-Type"] = "application/json"
                headers["Idempotency-Key"] = str(uuid.uuid4())
                conn.request("POST", "/api/v1/cases", body, headers)
            else:
                conn.request("GET", f"/api/v1/persons/{person}", headers=headers)
            resp = conn.getresponse()
            resp.read()
            status, retry = resp.status, resp.getheader("Retry-After")
        except Exception as e:  # noqa: BLE001 - every failure is recorded
            err = repr(e)
            conn = None
        with lock:
            records.append((t0, time.monotonic(), kind, status, retry, err))
        if status == 503 or err:
            time.sleep(0.05)


threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
time.sleep(2)
t_stop = time.monotonic()
subprocess.run(stop_cmd, shell=True, check=True)
time.sleep(6)
t_start = time.monotonic()
subprocess.run(start_cmd, shell=True, check=True)
t_up = time.monotonic()
time.sleep(12)
running = False
for t in threads:
    t.join()

failures = []
ok_before = sum(1 for r in records if r[1] < t_stop and r[3] in (200, 201))
down = [r for r in records if t_stop + 2 <= r[0] < t_start]
after = [r for r in records if r[0] >= t_up + 10]
if ok_before == 0:
    failures.append("no successful request before the stop")
for r in records:
    if r[5] is not None:
        failures.append(f"dropped connection at +{r[0] - t_stop:.2f}s: {r[5]}")
    elif r[3] not in (200, 201, 503):
        failures.append(f"status {r[3]} at +{r[0] - t_stop:.2f}s ({r[2]})")
    elif r[3] == 503 and not r[4]:
        failures.append(f"503 without Retry-After at +{r[0] - t_stop:.2f}s")
if not down:
    failures.append("no request while the database was down")
for r in down:
    if r[3] != 503:
        failures.append(f"{r[3]} while down at +{r[0] - t_stop:.2f}s ({r[2]})")
    if r[1] - r[0] > 2:
        failures.append(f"answer took {r[1] - r[0]:.2f}s while down")
if not after or any(r[3] not in (200, 201) for r in after):
    failures.append("not recovered 10 s after the database returned: "
                    + str(sorted({r[3] for r in after})))
first_ok = min((r[0] for r in records if r[0] >= t_up and r[3] in (200, 201)), default=None)
try:
    os.kill(int(server_pid), 0)
except OSError:
    failures.append("the server process is gone")

slowest_down = max((r[1] - r[0] for r in down), default=0)
print(f"  {len(records)} requests: {ok_before} ok before the stop, {len(down)} while down "
      f"(all 503 + Retry-After: {all(r[3] == 503 and r[4] for r in down)}, slowest {slowest_down:.2f} s), "
      f"first success {first_ok - t_up if first_ok else float('nan'):.2f} s after the database returned")
if failures:
    for f in failures[:20]:
        print("  FAIL:", f)
    sys.exit(1)
