//! A stand-in for a live ds4-server, for concurrency tests: it does to a
//! cache directory what FORMAT.md §7 says the engine does, with files built
//! byte by byte by `Ckpt` (never by kvc).
//!
//! - save: write `<key>.kv.tmp.<pid>` (pid = this test process, alive), then
//!   `rename()` it into place;
//! - hit: rewrite the 48-byte header in place with hits + 1, last_used = now;
//! - consume: delete a checkpoint (a hit above the cold-max-tokens limit).

use super::{chat, Ckpt, REASON_COLD, REASON_CONTINUED};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the fake engine did, for the test's assertions.
#[derive(Debug, Default, Clone)]
pub struct EngineLog {
    pub saves: usize,
    pub hits: usize,
    pub consumed: usize,
    /// Temp files of this (live) writer that disappeared under it: a kvc
    /// bug, since kvc must never touch a live writer's temp file.
    pub temp_stolen: usize,
}

pub struct FakeEngine {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<EngineLog>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// xorshift: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn touch_header(path: &Path) -> bool {
    let Ok(f) = OpenOptions::new().read(true).write(true).open(path) else {
        return false;
    };
    let mut h = [0u8; 48];
    if f.read_exact_at(&mut h, 0).is_err() || &h[..3] != b"KVC" {
        return false;
    }
    let hits = u32::from_le_bytes(h[12..16].try_into().unwrap()) + 1;
    h[12..16].copy_from_slice(&hits.to_le_bytes());
    h[32..40].copy_from_slice(&unix_now().to_le_bytes());
    f.write_all_at(&h, 0).is_ok()
}

impl FakeEngine {
    /// Start working on `dir` until stopped; `seed` makes runs repeatable.
    pub fn start(dir: &Path, seed: u64) -> FakeEngine {
        let stop = Arc::new(AtomicBool::new(false));
        let dir: PathBuf = dir.to_path_buf();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut rng = Rng(seed | 1);
            let mut log = EngineLog::default();
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                n += 1;
                match rng.next() % 4 {
                    0 | 1 => {
                        let c = Ckpt::new(chat(&format!("engine save {seed} {n}")))
                            .reason(if n.is_multiple_of(2) {
                                REASON_COLD
                            } else {
                                REASON_CONTINUED
                            })
                            .hits(0, unix_now());
                        let tmp = dir.join(format!("{}.kv.tmp.{}", c.key(), std::process::id()));
                        let bytes = c.bytes();
                        // Write in two halves with a pause, so kvc sees
                        // half-written temp files of a live writer.
                        let half = bytes.len() / 2;
                        fs::write(&tmp, &bytes[..half]).unwrap();
                        std::thread::sleep(Duration::from_millis(2));
                        let f = OpenOptions::new().append(true).open(&tmp);
                        match f {
                            Ok(f)
                                if f.write_all_at(&bytes[half..], half as u64).is_ok()
                                    && fs::rename(&tmp, dir.join(c.file_name())).is_ok() =>
                            {
                                log.saves += 1;
                            }
                            _ => log.temp_stolen += 1,
                        }
                    }
                    2 | 3 => {
                        let names: Vec<PathBuf> = fs::read_dir(&dir)
                            .unwrap()
                            .filter_map(|e| e.ok())
                            .map(|e| e.path())
                            .filter(|p| p.extension().is_some_and(|x| x == "kv"))
                            .collect();
                        if names.is_empty() {
                            continue;
                        }
                        let victim = &names[(rng.next() % names.len() as u64) as usize];
                        if rng.next().is_multiple_of(5) {
                            if fs::remove_file(victim).is_ok() {
                                log.consumed += 1;
                            }
                        } else if touch_header(victim) {
                            log.hits += 1;
                        }
                    }
                    _ => unreachable!(),
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            log
        });
        FakeEngine {
            stop,
            handle: Some(handle),
        }
    }

    pub fn stop(mut self) -> EngineLog {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
