"""Runs Tinybird's own `tb` CLI (tinybird-cli from PyPI, unchanged) against a
running logpulsed and checks what it prints.

Usage: tb_cli.py TB_EXECUTABLE BASE_URL ADMIN_TOKEN

Prints 'tb cli: all checks passed' on success; exits non-zero on the first
failed check.
"""

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import urllib.request


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    tb, base, token = sys.argv[1], sys.argv[2], sys.argv[3]
    work = tempfile.mkdtemp(prefix="lp-tb-")
    env = dict(os.environ, TB_CLI_TELEMETRY_OPTOUT="1", HOME=work, NO_COLOR="1", COLUMNS="200")

    def run(*args, ok=True):
        p = subprocess.run(
            [tb, "--host", base, "--token", token, *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        out = p.stdout + p.stderr
        print("$ tb %s  (exit %d)\n%s" % (" ".join(args), p.returncode, out.strip()[:1500]))
        if ok:
            check(p.returncode == 0, "tb %s failed: %s" % (" ".join(args), out))
        return out

    def row_count(ds):
        req = urllib.request.Request("%s/v0/datasources/%s" % (base, ds))
        req.add_header("Authorization", "Bearer " + token)
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())["statistics"]["row_count"]

    # tb datasource append: a local NDJSON file, one bad row quarantined.
    path = os.path.join(work, "logs.ndjson")
    with open(path, "w") as f:
        for i in range(5):
            f.write(
                json.dumps(
                    {
                        "timestamp": "2024-06-01 10:00:%02d" % i,
                        "server_id": "tb-host",
                        "service": "tbcli",
                        "severity": "error",
                        "message": "from the tb cli %d" % i,
                    }
                )
                + "\n"
            )
        f.write(json.dumps({"timestamp": "2024-06-01 10:00:09", "message": "no service"}) + "\n")
    out = run("datasource", "append", "system_logs", path)
    check("appended" in out.lower() or "total rows" in out.lower(), "append output: " + out)
    check(row_count("system_logs") == 5, "5 rows stored after tb datasource append")
    check(row_count("system_logs_quarantine") == 1, "the bad row is quarantined")

    # And a CSV file (with a header row).
    cpath = os.path.join(work, "thresholds.csv")
    with open(cpath, "w") as f:
        f.write("service,severity,threshold_per_minute\ntbcli,ERROR,2\n")
    run("datasource", "append", "log_anomaly_thresholds", cpath)
    check(row_count("log_anomaly_thresholds") == 1, "1 threshold stored from CSV")

    out = run("datasource", "ls")
    for name in ("system_logs", "log_anomaly_thresholds", "system_logs_quarantine"):
        check(name in out, "datasource ls lists " + name)
    out = run("datasource", "ls", "--format", "json")
    listed = {d["name"]: d for d in json.loads(out[out.index("{") :])["datasources"]}
    check(listed["system_logs"]["row_count"] == 5, "datasource ls row_count: %r" % listed["system_logs"])

    out = run("pipe", "ls")
    for name in ("recent_logs", "error_distribution", "log_anomalies", "log_baseline_anomalies"):
        check(name in out, "pipe ls lists " + name)

    out = run("pipe", "data", "recent_logs")
    check("from the tb cli" in out, "pipe data shows the rows")

    out = run("sql", "SELECT count() AS n FROM system_logs WHERE service = 'tbcli'")
    check(" 5 " in out or "5" in out.split(), "tb sql prints the count: " + out)
    out = run("sql", "SELECT service, count() AS n FROM system_logs GROUP BY service", "--format", "json")
    doc = json.loads(out[out.index("{") :])
    check(doc["data"] == [{"service": "tbcli", "n": 5}], "tb sql --format json data: %r" % doc["data"])
    check(doc["meta"][1]["name"] == "n" and doc["rows"] == 1, "tb sql json meta/rows: %r" % doc)
    out = run(
        "sql",
        "SELECT message, toStartOfMinute(timestamp) AS m FROM system_logs ORDER BY message LIMIT 2",
        "--format",
        "csv",
    )
    lines = [l for l in out.strip().splitlines() if l]
    rows = list(csv.reader(io.StringIO("\n".join(lines[-3:]))))
    check(rows[0] == ["message", "m"], "csv header: %r" % rows)
    check(rows[1] == ["from the tb cli 0", "2024-06-01 10:00:00"], "csv row: %r" % rows)
    out = run("sql", "SELECT nosuchfunction(1)", ok=False)
    check("nosuchfunction" in out.lower(), "the error names what was not understood: " + out)

    out = run("workspace", "current")
    check("logpulse" in out, "workspace current names the workspace")

    out = run("token", "ls")
    check("admin token" in out, "token ls lists the admin token")

    run("datasource", "truncate", "system_logs", "--yes")
    check(row_count("system_logs") == 0, "truncate empties system_logs")

    print("tb cli: all checks passed")


if __name__ == "__main__":
    main()
