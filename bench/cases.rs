//! The benchmark cases: what kvc runs, what it is compared with, on which
//! data. Adding one is a few lines in [`all`]; see doc/PERFORMANCE.md, "Adding a case".
//!
//! Command lines are written with placeholders, substituted per run:
//! `{kvc}` the kvc binary, `{dir}` the dataset's cache directory,
//! `{texts}` the directory of its texts alone (datasets built
//! `.with_texts()`), `{scratch}` an empty directory made fresh before
//! every run (untimed), for commands that write (import), `{work}` a
//! directory kept for the whole case (made empty before its setup
//! commands, removed after its last run), for inputs the setup prepares,
//! `{prompt}` the dataset's rendered prompt (datasets built
//! `.with_prompt(n)`), `{bench}` this benchmark's executable (its `--raw-put` and
//! `--raw-get` modes are the remote cases' references), and `{bytes:P%}` P percent of the
//! dataset's bytes, as `<n>B` (a budget that scales with the data).
//! In `Cmd::sh` strings the substituted paths are shell-quoted.

use crate::fixture::{DataSpec, Dataset, Payload, MEDIUM_DSV4};

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
    /// Run once before the warm-up, untimed, in order; a failure fails the
    /// case (inputs for the timed commands, e.g. a bundle to import).
    pub setup: Vec<Cmd>,
    /// kvc's peak RSS must stay at or below this (KiB) on every run, the
    /// warm-up included: a claim of bounded memory, checked.
    pub max_rss_kib: Option<u64>,
    /// Run a local S3 server for the case (bench/remote.rs), its objects
    /// under `<this>/s3`, bucket `kvc-bench`.
    pub s3: Option<S3Root>,
}

