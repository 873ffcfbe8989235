"""Drives logpulsed with the shippers' own Python clients, unchanged: the
OpenTelemetry SDK's LoggingHandler with the OTLP/HTTP protobuf exporter,
python-logging-loki, elasticsearch-py 8 (helpers.bulk) and the standard
library's SysLogHandler (UDP and TCP); then reads every row back through
recent_logs and checks each mapped column.

usage: shippers.py BASE_URL ADMIN_TOKEN APPEND_TOKEN SYSLOG_TCP_PORT SYSLOG_UDP_PORT
"""
import json
import logging
import logging.handlers
import socket
import sys
import time
import urllib.parse
import urllib.request

BASE, ADMIN, APPEND, TCP_PORT, UDP_PORT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
T0 = int(time.time()) - 5


def recent(service, want):
    """The rows of a service, newest first, once `want` of them arrived."""
    q = urllib.parse.urlencode({"service": service, "limit": 100, "start_time": T0 - 86400 * 3650})
    for _ in range(100):
        req = urllib.request.Request(f"{BASE}/v0/pipes/recent_logs.json?{q}",
                                     headers={"Authorization": f"Bearer {ADMIN}"})
        rows = json.load(urllib.request.urlopen(req))["data"]
        if len(rows) >= want:
            assert len(rows) == want, rows
            return sorted(rows, key=lambda r: r["message"])
        time.sleep(0.1)
    raise AssertionError(f"{service}: {len(rows)} rows, want {want}: {rows}")


