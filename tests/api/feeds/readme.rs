//! The README's feed walk-through works as written against the demo
//! hospital: the feed created, an A04 sent over MLLP by bash alone, its
//! ACK read, and the encounter found.

use tokio::process::Command;

use crate::helpers::spawn_app;

const SECTION: &str = "## Hospital feeds: HL7 v2 and FHIR";

/// The section's code blocks (indented four spaces), as one script.
fn script() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("cannot read README.md");
    let start = readme
        .find(SECTION)
        .expect("the README has no feeds section");
    let section = &readme[start + SECTION.len()..];
    let end = section.find("\n## ").unwrap_or(section.len());
    section[..end]
        .lines()
        .filter_map(|line| line.strip_prefix("    "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_readmes_feed_walk_through_works_against_the_demo_hospital() {
    // Arrange
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mllp = app.mllp.unwrap();
    let script = script()
        .replace("localhost:50051", &app.addr.to_string())
        .replace("localhost/2575", &format!("127.0.0.1/{}", mllp.port()));

    // Act
    let ran = Command::new("bash")
        .args(["-c", &format!("set -eo pipefail\n{script}")])
        .env("VERDAD_KEY", &key)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .expect("bash and curl are needed to check the README");

    // Assert
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "{script}\n{stdout}\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(stdout.contains("MSA|AA|A04-0001"), "{stdout}");
    assert!(stdout.contains("\"externalId\":\"A04-0001\""), "{stdout}");
    assert!(stdout.contains("moments: 3 stored"), "{stdout}");
    assert!(stdout.trim_end().ends_with("201"), "{stdout}");
    assert!(!stdout.contains("\"error\""), "{stdout}");
}