/// Where a remote case's server keeps its objects: `{scratch}/s3`, empty
/// before every run (for pushes), or `{work}/s3`, filled by the setup and
/// kept for the case (for pulls). Commands recreate `…/s3/kvc-bench`
/// after a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Root {
    Scratch,
    Work,
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
            setup: Vec::new(),
            max_rss_kib: None,
            s3: None,
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

    /// For a case whose kvc exits non-zero by design (e.g. verify on a
    /// dataset with planted defects); no case needs it today.
    #[allow(dead_code)]
    pub fn ok_codes(mut self, codes: &'static [i32]) -> Case {
        self.ok_codes = codes;
        self
    }

    pub fn check(mut self, f: Check) -> Case {
        self.check = Some(f);
        self
    }

    pub fn setup(mut self, cmd: Cmd) -> Case {
        self.setup.push(cmd);
        self
    }

    /// Give the case a local S3 server (see [`S3Root`]).
    pub fn s3(mut self, root: S3Root) -> Case {
        self.s3 = Some(root);
        self
    }

    /// The same kvc command run by another binary (`--baseline PATH`),
    /// first among the references: before and after, interleaved.
    pub fn with_baseline(mut self, binary: &std::path::Path) -> Case {
        let b = binary.display().to_string();
        let cmd = match &self.kvc {
            Cmd::Argv(a) => Cmd::Argv(a.iter().map(|s| s.replace("{kvc}", &b)).collect()),
            Cmd::Shell(s) => {
                Cmd::Shell(s.replace("{kvc}", &format!("'{}'", b.replace('\'', r"'\''"))))
            }
            Cmd::C { .. } => return self,
        };
        self.refs.insert(0, ("kvc baseline", cmd));
        self
    }

    /// Fail the case if kvc's peak RSS ever exceeds `mib` MiB.
    pub fn max_rss_mib(mut self, mib: u64) -> Case {
        self.max_rss_kib = Some(mib * 1024);
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

/// The last line of `kvc verify`'s report says every checkpoint of the
/// dataset was checked (read in full when `DEEP`) and nothing was found:
/// the dataset is clean, so any finding is a fixture or a kvc bug, and a
/// run that found one would time the wrong work.
fn verify_clean<const DEEP: bool>(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let out = String::from_utf8_lossy(out);
    let last = out.lines().last().unwrap_or("");
    let n = d.spec.checkpoints;
    let what = if DEEP {
        format!("({n} checkpoints, {n} read in full)")
    } else {
        format!("({n} checkpoints)")
    };
    let want = format!("{n} files checked {what} in 1 directory: no problems;");
    if !last.starts_with(&want) || out.lines().count() != 1 {
        return Err(format!("expected one line `{want} …`, got: {out}"));
    }
    Ok(())
}

/// `kvc match --json` found the dataset's first conversation (a hit on
/// its longest checkpoint, the whole conversation being a prefix of the
/// prompt) and gave every other checkpoint a verdict.
fn match_hits_json(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
    let n = v["candidates"].as_array().map_or(0, |a| a.len());
    let shorter = v["counts"]["shorter-prefix"].as_u64().unwrap_or(0);
    if v["hit"] != true || n + 1 != d.spec.checkpoints || shorter + 1 != d.spec.turns as u64 {
        return Err(format!(
            "hit {}, {n} candidates of {} checkpoints, {shorter} shorter prefixes: {}",
            v["hit"], d.spec.checkpoints, v["diagnosis"]
        ));
    }
    Ok(())
}

/// The table form of the same: its first line is the hit.
fn match_hits_table(_: &Dataset, out: &[u8]) -> Result<(), String> {
    let first = String::from_utf8_lossy(out)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    if !first.starts_with("hit: ") {
        return Err(format!("expected a hit, got: {first}"));
    }
    Ok(())
}

/// `kvc evict --dry-run --json` planned over every checkpoint, found
/// victims and meets the budget.
fn plans_victims(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
    // Every checkpoint of the dataset is one the engine counts.
    let n = v["counted"].as_u64().unwrap_or(0) as usize;
    let victims = v["victims"].as_array().map_or(0, |a| a.len());
    if n != d.spec.checkpoints || victims == 0 || v["budget_met"] != true || v["dry_run"] != true {
        return Err(format!(
            "planned over {n} of {} checkpoints, {victims} victims, budget_met {}",
            d.spec.checkpoints, v["budget_met"]
        ));
    }
    Ok(())
}

/// `kvc import --json` installed every checkpoint of the dataset and
/// rejected nothing.
fn imports_every_checkpoint(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
    let c = &v["counts"];
    let installed = c["installed"].as_u64().unwrap_or(0) as usize;
    if installed != d.spec.checkpoints || c["rejected"] != 0 || v["truncated"] != false {
        return Err(format!(
            "installed {installed} of {} checkpoints: {c}",
            d.spec.checkpoints
        ));
    }
    Ok(())
}

/// `kvc push --json` uploaded every checkpoint of the dataset.
fn pushes_every_checkpoint(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
    let pushed = v["counts"]["pushed"].as_u64().unwrap_or(0) as usize;
    if pushed != d.spec.checkpoints {
        return Err(format!(
            "pushed {pushed} of {} checkpoints: {}",
            d.spec.checkpoints, v["counts"]
        ));
    }
    Ok(())
}

/// `kvc pull --json` installed every checkpoint of the dataset.
fn pulls_every_checkpoint(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
    let installed = v["counts"]["installed"].as_u64().unwrap_or(0) as usize;
    if installed != d.spec.checkpoints || v["counts"]["rejected"] != 0 {
        return Err(format!(
            "pulled {installed} of {} checkpoints: {}",
            d.spec.checkpoints, v["counts"]
        ));
    }
    Ok(())
}

/// `kvc export --json` (its report, which goes to stderr with `-o -`) put
/// every checkpoint of the dataset in the bundle and left nothing out.
fn exports_every_checkpoint(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
    let n = v["entries"].as_array().map_or(0, |a| a.len());
    let left_out = ["excluded", "vanished", "invalid"]
        .iter()
        .map(|k| v[k].as_array().map_or(0, |a| a.len()))
        .sum::<usize>();
    if n != d.spec.checkpoints || left_out != 0 {
        return Err(format!(
            "exported {n} of {} checkpoints, {left_out} left out",
            d.spec.checkpoints
        ));
    }
    Ok(())
}

/// kvc's side of the export cases: the bundle into a pipe (as to `ssh`),
/// drained by `cat`. sh has no `pipefail`, so export's report is kept and
/// printed after the pipeline, for the check to see that it succeeded.
const EXPORT_TO_PIPE: &str = "{kvc} export --all -o - -d {dir} --json 2> {work}/report.json \
     | cat > /dev/null; cat {work}/report.json";

/// `kvc stats --json` reported every checkpoint of the dataset.
fn stats_every_checkpoint(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
    let n = v["dirs"][0]["checkpoints"]["count"].as_u64().unwrap_or(0) as usize;
    let invalid = v["dirs"][0]["invalid"]["count"].as_u64().unwrap_or(0);
    if n != d.spec.checkpoints || invalid != 0 {
        return Err(format!(
            "counted {n} checkpoints and {invalid} invalid files, the dataset has {}",
            d.spec.checkpoints
        ));
    }
    Ok(())
}

/// `kvc tree --json` has a node for every checkpoint, and the dataset's
/// conversations as chains.
fn tree_every_checkpoint(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(out).map_err(|e| format!("not JSON: {e}"))?;
    let n = v["nodes"].as_array().map_or(0, |a| a.len());
    let chains = v["chains"].as_array().map_or(0, |a| a.len());
    if n != d.spec.checkpoints || chains == 0 || chains >= n {
        return Err(format!(
            "{n} nodes in {chains} chains, the dataset has {} checkpoints",
            d.spec.checkpoints
        ));
    }
    Ok(())
}

/// Timed runs of the cases that move gigabytes (each run writes or reads
/// 2 GiB; three are enough to see the spread).
const BIG_RUNS: usize = 3;

/// Export and import stream through fixed buffers: their peak RSS must not
/// grow with the data (issue 5: "tens of MiB at most"). The commands that
/// read a whole cache hold a compact record per checkpoint and must stay
/// under the same bound at 100,000 checkpoints (issue 16).
const BOUNDED_RSS_MIB: u64 = 64;

/// The human table of `kvc ls` (titles, every column) listed every
/// checkpoint of the dataset: one line a checkpoint, the header and the
/// summary line.
fn tabulates_every_checkpoint(d: &Dataset, out: &[u8]) -> Result<(), String> {
    let out = String::from_utf8_lossy(out);
    let rows = out
        .lines()
        .filter(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            first.len() == 12 && first.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .count();
    let summary = format!("{} checkpoints, ", d.spec.checkpoints);
    if rows != d.spec.checkpoints || !out.lines().any(|l| l.starts_with(&summary)) {
        return Err(format!(
            "{rows} rows, the dataset has {} checkpoints: {}",
            d.spec.checkpoints,
            out.lines().last().unwrap_or("")
        ));
    }
    Ok(())
}

/// `kvc verify` of a clean dataset: exit 0 and one line, as
/// `verify_clean`, without the texts' own directory.
fn verify_clean_100k(d: &Dataset, out: &[u8]) -> Result<(), String> {
    verify_clean::<false>(d, out)
}

/// Every case, in report order.
pub fn all() -> Vec<Case> {
    let chats_10k = DataSpec::chats("chats-10k", 10_000);
    // verify: 2,000 checkpoints of about 1.5 MiB (DSV4 payloads with the
    // real vocabulary), 3 GiB; texts of 8–32 KiB, also written alone for
    // sha1sum.
    let verify_data = DataSpec::chats("verify-2k", 2_000)
        .with_text_bytes(8 << 10)
        .with_payload(Payload::Dsv4(MEDIUM_DSV4))
        .with_texts();
    // evict: 100,000 small checkpoints (texts of a few hundred bytes), so
    // the work is per file, not per byte: about 1.5 KiB each.
    let chats_100k = DataSpec::chats("chats-100k", 100_000).with_text_bytes(256);
    // match: 10,000 mainline checkpoints (payload ABI 2, which mainline's
    // reader loads) and a 1 MiB prompt that extends the first conversation.
    let match_10k = DataSpec::chats("match-10k", 10_000)
        .mainline()
        .with_prompt(1 << 20);
    // export/import: 8 checkpoints of 256 MiB.
    let big_2g = DataSpec::big("big-2g", 8, 256 << 20);
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
            chats_10k.clone(),
            &["ls", "--no-title", "{dir}"],
        )
        .about("the human table of the same listing (information)")
        .vs("ls -l", Cmd::argv(&["ls", "-l", "{dir}"]))
        .check(tabulates_every_checkpoint),
        // Issue 16: the table as people see it, titles and all (every
        // text read and hashed), within 2.5× the floor.
        Case::new("ls-table", chats_10k, &["ls", "{dir}"])
            .about("kvc ls: the human table with titles (reads and hashes every text)")
            .vs("ls -l", Cmd::argv(&["ls", "-l", "{dir}"]))
            .vs("C floor", floor())
            .check(tabulates_every_checkpoint),
        Case::new("verify", verify_data.clone(), &["verify", "{dir}"])
            .about("default mode: every header, text SHA-1, trailer and DSV4 header; payloads skipped")
            .vs(
                "sha1sum",
                Cmd::sh("cd {texts} && find . -name '*.txt' -exec sha1sum -- {} + > /dev/null"),
            )
            .check(verify_clean::<false>),
        Case::new("verify-deep", verify_data, &["verify", "--deep", "{dir}"])
            .about("--deep: also every payload byte (token ids, finite logits)")
            .vs(
                "cat",
                Cmd::sh("find {dir} -name '*.kv' -exec cat -- {} + > /dev/null"),
            )
            .check(verify_clean::<true>),
        // Issue 4: planning over 100,000 checkpoints against a listing of
        // the same directory. The budget keeps 90 % of the bytes, so the
        // plan has thousands of victims whatever the scale.
        Case::new(
            "evict-dry-run",
            chats_100k.clone(),
            &["evict", "--dry-run", "--json", "--budget", "{bytes:90%}", "{dir}"],
        )
        .about("plan an eviction to 90 % of the bytes, change nothing")
        .vs(
            "kvc ls",
            Cmd::argv(&["{kvc}", "ls", "--json", "--no-title", "{dir}"]),
        )
        .vs("ls -l", Cmd::argv(&["ls", "-l", "{dir}"]))
        .vs("C floor", floor())
        .max_rss_mib(BOUNDED_RSS_MIB)
        .check(plans_victims),
        // Issue 16: reading a cache of 100,000 checkpoints costs a compact
        // record each, not what the output or the files hold.
        Case::new("ls-100k", chats_100k.clone(), &["ls", "{dir}"])
            .about("kvc ls (table, titles) over 100,000 checkpoints; peak RSS bounded")
            .vs("C floor", floor())
            .max_rss_mib(BOUNDED_RSS_MIB)
            .check(tabulates_every_checkpoint),
        Case::new("ls-json-100k", chats_100k.clone(), &["ls", "--json", "{dir}"])
            .about("kvc ls --json (titles) over 100,000 checkpoints; peak RSS bounded")
            .vs("C floor", floor())
            .max_rss_mib(BOUNDED_RSS_MIB)
            .check(lists_every_checkpoint),
        Case::new("verify-100k", chats_100k.clone(), &["verify", "{dir}"])
            .about("kvc verify over 100,000 small checkpoints; peak RSS bounded")
            .vs("C floor", floor())
            .max_rss_mib(BOUNDED_RSS_MIB)
            .check(verify_clean_100k),
        // Issue 11: explaining a lookup over 10,000 checkpoints with a
        // 1 MiB prompt must cost at most twice a listing of the same
        // directory. --ctx 65536 lets every checkpoint through (the
        // dataset writes 32768 and 65536).
        Case::new(
            "match",
            match_10k.clone(),
            &["match", "--ctx", "65536", "-d", "{dir}", "{prompt}"],
        )
        .about("which checkpoint ds4 loads for a 1 MiB prompt, and every other file's verdict (table)")
        .vs("kvc ls", Cmd::argv(&["{kvc}", "ls", "--no-title", "{dir}"]))
        .vs("C floor", floor())
        .check(match_hits_table),
        Case::new(
            "match-json",
            match_10k,
            &["match", "--json", "--ctx", "65536", "-d", "{dir}", "{prompt}"],
        )
        .about("the same as JSON")
        .vs(
            "kvc ls --json",
            Cmd::argv(&["{kvc}", "ls", "--json", "--no-title", "{dir}"]),
        )
        .check(match_hits_json),
        // Issues 14 and 16: stats and tree over 100,000 checkpoints,
        // against a listing of the same directory, in at most 64 MiB.
        Case::new("stats", chats_100k.clone(), &["stats", "--json", "{dir}"])
            .about("kvc stats --json: breakdowns, hit spread, the reclaimable plans (evict, gc)")
            .vs(
                "kvc ls --json --no-title",
                Cmd::argv(&["{kvc}", "ls", "--json", "--no-title", "{dir}"]),
            )
            .vs("kvc ls --json", Cmd::argv(&["{kvc}", "ls", "--json", "{dir}"]))
            .max_rss_mib(BOUNDED_RSS_MIB)
            .check(stats_every_checkpoint),
        Case::new("tree", chats_100k.clone(), &["tree", "--json", "{dir}"])
            .about("kvc tree --json: the prefix forest by streaming hashes, with titles")
            .vs(
                "kvc ls --json --no-title",
                Cmd::argv(&["{kvc}", "ls", "--json", "--no-title", "{dir}"]),
            )
            .vs("kvc ls --json", Cmd::argv(&["{kvc}", "ls", "--json", "{dir}"]))
            .max_rss_mib(BOUNDED_RSS_MIB)
            .check(tree_every_checkpoint),
        // Moving a cache: export piped into import, against tar piped into
        // tar. kvc import fsyncs every file and the directory; tar does
        // not, so the third reference is tar followed by an fsync of every
        // file it wrote (`sync FILE…`), the same durability.
        Case::new_sh(
            "export-import",
            big_2g.clone(),
            "{kvc} export --all -o - -d {dir} | {kvc} import - -d {scratch} --json",
        )
        .about("export --all piped into import (verifies, fsyncs): 2 GiB")
        .runs(BIG_RUNS)
        .vs("tar | tar", Cmd::sh("tar -cf - -C {dir} . | tar -xf - -C {scratch}"))
        .vs(
            "tar | tar, sync",
            Cmd::sh(
                "tar -cf - -C {dir} . | tar -xf - -C {scratch} && find {scratch} -exec sync -- {} +",
            ),
        )
        .max_rss_mib(BOUNDED_RSS_MIB)
        .check(imports_every_checkpoint),
        // Each side alone, for its own peak RSS (a pipeline reports its
        // largest member). Both write through `cat`: GNU tar notices an
        // archive that is /dev/null and then reads nothing.
        Case::new_sh("export-all", big_2g.clone(), EXPORT_TO_PIPE)
        .about("export --all to a pipe: 2 GiB read once, BLAKE3, tar framing")
        .runs(BIG_RUNS)
        .vs("tar -c", Cmd::sh("tar -cf - -C {dir} . | cat > /dev/null"))
        .max_rss_mib(BOUNDED_RSS_MIB)
        .check(exports_every_checkpoint),
        // The same bundle file for both: kvc's own export of the dataset
        // (made once, untimed) is a plain tar that GNU tar extracts.
        Case::new(
            "import",
            big_2g,
            &["import", "{work}/bundle.tar", "-d", "{scratch}", "--json"],
        )
        .about("import a 2 GiB bundle file: verify every byte, fsync, rename")
        .setup(Cmd::sh("{kvc} export --all -o {work}/bundle.tar -d {dir} > /dev/null"))
        .runs(BIG_RUNS)
        .vs("tar -x", Cmd::sh("tar -xf {work}/bundle.tar -C {scratch}"))
        .vs(
            "tar -x, sync",
            Cmd::sh("tar -xf {work}/bundle.tar -C {scratch} && find {scratch} -exec sync -- {} +"),
        )
        .max_rss_mib(BOUNDED_RSS_MIB)
        .check(imports_every_checkpoint),
        // Issue 5: one checkpoint of 2 GiB out in constant memory.
        Case::new_sh(
            "export-one-2g",
            DataSpec::big("one-2g", 1, 2 << 30),
            EXPORT_TO_PIPE,
        )
        .about("one 2 GiB checkpoint to a pipe; peak RSS bounded")
        .runs(BIG_RUNS)
        .vs("cat", Cmd::sh("find {dir} -name '*.kv' -exec cat -- {} + | cat > /dev/null"))
        .vs("tar -c", Cmd::sh("tar -cf - -C {dir} . | cat > /dev/null"))
        .max_rss_mib(BOUNDED_RSS_MIB)
        .check(exports_every_checkpoint),
        // Issue 15: one 2 GiB checkpoint through a local S3 server
        // (s3s-fs in the benchmark's process), against object_store's own
        // multipart upload and streaming download of the same bytes (the
        // `aws s3 cp` of this benchmark), in bounded memory.
        Case::new_sh(
            "push-2g",
            DataSpec::big("one-2g", 1, 2 << 30),
            "mkdir -p {scratch}/s3/kvc-bench && {kvc} push --all -d {dir} --remote s3://kvc-bench/fleet --json",
        )
        .about("push one 2 GiB checkpoint: check + BLAKE3 pass, then 8 MiB parts, conditional completion")
        .s3(S3Root::Scratch)
        .runs(BIG_RUNS)
        .vs(
            "object_store put",
            Cmd::sh("mkdir -p {scratch}/s3/kvc-bench && {bench} --raw-put s3://kvc-bench/raw {dir}"),
        )
        .max_rss_mib(BOUNDED_RSS_MIB)
        .check(pushes_every_checkpoint),
        Case::new(
            "pull-2g",
            DataSpec::big("one-2g", 1, 2 << 30),
            &["pull", "--all", "-d", "{scratch}/cache", "--remote", "s3://kvc-bench/fleet", "--json"],
        )
        .about("pull it into an empty cache: every byte checked, fsync, rename")
        .s3(S3Root::Work)
        .setup(Cmd::sh(
            "mkdir -p {work}/s3/kvc-bench && {kvc} push --all -d {dir} --remote s3://kvc-bench/fleet > /dev/null",
        ))
        .runs(BIG_RUNS)
        .vs(
            "object_store get",
            Cmd::argv(&["{bench}", "--raw-get", "s3://kvc-bench/fleet", "{scratch}/raw"]),
        )
        .max_rss_mib(BOUNDED_RSS_MIB)
        .check(pulls_every_checkpoint),
    ]
}
