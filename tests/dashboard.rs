//! Proves the embedded dashboard: `GET /` and `/ui/*` come from the binary
//! with a strict Content-Security-Policy and ETags (304 on revalidation), and
//! tests/py/dashboard.py drives it in real headless Chromium (Debian's
//! `chromium` + `chromium-driver` through selenium, installed by .ci/run):
//! no console error, rows in the table, filters narrow them, charts drawn, a
//! live row within 2 s, a threshold from the form drawn in the chart,
//! keyboard use, screenshots at 1280x800 and 390x844 under
//! target/dashboard-screenshots/, and hostile log content (script tags,
//! onerror images, javascript: links, very long lines) shown as text with
//! nothing executed and no request to another origin.
//!
//! Without selenium or Chromium the browser part prints SKIPPED, except
//! under CI=true, where it fails.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

#[test]
fn assets_are_embedded_with_csp_and_etags() {
    let d = Daemon::start();
    let r = d.get_as("/", None);
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("text/html"),
        "{}",
        r.content_type()
    );
    let csp = r
        .header("content-security-policy")
        .expect("CSP")
        .to_string();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{csp}"
    );
    let html = r.text();
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!has_inline_handler(&html), "no inline event handler");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no foreign origin"
    );
    for (path, ct) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/views.js", "text/javascript"),
        ("/ui/charts.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let r = d.get_as(path, None);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.content_type().starts_with(ct),
            "{path}: {}",
            r.content_type()
        );
        let body = r.text();
        assert!(
            !body.contains("innerHTML") && !body.contains("eval("),
            "{path}"
        );
        let etag = r.header("etag").expect("etag").to_string();
        let again = d.request("GET", path, None, &[("If-None-Match", &etag)], None);
        assert_eq!(again.status, 304, "{path}");
        let changed = d.request("GET", path, None, &[("If-None-Match", "\"other\"")], None);
        assert_eq!(changed.status, 200, "{path}");
    }
    let r = d.get_as("/ui/nope.js", None);
    assert_eq!(r.status, 404);
    assert!(r.content_type().starts_with("application/json"));
}

#[test]
fn dashboard_works_in_headless_chromium() {
    let py = match python_with("selenium") {
        Ok(py) => py,
        Err(why) => return skip(&why),
    };
    for bin in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        if !std::path::Path::new(bin).exists() {
            return skip(&format!("{bin} missing (installed by .ci/run)"));
        }
    }
    let d = Daemon::start();
    let shots = target_dir().join("dashboard-screenshots");
    let script = tests_dir().join("py").join("dashboard.py");
    run_script(
        Command::new(&py)
            .arg(&script)
            .arg(&d.base)
            .arg(&d.token)
            .arg(&shots),
        "dashboard: all checks passed",
    );
    for size in ["1280x800", "390x844"] {
        let p = shots.join(format!("dashboard-volume-{size}.png"));
        assert!(
            p.metadata().is_ok_and(|m| m.len() > 1000),
            "{}",
            p.display()
        );
    }
}

/// An attribute such as ` onclick=`.
fn has_inline_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(i, _)| {
        let rest = &html[i + 3..];
        let name = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        name > 0 && rest[name..].starts_with('=')
    })
}

/// `target/` of this build (the test runs from `target/<profile>/deps/`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors().nth(3).expect("target dir").to_path_buf()
}
