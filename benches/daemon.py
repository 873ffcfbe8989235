"""Starting a release logpulsed for the restart benches and timing it."""
import http.client
import os
import subprocess
import time


def healthy(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("GET", "/v0/health")
        return c.getresponse().status == 200
    except OSError:
        return False


def start(binary, port, data_dir, token, compaction_delay_secs, stderr=subprocess.DEVNULL):
    """Starts logpulsed; returns (process, ms until its first healthy answer)."""
    env = dict(os.environ, LOGPULSE_ADMIN_TOKEN=token,
               LOGPULSE_COMPACTION_DELAY_SECS=str(compaction_delay_secs))
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir],
                         env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    while not healthy(port):
        if p.poll() is not None:
            raise SystemExit("logpulsed exited")
        time.sleep(0.002)
    return p, (time.monotonic() - t0) * 1000
