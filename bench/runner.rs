//! Running one command and measuring it: wall time from spawn to reap, and
//! the peak resident set size the kernel reports for the reaped child
//! (`wait4`'s `ru_maxrss`, which also covers the children it waited for, so
//! a `sh -c 'a | b'` pipeline reports its largest member). No dependence on
//! `/usr/bin/time`.
//!
//! Linux carries a process's peak RSS across `exec`, and a spawned child
//! starts from its parent's memory (fork copies it; vfork-style spawns
//! share it and `exec` records the parent's peak). A child spawned by the
//! benchmark, which holds datasets' bookkeeping, would inherit the
//! benchmark's peak. So every command is started by a small launcher — this
//! same executable, freshly exec'd with `--launch`, a few MiB — which spawns
//! the command, reaps it with `wait4` and writes the measurement to a file:
//! the floor of what can be measured is then the launcher's own size, as
//! with `/usr/bin/time`, and `true` measured the same way shows it.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The first argument that turns the benchmark into the launcher.
pub const LAUNCH_FLAG: &str = "--launch";

/// What one run of a command cost.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub wall: Duration,
    /// Peak RSS in KiB (Linux reports `ru_maxrss` in KiB).
    pub max_rss_kib: u64,
    /// User plus system CPU time: unlike wall time, barely moved by other
    /// load on a shared machine, and it shows what parallelism costs.
    pub cpu: Duration,
}

/// The outcome of a run whose exit status the caller checks.
pub struct Finished {
    pub sample: Sample,
    pub status: ExitStatus,
}

/// Spawn `argv` (stdio inherited), reap it with `wait4`, and return its
/// wall time, peak RSS and raw wait status.
fn spawn_and_reap(argv: &[OsString]) -> io::Result<(Duration, u64, Duration, i32)> {
    let (prog, args) = argv.split_first().expect("non-empty argv");
    let mut cmd = Command::new(prog);
    cmd.args(args).stdin(Stdio::null());
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = loop {
        // SAFETY: pid is our own child, not yet reaped (std's Child is
        // never waited on: it is dropped below without a wait).
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break rc;
    };
    let wall = start.elapsed();
    drop(child);
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    let tv =
        |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000);
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    Ok((wall, usage.ru_maxrss.max(0) as u64, cpu, status))
}

/// The launcher's `main`: `--launch RESULT_FILE PROG ARGS…`. Writes
/// `<wall ns> <max rss KiB> <cpu ns> <raw wait status>` to RESULT_FILE.
pub fn launcher_main(args: &[OsString]) -> ! {
    let code = match args {
        [result, argv @ ..] if !argv.is_empty() => match spawn_and_reap(argv) {
            Ok((wall, rss, cpu, status)) => {
                let line = format!("{} {rss} {} {status}\n", wall.as_nanos(), cpu.as_nanos());
                match fs::write(result, line) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("launcher: {}: {e}", Path::new(result).display());
                        3
                    }
                }
            }
            Err(e) => {
                eprintln!("launcher: cannot run {:?}: {e}", argv[0]);
                3
            }
        },
        _ => {
            eprintln!("launcher: usage: --launch RESULT_FILE PROG [ARGS...]");
            3
        }
    };
    std::process::exit(code)
}

/// Run `argv` through the launcher with stdout to `stdout` (a file, so a
/// listing's output is really written, or /dev/null) and stderr to
/// `stderr`. `result` is scratch space for the launcher's report.
pub fn run(argv: &[OsString], stdout: &Path, stderr: &Path, result: &Path) -> io::Result<Finished> {
    let _ = fs::remove_file(result);
    let me = std::env::current_exe()?;
    let st = Command::new(me)
        .arg(LAUNCH_FLAG)
        .arg(result)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(File::create(stdout)?)
        .stderr(File::create(stderr)?)
        .status()?;
    let text = fs::read_to_string(result).map_err(|e| {
        io::Error::other(format!(
            "launcher exited with {st} and no result ({e}): {}",
            head(stderr, 2000)
        ))
    })?;
    let f: Vec<u64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let [wall_ns, rss, cpu_ns, status] = f[..] else {
        return Err(io::Error::other(format!("launcher wrote {text:?}")));
    };
    Ok(Finished {
        sample: Sample {
            wall: Duration::from_nanos(wall_ns),
            max_rss_kib: rss,
            cpu: Duration::from_nanos(cpu_ns),
        },
        status: ExitStatus::from_raw(status as i32),
    })
}

/// The first `limit` bytes of a file, lossily, for error messages.
pub fn head(path: &Path, limit: usize) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = File::open(path) {
        let _ = f.take(limit as u64).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).trim_end().to_string()
}

/// Find `prog` the way a shell would: a path as is, else the first
/// executable of that name on `$PATH`.
pub fn which(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        return Path::new(prog).is_file().then(|| PathBuf::from(prog));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Compile a C reference program with `cc -O2`, once per source change.
/// `Err` carries the reason it cannot be built (no `cc`, a compile error),
/// which the caller reports as a skip.
pub fn compile_c(src: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    let cc = which("cc").ok_or("no `cc` on PATH")?;
    let stem = src.file_stem().ok_or("C source without a name")?;
    let exe = out_dir.join(stem);
    let fresh = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(e), Some(s)) = (fresh(&exe), fresh(src)) {
        if e >= s {
            return Ok(exe);
        }
    }
    fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let out = Command::new(cc)
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(src)
        .output()
        .map_err(|e| format!("running cc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cc -O2 {} failed: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(exe)
}

/// Median of durations (mean of the middle two for an even count).
pub fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    let n = s.len();
    if n == 0 {
        Duration::ZERO
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2
    }
}
