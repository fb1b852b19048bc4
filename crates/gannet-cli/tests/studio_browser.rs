//! The studio page in headless Chromium: tests/browser/studio.mjs (playwright-core) clicks through
//! generate, interpolate, the training view and translate against a real `gannet serve`, and
//! checks that the images change.
//!
//! Needs Debian's chromium (/usr/bin/chromium, or $CHROMIUM) and `npm ci` in tests/browser; .ci/run
//! installs both. Without them the test fails, unless GANNET_SKIP_BROWSER=1 says to skip it.
//! GANNET_STUDIO_SCREENSHOTS=DIR keeps the screenshots there (docs/ holds the committed ones).

mod studio_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use studio_common::{tiny_run, Studio};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("browser")
}

/// What is missing to run the browser test, with how to install it.
fn missing_tools(chromium: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !chromium.is_file() {
        missing.push(format!(
            "{} not found: install Debian's chromium (`apt-get install -y chromium`, with sudo if not root) or set CHROMIUM",
            chromium.display()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node not found: install Node.js 20 or newer (`apt-get install -y nodejs npm`)".into());
    }
    if !browser_dir().join("node_modules").join("playwright-core").is_dir() {
        missing.push(format!("playwright-core not installed: run `npm ci` in {}", browser_dir().display()));
    }
    missing
}

#[test]
fn studio_page_generates_interpolates_and_translates_in_chromium() {
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let missing = missing_tools(&chromium);
    if !missing.is_empty() {
        if std::env::var("GANNET_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("skipping the browser test (GANNET_SKIP_BROWSER=1): {}", missing.join("; "));
            return;
        }
        panic!("the studio browser test cannot run:\n  {}\n(.ci/run installs these; GANNET_SKIP_BROWSER=1 skips this test explicitly)", missing.join("\n  "));
    }
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let ckpt = tiny_run(&runs.join("digits"), &[]);
    let studio = Studio::start(&["--checkpoint", ckpt.to_str().unwrap(), "--runs", runs.to_str().unwrap(), "--test-models"]);
    let shots = std::env::var("GANNET_STUDIO_SCREENSHOTS").map(PathBuf::from).unwrap_or_else(|_| tmp.path().join("shots"));
    let out = Command::new("node")
        .arg(browser_dir().join("studio.mjs"))
        .current_dir(browser_dir())
        .env("STUDIO_URL", studio.url())
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("runs node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser test failed (output above)");
    assert!(stdout.contains(" passed, 0 failed"), "no summary line from studio.mjs");
    for shot in ["studio-generate.png", "studio-interpolate.png", "studio-training.png", "studio-translate.png"] {
        assert!(shots.join(shot).is_file(), "no screenshot {shot}");
    }
}
