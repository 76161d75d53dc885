//! The README's curl examples work as written against the demo hospital.

use tokio::process::Command;

use crate::helpers::spawn_app;

/// The README's section of curl examples.
const SECTION: &str = "## The same over HTTP/JSON";

/// The code blocks of the section (indented four spaces), each a script.
fn examples() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("cannot read README.md");
    let start = readme
        .find(SECTION)
        .expect("the README has no curl section");
    let section = &readme[start..];
    let end = section[SECTION.len()..]
        .find("\n## ")
        .map_or(section.len(), |at| at + SECTION.len());
    let mut blocks = Vec::new();
    let mut block = Vec::new();
    for line in section[..end].lines() {
        match line.strip_prefix("    ") {
            Some(code) => block.push(code),
            None if !block.is_empty() => blocks.push(std::mem::take(&mut block).join("\n")),
            None => {}
        }
    }
    if !block.is_empty() {
        blocks.push(block.join("\n"));
    }
    blocks
}

#[tokio::test]
async fn the_readmes_curl_examples_work_against_the_demo_hospital() {
    // Arrange: the demo hospital, and a curl that gives up on the endless
    // watch after a few seconds (through its own config file, so that the
    // examples run as written).
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let home = std::env::temp_dir().join(format!("verdad-readme-{}", app.database));
    std::fs::create_dir_all(&home).unwrap();
    let blocks = examples();
    assert!(blocks.len() >= 6, "{blocks:?}");

    for block in &blocks {
        // Act
        let watch = block.contains(":watch");
        let limit = if watch {
            "max-time = 3\n"
        } else {
            "max-time = 60\n"
        };
        std::fs::write(home.join(".curlrc"), limit).unwrap();
        let script = block.replace("localhost:50051", &app.addr.to_string());
        let ran = Command::new("bash")
            .args(["-c", &format!("set -o pipefail\n{script}")])
            .env("VERDAD_KEY", &key)
            .env("HOME", &home)
            .current_dir(&home)
            // Awaited, not blocking: the server runs on this test's thread.
            .output()
            .await
            .expect("bash and curl are needed to check the README");

        // Assert
        let stdout = String::from_utf8_lossy(&ran.stdout);
        // curl's 28: the time limit ended the watch, as Ctrl-C would.
        let expected = if watch { 28 } else { 0 };
        assert_eq!(
            ran.status.code(),
            Some(expected),
            "{block}\n{stdout}\n{}",
            String::from_utf8_lossy(&ran.stderr)
        );
        if block.contains("/nowhere") {
            assert!(stdout.contains("\"NOT_FOUND\""), "{block}\n{stdout}");
        } else {
            assert!(!stdout.contains("\"error\""), "{block}\n{stdout}");
        }
    }
    let csv = std::fs::read_to_string(home.join("event-log.csv")).unwrap();
    assert!(csv.starts_with("case_id,activity,timestamp"), "{csv:.200}");
    let xes = std::fs::read_to_string(home.join("event-log.xes")).unwrap();
    assert!(xes.starts_with("<?xml"));
    let svg = std::fs::read_to_string(home.join("cycle.svg")).unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "{svg:.200}"
    );
    let _ = std::fs::remove_dir_all(&home);
}
