"""TLS checks against a logpulsed started with tls_cert_file/tls_key_file and
syslog_tls_listen, verifying its certificate with the test's own CA: the
API over HTTPS, the OpenTelemetry OTLP exporter with certificate_file, syslog
over TLS (RFC 5425, octet-counted), and, in phase "reload", that after SIGHUP a
new connection gets the new certificate while one opened before still works.

usage: tls.py PORT TOKEN CA_PEM SYSLOG_TLS_PORT PHASE(first|reload) [STATE_FILE]
"""
import http.client
import json
import logging
import pickle
import socket
import ssl
import sys
import time
import urllib.parse

PORT, TOKEN, CA, SPORT, PHASE = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
CTX = ssl.create_default_context(cafile=CA)
BASE = f"https://127.0.0.1:{PORT}"


def serial(conn):
    return ssl.DER_cert_to_PEM_cert(conn.sock.getpeercert(True)), conn.sock.getpeercert()["serialNumber"]


def get(conn, path):
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, (r.status, body)
    return json.loads(body)


def rows(conn, service, want):
    q = urllib.parse.urlencode({"service": service, "start_time": "1970-01-01 00:00:00"})
    for _ in range(100):
        data = get(conn, f"/v0/pipes/recent_logs.json?{q}")["data"]
        if len(data) >= want:
            assert len(data) == want, data
            return data
        time.sleep(0.1)
    raise AssertionError(f"{service}: {data}")


if PHASE == "first":
    conn = http.client.HTTPSConnection("127.0.0.1", PORT, context=CTX)
    assert get(conn, "/v0/health") is not None
    _, first_serial = serial(conn)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    provider = LoggerProvider(resource=Resource.create({"service.name": "tls-otlp"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(
        endpoint=f"{BASE}/v1/logs", certificate_file=CA, headers={"Authorization": f"Bearer {TOKEN}"})))
    log = logging.getLogger("tls")
    log.handlers = [LoggingHandler(logger_provider=provider)]
    log.propagate = False
    log.error("over https")
    provider.force_flush()
    r = rows(conn, "tls-otlp", 1)
    assert r[0]["severity"] == "ERROR" and r[0]["message"] == "over https", r
    with CTX.wrap_socket(socket.create_connection(("127.0.0.1", SPORT)), server_hostname="localhost") as s:
        for m in [b"<11>1 2026-01-01T00:00:00Z h1 tls-syslog 1 - - one", b"<14>1 2026-01-01T00:00:01Z h1 tls-syslog 1 - - two"]:
            s.sendall(b"%d %s" % (len(m), m))
        # Wait for both before closing: closing a socket with unread data (the
        # server's TLS 1.3 session tickets) sends a RST, which can discard
        # what the server has not read yet.
        r = rows(conn, "tls-syslog", 2)
    assert sorted(x["message"] for x in r) == ["one", "two"], r
    # Keep a connection open across the reload: it must keep working.
    keep = http.client.HTTPSConnection("127.0.0.1", PORT, context=CTX)
    get(keep, "/v0/health")
    print(f"serial {first_serial}")
    sys.stdout.flush()
    sys.stdin.readline()  # the test reloads the certificate now
    get(keep, "/v0/health")
    fresh = http.client.HTTPSConnection("127.0.0.1", PORT, context=CTX)
    get(fresh, "/v0/health")
    _, new_serial = serial(fresh)
    assert new_serial != first_serial, (new_serial, first_serial)
    print(f"reloaded {new_serial}")
    print("tls: all checks passed")
