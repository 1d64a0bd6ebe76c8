//! The README's examples are real: every `$ kvc ...` line in a ```console
//! block runs from the repository root (clean environment, no terminal),
//! and its standard output must be the lines printed under it.
//!
//! Regenerate them after an intended change of output with:
//!
//!     KVC_UPDATE_DOCS=1 cargo test --test readme

use std::fs;
use std::path::Path;

/// One example: the command line and the output printed under it.
struct Example {
    command: String,
    output: String,
    /// Where the output starts and ends in the README, for regeneration.
    span: (usize, usize),
}

fn examples(doc: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut in_console = false;
    let mut pos = 0;
    let mut current: Option<(String, usize)> = None;
    let finish = |cur: &mut Option<(String, usize)>, end: usize, out: &mut Vec<Example>| {
        if let Some((command, start)) = cur.take() {
            out.push(Example {
                command,
                output: doc[start..end].to_string(),
                span: (start, end),
            });
        }
    };
    for line in doc.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let text = line.trim_end_matches('\n');
        if !in_console {
            in_console = text == "```console";
            continue;
        }
        if text == "```" {
            finish(&mut current, start, &mut out);
            in_console = false;
        } else if let Some(cmd) = text.strip_prefix("$ ") {
            finish(&mut current, start, &mut out);
            current = Some((cmd.to_string(), pos));
        }
    }
    out
}

fn run(command: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let home = tempfile::tempdir().unwrap();
    let mut args = command.split_whitespace();
    assert_eq!(args.next(), Some("kvc"), "{command}");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("kvc"))
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(root)
        .args(args)
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(2),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn readme_examples_print_what_the_readme_shows() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let doc = fs::read_to_string(&path).unwrap();
    let found = examples(&doc);
    assert!(found.len() >= 3, "the README shows its daily uses");
    if std::env::var_os("KVC_UPDATE_DOCS").is_some() {
        let mut new = doc.clone();
        for e in found.iter().rev() {
            new.replace_range(e.span.0..e.span.1, &run(&e.command));
        }
        fs::write(&path, new).unwrap();
        return;
    }
    for e in &found {
        let got = run(&e.command);
        assert_eq!(
            got, e.output,
            "README example `{}` prints something else now; rerun with KVC_UPDATE_DOCS=1 if intended",
            e.command
        );
    }
}

/// The README stays short: the guide has the details.
#[test]
fn readme_is_short_and_gives_the_two_set_up_commands() {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(doc.lines().count() <= 400, "{} lines", doc.lines().count());
    assert!(doc.contains("cargo run --release -- ls tests/fixtures/mainline"));
    assert!(doc.contains("\ncargo test "));
    let ci = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "cargo test"), "{ci}");
}
