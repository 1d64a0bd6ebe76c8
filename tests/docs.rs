//! The man pages in `man/` and the completions in `completions/` are
//! generated from the clap definition in `src/cli.rs`, included here
//! verbatim, so the binary, the pages and the completions share one
//! definition of every flag (as ripgrep does).
//!
//! This test fails when the checked-in files are stale. Regenerate with:
//!
//!     KVC_UPDATE_DOCS=1 cargo test --test docs

#[allow(dead_code)]
#[path = "../src/cli.rs"]
mod cli;

use clap::CommandFactory;
use clap_complete::Shell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::Elvish,
    Shell::PowerShell,
];

fn generate(out: &Path) {
    let man = out.join("man");
    let comp = out.join("completions");
    fs::create_dir_all(&man).unwrap();
    fs::create_dir_all(&comp).unwrap();
    clap_mangen::generate_to(cli::Cli::command(), &man).unwrap();
    for shell in SHELLS {
        clap_complete::generate_to(shell, &mut cli::Cli::command(), "kvc", &comp).unwrap();
    }
}

fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["man", "completions"] {
        let Ok(rd) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            out.insert(
                Path::new(sub).join(e.file_name()),
                fs::read(e.path()).unwrap(),
            );
        }
    }
    out
}

/// Replace what lies between `<!-- NAME:begin -->` and `<!-- NAME:end -->`
/// in `doc` with `body`.
fn splice(doc: &str, name: &str, body: &str) -> String {
    let begin = format!("<!-- {name}:begin -->\n");
    let end = format!("<!-- {name}:end -->");
    let a = doc.find(&begin).expect("begin marker") + begin.len();
    let b = doc.find(&end).expect("end marker");
    format!("{}{body}{}", &doc[..a], &doc[b..])
}

/// The guide's dialect and engine tables are generated from the registry
/// kvc applies (`kvc::format::dialect`), so they cannot drift from it.
#[test]
fn guide_tables_match_the_dialect_registry() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("doc/GUIDE.md");
    let doc = fs::read_to_string(&path).unwrap();
    let want = splice(&doc, "dialects", &kvc::format::dialect::markdown_tables());
    if std::env::var_os("KVC_UPDATE_DOCS").is_some() {
        fs::write(&path, want).unwrap();
        return;
    }
    assert!(
        doc == want,
        "doc/GUIDE.md dialect tables are stale; run `KVC_UPDATE_DOCS=1 cargo test --test docs`"
    );
    for d in &kvc::format::dialect::DIALECTS {
        assert!(doc.contains(&format!("| {} |", d.code)), "{}", d.code);
    }
}

/// The guide's code tables are generated from the one registry kvc
/// reports codes from (`kvc::code::Code`), so a code cannot be added,
/// renamed or re-worded in one place only.
#[test]
fn guide_code_tables_match_the_code_registry() {
    use kvc::code::{markdown_table, Code, Uses};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("doc/GUIDE.md");
    let doc = fs::read_to_string(&path).unwrap();
    let mut want = doc.clone();
    for (name, uses) in [
        ("findings", Uses::FINDING),
        ("invalid", Uses::INVALID),
        ("outcome", Uses::OUTCOME),
        ("verdict", Uses::VERDICT),
        ("kept", Uses::KEPT),
    ] {
        want = splice(&want, &format!("codes:{name}"), &markdown_table(uses));
    }
    if std::env::var_os("KVC_UPDATE_DOCS").is_some() {
        fs::write(&path, want).unwrap();
        return;
    }
    assert!(
        doc == want,
        "doc/GUIDE.md code tables are stale; run `KVC_UPDATE_DOCS=1 cargo test --test docs`"
    );
    for c in Code::ALL {
        assert!(doc.contains(&format!("| `{}` |", c.name())), "{c}");
    }
}

#[test]
fn man_pages_and_completions_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("KVC_UPDATE_DOCS").is_some() {
        for sub in ["man", "completions"] {
            let _ = fs::remove_dir_all(root.join(sub));
        }
        generate(root);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    let want = files(tmp.path());
    let have = files(root);
    let stale: Vec<_> = want
        .iter()
        .filter(|(p, b)| have.get(*p) != Some(*b))
        .map(|(p, _)| p.display().to_string())
        .chain(
            have.keys()
                .filter(|p| !want.contains_key(*p))
                .map(|p| format!("{} (no longer generated)", p.display())),
        )
        .collect();
    assert!(
        stale.is_empty(),
        "stale generated docs: {stale:?}; run `KVC_UPDATE_DOCS=1 cargo test --test docs`"
    );
    assert!(want.contains_key(Path::new("man/kvc.1")));
    assert!(want.contains_key(Path::new("man/kvc-ls.1")));
    assert!(want.contains_key(Path::new("completions/kvc.bash")));
}

/// `kvc man DIR` installs exactly the checked-in pages (0644), and
/// `kvc completions SHELL` prints exactly the checked-in script.
#[test]
fn man_and_completions_commands_install_the_generated_files() {
    use assert_cmd::Command;
    use std::os::unix::fs::PermissionsExt;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share/man/man1");
    Command::cargo_bin("kvc")
        .unwrap()
        .arg("man")
        .arg(&dir)
        .assert()
        .success();
    let installed = files_in(&dir);
    let checked_in = files_in(&root.join("man"));
    assert_eq!(installed, checked_in);
    for e in fs::read_dir(&dir).unwrap() {
        let mode = e.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
    for (shell, file) in [("bash", "kvc.bash"), ("zsh", "_kvc"), ("fish", "kvc.fish")] {
        let out = Command::cargo_bin("kvc")
            .unwrap()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            out.stdout,
            fs::read(root.join("completions").join(file)).unwrap()
        );
    }
    // Sizes and durations complete to nothing, not to file names.
    let bash = fs::read_to_string(root.join("completions/kvc.bash")).unwrap();
    let budget = bash.find("--budget)").expect("a --budget case");
    assert!(
        !bash[budget..budget + 120].contains("compgen -f"),
        "{}",
        &bash[budget..budget + 120]
    );
}

fn files_in(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (PathBuf::from(e.file_name()), fs::read(e.path()).unwrap())
        })
        .collect()
}