def quarantined():
    req = urllib.request.Request(f"{BASE}/v0/datasources/system_logs_quarantine",
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    return json.load(urllib.request.urlopen(req))["statistics"]["row_count"]


def recent_time(row):
    t = time.mktime(time.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S")) - time.timezone
    assert abs(t - time.time()) < 120, row


def logger(name, handler):
    log = logging.getLogger(name)
    log.handlers = [handler]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


def otlp():
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create(
        {"service.name": "otlp-checkout", "host.name": "web-7", "deployment.environment": "prod"}))
    exporter = OTLPLogExporter(endpoint=f"{BASE}/v1/logs", headers={"Authorization": f"Bearer {APPEND}"})
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = logger("otlp.test", LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    log.debug("a debug")
    log.info("an info")
    log.warning("a warning", extra={"error.type": "Timeout", "resource_id": "order-42"})
    log.error("an error")
    log.critical("a critical")
    provider.force_flush()
    rows = recent("otlp-checkout", 5)
    sev = {r["message"]: r["severity"] for r in rows}
    assert sev == {"a debug": "DEBUG", "an info": "INFO", "a warning": "WARN",
                   "an error": "ERROR", "a critical": "CRITICAL"}, sev
    for r in rows:
        recent_time(r)
        assert r["server_id"] == "web-7", r
        meta = json.loads(r["metadata"])
        assert meta["resource"]["deployment.environment"] == "prod", meta
        assert "service.name" not in meta["resource"], meta
    warn = [r for r in rows if r["message"] == "a warning"][0]
    assert warn["error_code"] == "Timeout" and warn["resource_id"] == "order-42", warn
    provider.shutdown()
    print("otlp: ok")


def otlp_partial_success():
    """A raw protobuf request (the SDK's own message classes): a record of a
    resource without service.name is rejected, the other stored."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest, ExportLogsServiceResponse)
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    now = time.time_ns()
    good = ResourceLogs(resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="otlp-raw"))]),
                        scope_logs=[ScopeLogs(log_records=[LogRecord(time_unix_nano=now, severity_text="warning",
                                                                     body=AnyValue(string_value="kept"))])])
    bad = ResourceLogs(scope_logs=[ScopeLogs(log_records=[LogRecord(time_unix_nano=now, body=AnyValue(string_value="no service"))])])
    before = quarantined()
    req = urllib.request.Request(f"{BASE}/v1/logs", data=ExportLogsServiceRequest(resource_logs=[good, bad]).SerializeToString(),
                                 headers={"Authorization": f"Bearer {APPEND}", "Content-Type": "application/x-protobuf"})
    resp = urllib.request.urlopen(req)
    assert resp.headers["Content-Type"] == "application/x-protobuf", resp.headers
    answer = ExportLogsServiceResponse.FromString(resp.read())
    assert answer.partial_success.rejected_log_records == 1, answer
    assert "service" in answer.partial_success.error_message, answer
    rows = recent("otlp-raw", 1)
    assert rows[0]["message"] == "kept" and rows[0]["severity"] == "WARN", rows
    assert quarantined() == before + 1
    print("otlp partial success: ok")


def loki():
    import logging_loki

    handler = logging_loki.LokiHandler(url=f"{BASE}/loki/api/v1/push", version="1", auth=("loki", APPEND),
                                       tags={"application": "loki-app", "host": "db-3"})
    log = logger("loki.test", handler)
    log.warning("disk almost full", extra={"tags": {"resource_id": "vol-9"}})
    log.error("disk full")
    log.info("disk fine")
    rows = recent("loki-app", 3)
    sev = {r["message"]: r["severity"] for r in rows}
    assert sev == {"disk almost full": "WARN", "disk full": "ERROR", "disk fine": "INFO"}, sev
    for r in rows:
        recent_time(r)
        assert r["server_id"] == "db-3", r
        assert json.loads(r["metadata"]) == {"logger": "loki.test"}, r
    warn = [r for r in rows if r["message"] == "disk almost full"][0]
    assert warn["resource_id"] == "vol-9", warn
    print("loki: ok")


def elasticsearch():
    from elasticsearch import Elasticsearch, helpers

    es = Elasticsearch(f"{BASE}/es", basic_auth=("elastic", APPEND))
    info = es.info()
    assert info["version"]["number"].startswith("8."), info
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.123Z", time.gmtime())
    docs = [
        {"_index": "logs-a", "_source": {"@timestamp": ts, "service": {"name": "es-svc", "version": "1.2"},
                                          "log": {"level": "warning"}, "host": {"name": "h1"}, "message": "nested",
                                          "error": {"type": "E42"}, "labels": {"team": "pay"}}},
        {"_op_type": "create", "_index": "logs-a", "_source": {"@timestamp": ts, "service.name": "es-svc", "log.level": "err",
                                                                "host.name": "h2", "message": "dotted", "resource.id": "r-1"}},
        {"_index": "logs-a", "_source": {"@timestamp": ts, "message": "no service"}},
    ]
    before = quarantined()
    ok, errors = helpers.bulk(es, docs, raise_on_error=False)
    assert ok == 2 and len(errors) == 1, (ok, errors)
    assert errors[0]["index"]["status"] == 400 and "service" in errors[0]["index"]["error"]["reason"], errors
    assert quarantined() == before + 1
    rows = recent("es-svc", 2)
    dotted, nested = rows
    assert (dotted["severity"], dotted["server_id"], dotted["resource_id"]) == ("ERROR", "h2", "r-1"), dotted
    assert (nested["severity"], nested["server_id"], nested["error_code"]) == ("WARN", "h1", "E42"), nested
    meta = json.loads(nested["metadata"])
    assert meta["labels"] == {"team": "pay"} and meta["service"]["version"] == "1.2", meta
    for r in rows:
        recent_time(r)
    print("elasticsearch: ok")


def syslog():
    fmt = logging.Formatter("%(name)s[%(process)d]: %(message)s")
    for name, sock in [("py-udp", socket.SOCK_DGRAM), ("py-tcp", socket.SOCK_STREAM)]:
        port = UDP_PORT if sock == socket.SOCK_DGRAM else TCP_PORT
        h = logging.handlers.SysLogHandler(address=("127.0.0.1", port), socktype=sock)
        h.setFormatter(fmt)
        log = logger(name, h)
        log.error("went wrong")
        log.warning("careful")
        log.debug("details")
        h.close()
        rows = recent(name, 3)
        sev = {r["message"]: r["severity"] for r in rows}
        assert sev == {"went wrong": "ERROR", "careful": "WARN", "details": "DEBUG"}, sev
        for r in rows:
            recent_time(r)
            assert r["server_id"] == "127.0.0.1", r
            meta = json.loads(r["metadata"])
            assert meta["facility"] == "user" and meta["procid"].isdigit(), meta
    print("syslog handler: ok")


otlp()
otlp_partial_success()
loki()
elasticsearch()
syslog()
print("shippers: all checks passed")
