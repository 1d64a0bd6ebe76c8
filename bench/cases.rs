#![allow(dead_code)] // The full builder API is for cases still to come (verify, evict, export).
//! The benchmark cases: what kvc runs, what it is compared with, on which
//! data. Adding one is a few lines in [`all`]; see docs/performance.md.
//!
//! Command lines are written with placeholders, substituted per run:
//! `{kvc}` the kvc binary, `{dir}` the dataset's cache directory,
//! `{texts}` the directory of its texts alone (datasets built
//! `.with_texts()`), `{scratch}` an empty directory made fresh before
//! every run (untimed), for commands that write (import).
//! In `Cmd::sh` strings the substituted paths are shell-quoted.

use crate::fixture::{DataSpec, Dataset};

/// A command line to time.
#[derive(Clone, Debug)]
pub enum Cmd {
    /// A program and its arguments, run directly.
    Argv(Vec<String>),
    /// A `sh -c` script, for pipelines, globs and redirections.
    Shell(String),
    /// A C program from `bench/`, compiled with `cc -O2` at bench time
    /// (skipped with a message when there is no `cc`), and its arguments.
    C { src: String, args: Vec<String> },
}

impl Cmd {
    pub fn argv(a: &[&str]) -> Cmd {
        Cmd::Argv(a.iter().map(|s| s.to_string()).collect())
    }

    pub fn sh(script: &str) -> Cmd {
        Cmd::Shell(script.to_string())
    }

    pub fn c(src: &str, args: &[&str]) -> Cmd {
        Cmd::C {
            src: src.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// What a case's kvc output must show for the run to count (checked once,
/// on the untimed warm-up run): guards against timing a command that
/// failed fast or read a broken dataset.
pub type Check = fn(&Dataset, &[u8]) -> Result<(), String>;

/// One benchmark: kvc on a dataset against one or more reference commands
/// on the same data.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    /// One line for the report.
    pub about: &'static str,
    pub data: DataSpec,
    /// kvc's arguments (the binary is prepended).
    pub kvc: Cmd,
    pub refs: Vec<(&'static str, Cmd)>,
    /// Timed runs; the global `--runs` when `None` (big-data cases set fewer).
    pub runs: Option<usize>,
    /// Exit codes that count as success for kvc (verify exits 1 on problems).
    pub ok_codes: &'static [i32],
    pub check: Option<Check>,
}

impl Case {
    pub fn new(name: &'static str, data: DataSpec, kvc_args: &[&str]) -> Case {
        let mut argv = vec!["{kvc}"];
        argv.extend_from_slice(kvc_args);
        Case {
            name,
            about: "",
            data,
            kvc: Cmd::argv(&argv),
            refs: Vec::new(),
            runs: None,
            ok_codes: &[0],
            check: None,
        }
    }

    /// kvc as a shell script instead (`{kvc} export -o - {dir} | {kvc} import …`).
    pub fn new_sh(name: &'static str, data: DataSpec, script: &str) -> Case {
        Case {
            kvc: Cmd::sh(script),
            ..Case::new(name, data, &[])
        }
    }

    pub fn about(mut self, about: &'static str) -> Case {
        self.about = about;
        self
    }

    /// Compare against `cmd`, shown as `name`.
    pub fn vs(mut self, name: &'static str, cmd: Cmd) -> Case {
        self.refs.push((name, cmd));
        self
    }

    pub fn runs(mut self, n: usize) -> Case {
        self.runs = Some(n);
        self
    }

    pub fn ok_codes(mut self, codes: &'static [i32]) -> Case {
        self.ok_codes = codes;
        self
    }

    pub fn check(mut self, f: Check) -> Case {
        self.check = Some(f);
        self
    }
}

/// The physical floor of a listing: per `.kv` file exactly open, read 52
/// bytes, fstat, close (bench/floor.c), single-threaded.
fn floor() -> Cmd {
    Cmd::c("floor.c", &["{dir}"])
}

/// `kvc ls --json` listed every checkpoint of the dataset and found nothing
/// invalid.
fn lists_every_checkpoint(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
    let dir = &v["dirs"][0];
    let n = dir["checkpoints"].as_array().map_or(0, |a| a.len());
    let invalid = dir["invalid"].as_array().map_or(0, |a| a.len());
    if n != d.spec.checkpoints || invalid != 0 {
        return Err(format!(
            "listed {n} checkpoints and {invalid} invalid files, the dataset has {} checkpoints",
            d.spec.checkpoints
        ));
    }
    Ok(())
}

/// Every case, in report order.
pub fn all() -> Vec<Case> {
    let chats_10k = DataSpec::chats("chats-10k", 10_000);
    vec![
        Case::new(
            "ls-json-no-title",
            chats_10k.clone(),
            &["ls", "--json", "--no-title", "{dir}"],
        )
        .about("default ds4 policy: reads 52 bytes a file plus the texts supersession needs")
        .vs("ls -l", Cmd::argv(&["ls", "-l", "{dir}"]))
        .vs("C floor", floor())
        .check(lists_every_checkpoint),
        Case::new(
            "ls-json-no-title-classic",
            chats_10k.clone(),
            &[
                "ls",
                "--json",
                "--no-title",
                "--policy",
                "ds4-classic",
                "{dir}",
            ],
        )
        .about("ds4-classic needs no text: 52 bytes a file, the floor's exact work")
        .vs("ls -l", Cmd::argv(&["ls", "-l", "{dir}"]))
        .vs("C floor", floor())
        .check(lists_every_checkpoint),
        Case::new("ls-json", chats_10k.clone(), &["ls", "--json", "{dir}"])
            .about("with titles: reads and hashes every text (information)")
            .vs("C floor", floor())
            .check(lists_every_checkpoint),
        Case::new(
            "ls-table-no-title",
            chats_10k,
            &["ls", "--no-title", "{dir}"],
        )
        .about("the human table of the same listing (information)")
        .vs("ls -l", Cmd::argv(&["ls", "-l", "{dir}"])),
        // Cases for verify, evict and export/import go here (issue 7, second
        // half); docs/performance.md shows how to write them.
    ]
}
