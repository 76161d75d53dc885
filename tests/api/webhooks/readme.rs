//! The README's webhook walk-through works as written: the webhook made
//! with curl, the Python receiver verifying the signature on its own, and
//! a failing encounter's event printed by it.

use tokio::process::Command;

use crate::helpers::{free_addr, spawn_app};

const SECTION: &str = "## Alerts to staff: webhooks";

/// The section's shell blocks (indented four spaces), as one script, and
/// its Python receiver (the fenced block).
fn walk_through() -> (String, String) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("cannot read README.md");
    let start = readme
        .find(SECTION)
        .expect("the README has no webhooks section");
    let section = &readme[start + SECTION.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let (before, rest) = section
        .split_once("```python\n")
        .expect("the section has no Python receiver");
    let (python, after) = rest
        .split_once("```")
        .expect("the Python block is not closed");
    let script = [before, after]
        .concat()
        .lines()
        .filter_map(|line| line.strip_prefix("    "))
        .collect::<Vec<_>>()
        .join("\n");
    (script, python.to_owned())
}

#[tokio::test]
async fn the_readmes_receiver_verifies_and_prints_a_failing_encounters_event() {
    // Arrange
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let port = free_addr().port().to_string();
    let (script, python) = walk_through();
    let script = script
        .replace("localhost:50051", &app.addr.to_string())
        .replace("8088", &port);
    let dir = std::env::temp_dir().join(format!("verdad-readme-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("receiver.py"), python.replace("8088", &port)).unwrap();

    // Act: the walk-through, then a moment for the event, then the
    // receiver stopped.
    let ran = Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -eo pipefail\n{script}\n\
                 for _ in $(seq 100); do grep -q opened out 2>/dev/null && break; sleep 0.1; done\n\
                 kill %1"
            )
            .replace("python3 receiver.py &", "python3 receiver.py > out &"),
        ])
        .env("VERDAD_KEY", &key)
        .current_dir(&dir)
        .output()
        .await
        .expect("bash, curl and python3 are needed to check the README");
    let printed = std::fs::read_to_string(dir.join("out")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);

    // Assert
    assert!(
        ran.status.success(),
        "{script}\n{}\n{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    let case = app.all_cases(&key).await.remove(0);
    assert!(
        printed.starts_with("msg_") && printed.contains("recovery_case.opened"),
        "{printed}"
    );
    assert!(printed.trim_end().ends_with(&case.id), "{printed}");
}
