"""Drives a running logpulsed with the Python clients written for Tinybird.

Usage: clients.py BASE_URL ADMIN_TOKEN

Exits non-zero on the first failed check. Needs `verdin`; the parts using
`tinybird-python-sdk` (module `tb`) are skipped with a note if it is missing.
"""

import datetime
import json
import logging
import sys
import time


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def fmt(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def verdin_part(base, token):
    import verdin
    from verdin import client as vclient
    from verdin.api import ApiError
    from verdin.pipe import PipeError

    c = vclient.Client(token, api=base)

    # Events API through Datasource.send_events (NDJSON, wait=true -> 200).
    ds = c.datasource("system_logs")
    rows = [
        {
            "timestamp": "2023-06-01 14:30:%02d" % i,
            "server_id": "srv-py",
            "service": "verdin",
            "severity": "error" if i % 2 else "INFO",
            "message": "verdin row %d" % i,
            "metadata": {"i": i},
        }
        for i in range(10)
    ]
    rows.append({"service": "verdin"})  # invalid: quarantined
    r = ds.send_events(rows, wait=True)
    check(r._response.status_code == 200, "send_events wait=True status %s" % r._response.status_code)
    check(r.successful_rows == 10, "successful_rows %r" % r.successful_rows)
    check(r.quarantined_rows == 1, "quarantined_rows %r" % r.quarantined_rows)
    r = ds.send_events(rows[:2])
    check(r._response.status_code == 202, "send_events without wait: %s" % r._response.status_code)

    # Gzip-compressed events through the EventsApi.
    r = c.api.events.send("system_logs", records=rows[:3], wait=True, compress=True)
    check(r.successful_rows == 3, "gzip send: %r" % r.json)

    # Thresholds.
    r = c.datasource("log_anomaly_thresholds").send_events(
        [{"service": "verdin", "severity": "ERROR", "threshold_per_minute": 2, "updated_at": "2023-06-01 00:00:00"}],
        wait=True,
    )
    check(r.successful_rows == 1, "threshold row: %r" % r.json)

    # Pipes: GET with parameters.
    p = c.pipe("recent_logs")
    res = p.query({"service": "verdin", "limit": "100"})
    check([m[0] for m in res.meta] == [
        "timestamp", "server_id", "service", "severity", "message", "error_code", "resource_id", "metadata",
    ], "meta %r" % res.meta)
    check(len(res.data) == 15, "recent_logs rows %d" % len(res.data))
    check(res.data[0]["timestamp"] >= res.data[-1]["timestamp"], "ordering")
    res = p.query({"service": "verdin", "severity": "error", "start_time": "2023-06-01 14:30:05"})
    msgs = [r["message"] for r in res.data]
    check(msgs == ["verdin row 9", "verdin row 7", "verdin row 5"], "filtered %r" % msgs)
    check(res.result["rows_before_limit_at_least"] == 3, "rows_before_limit %r" % res.result)
    check(json.loads(res.data[0]["metadata"]) == {"i": 9}, "metadata %r" % res.data[0]["metadata"])
    check(res.empty is False, "empty")

    # A long parameter list makes verdin POST a form-encoded body.
    res = p.query({"service": "verdin", "limit": "2", "padding": "x" * 9000})
    check(len(res.data) == 2, "POST form query rows %d" % len(res.data))
    check(res.response.request.method == "POST", "expected a POST, got %s" % res.response.request.method)

    res = c.pipe("error_distribution").query({"service": "verdin"})
    by_sev = {r["severity"]: r for r in res.data}
    check(by_sev["ERROR"]["error_count"] == 7 and by_sev["INFO"]["error_count"] == 8, "distribution %r" % res.data)
    check(abs(by_sev["ERROR"]["percentage"] - 46.67) < 1e-9, "percentage %r" % by_sev["ERROR"])

    res = c.pipe("log_anomalies").query({"end_time": "2023-06-01 15:00:00", "time_window_minutes": "60"})
    check(len(res.data) == 1, "anomalies %r" % res.data)
    a = res.data[0]
    check(a["minute"] == "2023-06-01 14:30:00" and a["log_count"] == 7, "anomaly %r" % a)
    check(a["threshold_per_minute"] == 2 and a["excess_ratio"] == 3.5, "anomaly numbers %r" % a)

    # Other formats through the PipesApi.
    csv_rows = c.api.pipes.query("recent_logs", parameters={"service": "verdin", "limit": "3"}, format="csv").data
    check(len(csv_rows) == 3 and csv_rows[0]["service"] == "verdin", "csv %r" % csv_rows)
    nd = c.api.pipes.query("recent_logs", parameters={"service": "verdin", "limit": "3"}, format="ndjson")
    check(len(nd.text.strip().splitlines()) == 3, "ndjson %r" % nd.text)

    # Errors: verdin reads the JSON "error" (it needs Content-Type: application/json).
    try:
        p.query({"limit": "0"})
        check(False, "limit=0 did not fail")
    except PipeError as e:
        check(e.response.status_code == 400, "limit=0 status %s" % e.response.status_code)
        check("limit" in e.description, "error description %r" % e.description)
    try:
        c.pipe("no_such_pipe").query({})
        check(False, "unknown pipe did not fail")
    except PipeError as e:
        check(e.response.status_code == 404, "unknown pipe status %s" % e.response.status_code)
    try:
        vclient.Client("wrong-token", api=base).datasource("system_logs").send_events(rows[:1])
        check(False, "a bad token was accepted")
    except ApiError as e:
        check(e.status_code == 403, "bad token status %s" % e.status_code)
        check("API Error (403)" in str(e), "message %s" % e)

    # Data sources and tokens APIs.
    names = [d["name"] for d in c.api.datasources.list().datasources]
    check("system_logs" in names and "system_logs_quarantine" in names, "datasources %r" % names)
    info = c.api.datasources.get_information("system_logs").info
    check(info["name"] == "system_logs", "info %r" % info)
    check(info["statistics"]["row_count"] >= 15, "row_count %r" % info["statistics"])
    tokens = c.api.tokens.list().tokens
    check(isinstance(tokens, list), "tokens %r" % tokens)
    print("verdin: ok")


def tinybird_sdk_part(base, token):
    try:
        import tb  # noqa: F401
        from tb.datasource import Datasource
        from tb.logger import TinybirdLoggingHandler
    except ImportError as e:
        print("SKIPPED: tinybird-python-sdk not installed (%s)" % e)
        return
    from verdin import client as vclient

    c = vclient.Client(token, api=base)

    # Datasource append: buffered NDJSON to /v0/events?mode=append&format=ndjson&wait=false.
    now = int(time.time())
    with Datasource("system_logs", token, api_url=base) as ds:
        for i in range(5):
            ds << {
                "timestamp": fmt(now - 300 + i),
                "service": "tb-sdk",
                "severity": "WARN",
                "message": "sdk row %d" % i,
            }
    res = c.pipe("recent_logs").query({"service": "tb-sdk"})
    check(len(res.data) == 5, "tb Datasource rows %r" % res.data)

    # The logging handler: Python's logging records, through the field aliases.
    log = logging.getLogger("lp-test")
    log.propagate = False
    log.setLevel(logging.INFO)
    h = TinybirdLoggingHandler(token, base, app_name="py-logging", ds_name="system_logs")
    log.addHandler(h)
    before = time.time()
    log.error("payment %s failed", "p-42")
    log.info("all good")
    log.removeHandler(h)
    res = c.pipe("recent_logs").query({"service": "py-logging"})
    msgs = sorted((r["severity"], r["message"]) for r in res.data)
    check(msgs == [("ERROR", "payment p-42 failed"), ("INFO", "all good")], "logging rows %r" % res.data)
    ts = res.data[0]["timestamp"]
    check(abs(datetime.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp() - before) < 120,
          "logging timestamp %r" % ts)
    print("tinybird-python-sdk: ok")


def main():
    base, token = sys.argv[1].rstrip("/"), sys.argv[2]
    verdin_part(base, token)
    tinybird_sdk_part(base, token)
    print("python clients: all checks passed")


if __name__ == "__main__":
    main()
