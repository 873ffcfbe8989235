"""Drives the embedded dashboard of a running logpulsed in headless Chromium.

Usage: dashboard.py BASE_URL ADMIN_TOKEN SCREENSHOT_DIR

Uses Debian's chromium and chromium-driver through selenium (nothing is
downloaded). Exits non-zero on the first failed check; prints
"dashboard: all checks passed" at the end.
"""

import datetime
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

BASE, TOKEN, SHOTS = sys.argv[1], sys.argv[2], sys.argv[3]
CHROMIUM = os.environ.get("LP_CHROMIUM", "/usr/bin/chromium")
DRIVER = os.environ.get("LP_CHROMEDRIVER", "/usr/bin/chromedriver")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def now_str(offset=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def http(method, path, body=None):
    req = urllib.request.Request(BASE + path, data=body, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def ingest(ds, rows):
    body = "\n".join(json.dumps(r) for r in rows).encode()
    r = http("POST", f"/v0/events?name={ds}&wait=true", body)
    check(r["quarantined_rows"] == 0, f"rows refused: {r}")


class Trap:
    """A listener on another origin: hostile content points at it, and no
    connection may ever arrive."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.hits += 1
            c.close()


def browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,800",
    ]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    d.set_page_load_timeout(30)
    return d


def console_errors(d, allowed=()):
    out = []
    for e in d.get_log("browser"):
        if e["level"] in ("SEVERE", "ERROR") and not any(a in e["message"] for a in allowed):
            out.append(e["message"])
    return out


def wait(d, cond, what, timeout=10):
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.05).until(lambda _: cond())
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}")


def cells(d, table, col):
    return d.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' tbody tr:not(.detail)')]"
        ".map(r => r.cells[arguments[1]] ? r.cells[arguments[1]].textContent : null)"
        ".filter(t => t !== null && !(arguments[0] === '#logs-table' && t === 'No rows match.'))",
        table, col)


def go(d, view):
    d.execute_script("location.hash = arguments[0]", "#" + view)
    wait(d, lambda: not d.find_element(By.ID, "view-" + view).get_attribute("hidden"), view)
    wait(d, lambda: d.find_element(By.ID, "status").text in ("",) or "saved" in d.find_element(By.ID, "status").text,
         f"{view} loaded")


def set_filters(d, service="", severity="", contains=""):
    for fid, v in (("f-service", service), ("f-severity", severity), ("f-contains", contains)):
        f = d.find_element(By.ID, fid)
        f.clear()
        if v:
            f.send_keys(v)
    d.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()


def no_dialog(d):
    try:
        a = d.switch_to.alert
        raise AssertionError(f"a dialog opened: {a.text}")
    except NoAlertPresentException:
        pass


def foreign_requests(d):
    return d.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith(location.origin))")


def main_checks(d):
    services = ["checkout", "payments", "auth"]
    rows = []
    for i in range(30):
        rows.append({"timestamp": now_str(-60 * (i % 20)), "service": services[i % 3],
                     "severity": ["ERROR", "WARN", "INFO"][i % 3] if i % 5 else "ERROR",
                     "message": f"order {i} processed", "server_id": f"srv-{i % 2}",
                     "metadata": {"order": i, "items": [1, 2]}})
    ingest("system_logs", rows)

    # The token comes from the fragment, goes to sessionStorage, leaves the URL.
    d.get(BASE + "/#token=" + urllib.request.quote(TOKEN))
    wait(d, lambda: len(cells(d, "#logs-table", 4)) == 30, "30 rows in the table")
    check(TOKEN not in d.current_url, "token left in the URL")
    check(d.execute_script("return sessionStorage.getItem('logpulse-token')") == TOKEN, "token kept")
    errs = console_errors(d)
    check(not errs, f"console errors on load: {errs}")
    check("order 0 processed" in cells(d, "#logs-table", 4), "a known message is shown")
    # Expand a row: metadata pretty-printed.
    d.find_element(By.CSS_SELECTOR, "#logs-table tbody tr button").click()
    pre = d.find_element(By.CSS_SELECTOR, "#logs-table tr.detail pre").text
    check('"items": [' in pre, f"metadata pretty-printed: {pre!r}")

    # A filter narrows the rows.
    set_filters(d, service="payments")
    wait(d, lambda: set(cells(d, "#logs-table", 2)) == {"payments"}, "only payments rows")
    check(len(cells(d, "#logs-table", 2)) == 10, "10 payments rows")
    set_filters(d, contains="ORDER 1")
    wait(d, lambda: sorted(cells(d, "#logs-table", 4)) == sorted(
        f"order {i} processed" for i in range(30) if str(i).startswith("1")), "contains filter")
    set_filters(d)

    # The charts have drawn content.
    go(d, "volume")
    wait(d, lambda: d.execute_script(
        "return document.querySelectorAll('#volume-chart rect').length") > 0, "volume bars")
    total = d.execute_script(
        "return [...document.querySelectorAll('#volume-table tbody tr')].reduce((a, r) => a + Number(r.cells[3].textContent), 0)")
    check(total == 30, f"volume counts add up to 30, got {total}")
    go(d, "errors")
    wait(d, lambda: d.execute_script(
        "return document.querySelectorAll('#errors-chart rect').length") > 0, "error bars")
    check(len(cells(d, "#errors-table", 0)) >= 3, "error table rows")

    # Keyboard: Tab to the Volume link, Enter; then Enter on a bar filters the logs.
    d.find_element(By.TAG_NAME, "body").click()
    d.execute_script("document.activeElement.blur(); document.querySelector('.skip').focus()")
    for _ in range(10):
        a = d.switch_to.active_element
        if a.get_attribute("data-view") == "volume":
            break
        a.send_keys(Keys.TAB)
    check(d.switch_to.active_element.get_attribute("data-view") == "volume", "Volume link reachable by Tab")
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait(d, lambda: d.execute_script("return location.hash") == "#volume", "volume by keyboard")
    wait(d, lambda: d.execute_script(
        "return [...document.querySelectorAll('#volume-chart .bar')].some(b => b.querySelector('rect'))"), "bars")
    bar = d.execute_script(
        "const b = [...document.querySelectorAll('#volume-chart .bar')].filter(b => b.querySelector('rect')).pop(); b.focus(); return b.getAttribute('aria-label')")
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait(d, lambda: d.execute_script("return location.hash") == "#logs", "bar opens the logs")
    want = int(bar.split(": ")[1].split(" ")[0])
    wait(d, lambda: len(cells(d, "#logs-table", 4)) == want, f"{want} rows of the picked bucket ({bar})")
    d.find_element(By.ID, "f-range").send_keys(Keys.HOME)
    d.execute_script("document.getElementById('f-range').value = '60'")
    set_filters(d)

    # Live: a row posted after the view opened appears within 2 s.
    go(d, "live")
    wait(d, lambda: "Connected" in d.find_element(By.ID, "live-state").text, "live connected")
    t0 = time.time()
    ingest("system_logs", [{"timestamp": now_str(), "service": "checkout", "severity": "info",
                            "message": "live row 1"}])
    wait(d, lambda: "live row 1" in cells(d, "#live-table", 4), "live row", timeout=2)
    print(f"live row shown {time.time() - t0:.3f} s after it was posted")
    # Pause, post, resume: the row posted while paused comes on resume.
    d.find_element(By.ID, "live-pause").click()
    ingest("system_logs", [{"timestamp": now_str(), "service": "checkout", "severity": "info",
                            "message": "while paused"}])
    time.sleep(0.3)
    check("while paused" not in cells(d, "#live-table", 4), "paused view stays still")
    d.find_element(By.ID, "live-pause").click()
    wait(d, lambda: "while paused" in cells(d, "#live-table", 4), "row replayed on resume")
    check(cells(d, "#live-table", 4).count("live row 1") == 1, "no duplicate on resume")

    # A threshold posted from the form shows in the chart.
    go(d, "alerts")
    note = d.find_element(By.ID, "alerts-note").text
    check(note, "the alerts view says something about /v0/alerts")
    d.find_element(By.ID, "t-service").clear()
    d.find_element(By.ID, "t-service").send_keys("payments")
    d.find_element(By.ID, "t-severity").clear()
    d.find_element(By.ID, "t-severity").send_keys("error")
    d.find_element(By.ID, "t-value").send_keys("0.5")
    d.find_element(By.CSS_SELECTOR, "#threshold-form button").click()
    wait(d, lambda: ["payments", "ERROR", "0.5", "yes"] in [
        r[:4] for r in d.execute_script(
            "return [...document.querySelectorAll('#thresholds-table tbody tr')]"
            ".map(r => [...r.cells].map(c => c.textContent))")], "threshold listed")
    set_filters(d, service="payments", severity="ERROR")
    go(d, "volume")
    wait(d, lambda: d.execute_script(
        "return document.querySelector('#volume-chart .threshold-label')?.textContent") == "threshold 0.5/min",
        "threshold line in the chart")
    wait(d, lambda: d.execute_script(
        "return document.querySelectorAll('#volume-chart .anomaly').length") > 0, "anomalous minutes marked")
    check(len(cells(d, "#anomaly-table", 0)) > 0, "anomaly rows listed")

    # Screenshots at both sizes, and no sideways scrolling on a phone.
    set_filters(d)
    for w, h in ((1280, 800), (390, 844)):
        d.set_window_size(w, h)
        for view in ("logs", "volume"):
            go(d, view)
            time.sleep(0.2)
            d.save_screenshot(os.path.join(SHOTS, f"dashboard-{view}-{w}x{h}.png"))
        overflow = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        check(overflow <= 1, f"page scrolls sideways at {w}x{h} by {overflow}px")
    d.set_window_size(1280, 800)
    errs = console_errors(d, allowed=("/v0/alerts",))
    check(not errs, f"console errors: {errs}")


def hostile_checks(d, trap):
    foreign = f"http://127.0.0.1:{trap.port}"
    script = "<script>window.__pwned = 1; alert(1)</script>"
    img = f'<img src="{foreign}/x.png" onerror="window.__pwned = 2; alert(2)">'
    link = f'<a href="javascript:alert(3)">click</a> <a href="{foreign}/y">y</a>'
    svc = f'<img src=x onerror="window.__pwned=3">svc'
    long_line = "A" * 20000 + "<b>end</b>"
    meta = {"html": f'<iframe src="{foreign}/f"></iframe>', "js": "javascript:alert(4)",
            "css": f'<style>body{{background:url({foreign}/bg)}}</style>'}
    rows = [
        {"timestamp": now_str(), "service": svc, "severity": "ERROR", "message": script,
         "server_id": link, "error_code": "<svg onload=alert(5)>", "metadata": meta},
        {"timestamp": now_str(), "service": "hostile", "severity": "<b>SEV</b>", "message": img,
         "resource_id": f"{foreign}/r"},
        {"timestamp": now_str(), "service": "hostile", "severity": "ERROR", "message": long_line},
        {"timestamp": now_str(), "service": "hostile", "severity": "ERROR", "message": link},
    ]
    ingest("system_logs", rows)
    ingest("log_anomaly_thresholds", [{"service": svc, "severity": "<i>X</i>", "threshold_per_minute": 1}])
    d.get(BASE + "/#token=" + urllib.request.quote(TOKEN))
    set_filters(d)
    msgs = wait(d, lambda: (lambda m: m if script in m else None)(cells(d, "#logs-table", 4)), "hostile rows")
    for want in (script, img, link, long_line):
        check(want in msgs, f"message shown as written: {want[:60]!r}")
    check(svc in cells(d, "#logs-table", 2), "service shown as written")
    check("<B>SEV</B>" in cells(d, "#logs-table", 3), "severity shown as written (upper-cased on ingest)")
    # Expand every row: metadata and every field as text.
    for b in d.find_elements(By.CSS_SELECTOR, "#logs-table tbody tr button"):
        b.click()
    details = d.execute_script(
        "return [...document.querySelectorAll('#logs-table tr.detail')].map(r => r.textContent).join('\\n')")
    check(json.dumps(meta["html"]) in details and link in details, "metadata (pretty JSON) and server_id shown as text")
    go(d, "volume")
    go(d, "errors")
    labels = d.execute_script("return [...document.querySelectorAll('#errors-chart text')].map(t => t.textContent)")
    check(any(l.startswith("<img src=x") for l in labels), f"chart labels as text: {labels}")
    go(d, "live")
    wait(d, lambda: "Connected" in d.find_element(By.ID, "live-state").text, "live connected")
    ingest("system_logs", [{"timestamp": now_str(), "service": svc, "severity": "ERROR", "message": script + " live"}])
    wait(d, lambda: script + " live" in cells(d, "#live-table", 4), "hostile live row as text", timeout=3)
    go(d, "alerts")
    wait(d, lambda: svc in cells(d, "#thresholds-table", 0), "hostile threshold as text")
    time.sleep(0.5)
    no_dialog(d)
    check(d.execute_script("return window.__pwned") is None, "injected code ran")
    check(d.execute_script("return document.querySelectorAll('main script, main iframe, main img, main style, main a[href^=javascript]').length") == 0,
          "no element was made from log content")
    fr = foreign_requests(d)
    check(not fr, f"requests to other origins: {fr}")
    check(trap.hits == 0, f"the foreign origin got {trap.hits} connections")
    errs = console_errors(d, allowed=("/v0/alerts",))
    check(not errs, f"console errors (a CSP violation would show here): {errs}")


def main():
    os.makedirs(SHOTS, exist_ok=True)
    trap = Trap()
    # A new, empty profile (the network is closed: nothing to sync or update),
    # removed at the end so that runs leave nothing behind.
    profile = tempfile.mkdtemp(prefix="lp-chromium-")
    try:
        d = browser(profile)
        try:
            main_checks(d)
            hostile_checks(d, trap)
        finally:
            d.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    print("dashboard: all checks passed")


if __name__ == "__main__":
    main()
