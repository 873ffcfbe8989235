"""Throughput of the shipper endpoints against a running logpulsed (a
release build): OTLP protobuf,
Elasticsearch _bulk next to the Events API with the same rows, and syslog
over TCP (octet-counted RFC 5424). Records per second, wall clock, from the
client's side (every request answered, or for syslog every row visible).

usage: shippers.py BASE TOKEN SYSLOG_TCP_PORT [ROUNDS]
"""
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

BASE, TOKEN, SPORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 20
HOST = urllib.parse.urlparse(BASE)
PER_BODY, THREADS = 20000, 4
NOW = int(time.time())


def post_many(path, body, ctype):
    def worker():
        c = http.client.HTTPConnection(HOST.hostname, HOST.port)
        for _ in range(ROUNDS):
            c.request("POST", path, body=body, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": ctype})
            r = c.getresponse()
            r.read()
            assert r.status < 300, r.status
    ts = [threading.Thread(target=worker) for _ in range(THREADS)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return PER_BODY * ROUNDS * THREADS / (time.time() - t0)


def otlp_body():
    recs = [LogRecord(time_unix_nano=(NOW + i % 60) * 10**9, severity_number=9 + (i % 4) * 4,
                      body=AnyValue(string_value=f"request {i} handled in {i % 97} ms"),
                      attributes=[KeyValue(key="http.route", value=AnyValue(string_value="/api/v1/items"))])
            for i in range(PER_BODY)]
    res = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="bench-otlp")),
                               KeyValue(key="host.name", value=AnyValue(string_value="web-1"))])
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(resource=res, scope_logs=[ScopeLogs(log_records=recs)])]).SerializeToString()


def rows(service):
    return [{"timestamp": NOW + i % 60, "service": service, "severity": "INFO", "server_id": "web-1",
             "message": f"request {i} handled in {i % 97} ms", "metadata": "{\"http.route\":\"/api/v1/items\"}"}
            for i in range(PER_BODY)]


def row_count():
    c = http.client.HTTPConnection(HOST.hostname, HOST.port)
    c.request("GET", "/v0/datasources/system_logs", headers={"Authorization": f"Bearer {TOKEN}"})
    return json.loads(c.getresponse().read())["statistics"]["row_count"]


def syslog_tcp(n):
    msgs = []
    for i in range(n):
        m = f"<14>1 2026-12-01T04:00:{i % 60:02d}Z web-1 bench-syslog 42 - - request {i} handled in {i % 97} ms".encode()
        msgs.append(b"%d %s" % (len(m), m))
    data = b"".join(msgs)
    before = row_count()
    t0 = time.time()
    with socket.create_connection(("127.0.0.1", SPORT)) as s:
        s.sendall(data)
    while row_count() < before + n:
        time.sleep(0.01)
    return n / (time.time() - t0)


ONLY = set(filter(None, __import__("os").environ.get("LP_ONLY", "").split(",")))


def want(name):
    return not ONLY or name in ONLY


if want("otlp"):
    otlp = post_many("/v1/logs", otlp_body(), "application/x-protobuf")
    print(f"otlp protobuf: {otlp:,.0f} records/s")
if want("bulk"):
    # The Events API and _bulk alternate, three times each, so that neither is
    # measured only on a fuller store; each one's better pass is compared.
    events_body = "\n".join(json.dumps(r) for r in rows("bench-events")).encode()
    bulk_body = "".join('{"index":{}}\n' + json.dumps(r) + "\n" for r in rows("bench-bulk")).encode()
    events, bulk = [], []
    for _ in range(3):
        events.append(post_many("/v0/events?name=system_logs", events_body, "application/x-ndjson"))
        bulk.append(post_many("/es/_bulk", bulk_body, "application/x-ndjson"))
    print("events api: " + " / ".join(f"{e:,.0f}" for e in events) + " rows/s")
    print("_bulk: " + " / ".join(f"{b:,.0f}" for b in bulk) + " docs/s"
          + f" (best {100 * max(bulk) / max(events):.0f}% of the events api's best)")
if want("syslog"):
    sys_rate = syslog_tcp(PER_BODY * ROUNDS)
    print(f"syslog tcp: {sys_rate:,.0f} messages/s")
