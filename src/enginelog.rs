//! Reading ds4-server's disk KV cache log lines: what the engine did to
//! its cache (hits, stores, evictions, skips, failed loads, discarded
//! payloads), per day, in one streaming pass.
//!
//! The formats are ds4's own, from the format strings of ds4 mainline
//! b030961 (`ds4_kvstore.c`, `ds4_server.c`; the same strings since
//! 599e49d, where they moved out of `ds4_server.c`):
//!
//! ```text
//! %s: kv cache stored tokens=%d trimmed=%d reason=%s key=%s size=%.2f MiB save=%.1f ms        (kvstore.c:1140)
//! %s: kv cache hit text%s%s tokens=%d text=%u quant=%u key=%s load=%.1f ms file=%s            (kvstore.c:1323)
//! %s: kv cache hit text%s%s tokens=%d … load=%.1f ms consumed file=%s                        (before 24fa85e)
//! %s: kv cache evicted reason=disk-cache-full tokens=%u hits=%u size=%.2f MiB file=%s         (kvstore.c:591)
//! %s: kv cache skipped tokens=%d reason=%s because <cause>                                    (kvstore.c:956-1115)
//! %s: kv cache skipped tokens=%d because rendered text is too large                           (kvstore.c:976)
//! %s: kv cache load failed%s%s %s: %s load=%.1f ms                                           (kvstore.c:1307)
//! %s: kv cache discarded corrupt text-prefix payload%s%s %s                                   (kvstore.c:1298)
//! %s: kv cache store failed (%s): %s save=%.1f ms                                             (kvstore.c:1125)
//! %s: kv cache failed to create %s: %s save=%.1f ms                                           (kvstore.c:1061)
//! %s: kv cache replaced incompatible file %s                                                  (kvstore.c:859)
//! ds4-server: kv cache discarded reason=prefill-failed file=%s                                (server.c:9582)
//! ds4-server: kv cache failed to discard prefill-failed file=%s: %s                           (server.c:9586)
//! %s: KV disk cache %s (budget=%llu MiB, cross-quant=%s, …)                                   (kvstore.c:631)
//! ```
//!
//! `%s` first is the log name (`ds4-server`, `ds4`). ds4-server prints each
//! line through `server_log`, which puts the local time first as
//! `%m%d %H:%M:%S` (no year) and, on a terminal, colour codes around the
//! message. A line is recognised by the phrase `kv cache` and read by its
//! `key=value` fields; whatever stands before the phrase (a time stamp, a
//! host, a unit name) is ignored except for a time stamp at its start.
//!
//! What mainline does **not** log: the stored line's `key=` is the key
//! *kind* (`token-text`, `visible-transcript`, `responses-visible`, …),
//! not the file's SHA-1, so a store cannot be tied to its file by name.
//! kvc ties an eviction to a store by the 40-hex key when a fork logs it,
//! else by tokens and size, which both lines print from the same file
//! size with `%.2f MiB` (see [`Link`]).
//!
//! Memory is bounded: one pass over the lines, a map per day (a few
//! hundred bytes a day), and at most [`LogOptions::max_pending`] stores
//! waiting for their eviction (about 60 bytes each; the oldest is dropped
//! and counted beyond that).

use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::BufRead;

/// The default bound on stores waiting to be matched with an eviction:
/// more than a 4 GiB budget of checkpoints of 40 KiB holds.
pub const DEFAULT_MAX_PENDING: usize = 100_000;

/// A moment on the log's own clock (local time as the server printed it):
/// seconds since 1970-01-01 00:00 of that clock, no time zone applied.
pub type Stamp = i64;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` of a stamp.
pub fn day_name(s: Stamp) -> String {
    let (y, m, d) = civil_from_days(s.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

fn valid_date(m: u32, d: u32) -> bool {
    (1..=12).contains(&m) && (1..=31).contains(&d)
}

fn num(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `HH:MM:SS` (fractions ignored) as seconds of the day.
fn time_of_day(s: &str) -> Option<i64> {
    let s = s.split(['.', ',']).next()?;
    let mut it = s.split(':');
    let (h, m, sec) = (num(it.next()?)?, num(it.next()?)?, num(it.next()?)?);
    (it.next().is_none() && h < 24 && m < 60 && sec < 61)
        .then_some(h as i64 * 3600 + m as i64 * 60 + sec as i64)
}

/// A date written `YYYY-MM-DD`, as a day number.
fn iso_date(s: &str) -> Option<i64> {
    let mut it = s.split('-');
    let (y, m, d) = (it.next()?, num(it.next()?)?, num(it.next()?)?);
    if y.len() != 4 || it.next().is_some() || !valid_date(m, d) {
        return None;
    }
    Some(days_from_civil(num(y)? as i64, m, d))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A month and day without a year gets the year of `now` (UTC), or the
/// year before when that would put it more than a day after `now`: a log
/// is read after it was written, and a December line read in January is
/// last year's (as syslog readers decide).
fn with_year(m: u32, d: u32, secs: i64, now: u64) -> Stamp {
    let now = now as i64;
    let (y, _, _) = civil_from_days(now.div_euclid(86_400));
    let at = |y: i64| days_from_civil(y, m, d) * 86_400 + secs;
    if at(y) > now + 86_400 {
        at(y - 1)
    } else {
        at(y)
    }
}

/// A time stamp at the start of a line, on the log's clock:
/// `2026-08-05T14:03:22[.123][Z|+02:00]` or with a space (ISO 8601, journalctl
/// `-o short-iso`), ds4-server's own `0805 14:03:22`, or syslog's
/// `Aug  5 14:03:22`; optionally inside `[…]`. The zone, when given, is
/// not applied: days are the days the log printed.
pub fn leading_stamp(line: &str, now: u64) -> Option<Stamp> {
    let s = line.trim_start().trim_start_matches('[');
    let mut words = s.split_whitespace();
    let first = words.next()?;
    // ISO date, with the time after `T` or in the next word.
    if first.len() >= 10 && first.is_char_boundary(10) {
        if let Some(day) = iso_date(&first[..10]) {
            let rest = first[10..].trim_start_matches('T');
            let time = if rest.is_empty() {
                words.next().map(|w| w.trim_end_matches(']'))
            } else {
                Some(rest)
            };
            let secs = time
                .map(|t| {
                    let t = t.trim_end_matches('Z');
                    let t = t.split(['+', '-']).next().unwrap_or(t);
                    time_of_day(t)
                })
                .unwrap_or(Some(0))
                .unwrap_or(0);
            return Some(day * 86_400 + secs);
        }
    }
    // ds4-server: `%m%d %H:%M:%S`.
    if first.len() == 4 && first.bytes().all(|b| b.is_ascii_digit()) {
        let (m, d) = (num(&first[..2])?, num(&first[2..])?);
        let secs = time_of_day(words.next()?.trim_end_matches(']'))?;
        return valid_date(m, d).then(|| with_year(m, d, secs, now));
    }
    // syslog: `Aug  5 14:03:22`.
    let m = MONTHS.iter().position(|&n| n == first)? as u32 + 1;
    let d = num(words.next()?)?;
    let secs = time_of_day(words.next()?.trim_end_matches(']'))?;
    valid_date(m, d).then(|| with_year(m, d, secs, now))
}

/// `--since`/`--until` values: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` (on
/// the log's clock), or a duration back from `now` (`7d`, `12h`; `now` is
/// UTC, so against a log in local time the window is off by the zone's
/// offset). `end_of_day`: a date alone means its end (for `--until`,
/// which is then inclusive of that day).
pub fn parse_bound(s: &str, now: u64, end_of_day: bool) -> Result<Stamp, String> {
    let s = s.trim();
    if let Some(day) = s.get(..10).and_then(iso_date) {
        let rest = &s[10..];
        if rest.is_empty() {
            return Ok(day * 86_400 + if end_of_day { 86_400 } else { 0 });
        }
        let t = rest.trim_start_matches(['T', ' ']);
        let t = if t.matches(':').count() == 1 {
            format!("{t}:00")
        } else {
            t.to_string()
        };
        if let Some(secs) = time_of_day(&t) {
            return Ok(day * 86_400 + secs);
        }
    }
    match humantime::parse_duration(s) {
        Ok(d) => Ok(now as i64 - d.as_secs() as i64),
        Err(_) => Err(format!(
            "{s:?}: expected a date (2026-08-05), a date and time (2026-08-05T14:00) or a duration (7d, 12h)"
        )),
    }
}

/// Why ds4 did not store a checkpoint (the text after `because`).
pub fn skip_cause(because: &str) -> &'static str {
    if because.starts_with("live checkpoint is at") {
        "live-moved"
    } else if because.starts_with("rendered text is too large") {
        "text-too-large"
    } else if because.starts_with("tool map size overflowed") {
        "tool-map-overflow"
    } else if because.starts_with("KV payload staging failed") {
        "staging-failed"
    } else if because.starts_with("estimated file size") {
        "over-budget-estimated"
    } else if because.starts_with("final file size") {
        "over-budget-final"
    } else {
        "other"
    }
}

/// One kv-cache line, read.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Stored {
        tokens: u64,
        reason: String,
        /// The 40-hex key when the line names the file (some forks); ds4
        /// mainline logs the key kind instead.
        key: Option<[u8; 20]>,
        bytes: u64,
        save_ms: f64,
    },
    Hit {
        tokens: u64,
        load_ms: f64,
        /// ds4 before 24fa85e deleted a large checkpoint on its hit.
        consumed: bool,
        key: Option<[u8; 20]>,
    },
    Evicted {
        tokens: u64,
        hits: u64,
        bytes: u64,
        key: Option<[u8; 20]>,
    },
    Skipped {
        cause: &'static str,
    },
    LoadFailed,
    DiscardedCorrupt,
    DiscardedPrefillFailed,
    StoreFailed,
    ReplacedIncompatible,
    /// `KV disk cache DIR (budget=N MiB, …)`: the engine opened its cache.
    Opened {
        dir: String,
        budget: u64,
    },
    /// A kv-cache line kvc knows but does not count (`live kv cache miss`,
    /// a fork's notes).
    Other,
}

/// What one line is.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// No `kv cache` phrase: not the cache's line.
    NotKv,
    /// A kv-cache line whose fields did not read.
    Unparsed,
    Event(Event),
}

/// Remove ANSI escape sequences (ds4 colours its lines on a terminal).
fn strip_ansi(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\x1b') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if it.peek() == Some(&'[') {
            it.next();
            for c in it.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out.into()
}

/// `key=value` fields of the words, a unit word after a number kept apart.
struct Fields<'a> {
    words: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    fn new(s: &'a str) -> Fields<'a> {
        Fields {
            words: s.split_whitespace().collect(),
        }
    }

    fn get(&self, k: &str) -> Option<&'a str> {
        self.words.iter().find_map(|w| {
            w.strip_prefix(k)
                .and_then(|r| r.strip_prefix('='))
                .filter(|v| !v.is_empty())
        })
    }

    fn int(&self, k: &str) -> Option<u64> {
        self.get(k)?.parse().ok()
    }

    /// `k=12.5 ms`: milliseconds (the unit word must follow).
    fn ms(&self, k: &str) -> Option<f64> {
        let i = self.words.iter().position(|w| {
            w.strip_prefix(k)
                .is_some_and(|r| r.starts_with('=') && r.len() > 1)
        })?;
        let v: f64 = self.words[i][k.len() + 1..].parse().ok()?;
        (self.words.get(i + 1) == Some(&"ms") && v.is_finite()).then_some(v)
    }

    /// `k=412.50 MiB` in bytes: ds4 prints sizes as `%.2f MiB`, so the
    /// value is good to 0.005 MiB (5 KiB).
    fn size(&self, k: &str) -> Option<u64> {
        let i = self.words.iter().position(|w| {
            w.strip_prefix(k)
                .is_some_and(|r| r.starts_with('=') && r.len() > 1)
        })?;
        let v: f64 = self.words[i][k.len() + 1..].parse().ok()?;
        let unit = match *self.words.get(i + 1)? {
            "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            _ => return None,
        };
        (v.is_finite() && v >= 0.0).then(|| (v * unit).round() as u64)
    }
}

/// The key named by a path's file name `<40 hex>.kv`.
fn key_of_path(p: &str) -> Option<[u8; 20]> {
    let name = p.rsplit('/').next()?;
    hex40(name.strip_suffix(".kv")?)
}

fn hex40(s: &str) -> Option<[u8; 20]> {
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// The text after `file=`, to the end of the line (a path may hold spaces).
fn file_field(s: &str) -> Option<&str> {
    let i = s.find(" file=")?;
    Some(s[i + 6..].trim_end())
}

/// Read one line (without its newline).
pub fn parse_line(raw: &str) -> Line {
    let line = strip_ansi(raw);
    let line = line.as_ref();
    if let Some(i) = line.find("KV disk cache ") {
        let rest = &line[i + "KV disk cache ".len()..];
        let Some(open) = rest.rfind(" (budget=") else {
            return Line::Unparsed;
        };
        let f = Fields::new(&rest[open + 2..]);
        let Some(mib) = f.get("budget").and_then(|v| v.parse::<u64>().ok()) else {
            return Line::Unparsed;
        };
        return Line::Event(Event::Opened {
            dir: rest[..open].to_string(),
            budget: mib.saturating_mul(1 << 20),
        });
    }
    let Some(i) = line.find("kv cache ") else {
        return Line::NotKv;
    };
    if line[..i].ends_with("live ") {
        return Line::Event(Event::Other);
    }
    let rest = &line[i + "kv cache ".len()..];
    let f = Fields::new(rest);
    let verb = |v: &str| rest.starts_with(v);
    let event = if verb("stored ") {
        (|| {
            Some(Event::Stored {
                tokens: f.int("tokens")?,
                reason: f.get("reason")?.to_string(),
                key: f.get("key").and_then(hex40),
                bytes: f.size("size")?,
                save_ms: f.ms("save").unwrap_or(0.0),
            })
        })()
    } else if verb("hit ") {
        (|| {
            Some(Event::Hit {
                tokens: f.int("tokens")?,
                load_ms: f.ms("load")?,
                consumed: f.words.contains(&"consumed"),
                key: file_field(rest).and_then(key_of_path),
            })
        })()
    } else if verb("evicted ") {
        (|| {
            Some(Event::Evicted {
                tokens: f.int("tokens")?,
                hits: f.int("hits")?,
                bytes: f.size("size")?,
                key: file_field(rest).and_then(key_of_path),
            })
        })()
    } else if verb("skipped ") {
        f.int("tokens").and_then(|_| {
            let because = rest.find(" because ")?;
            Some(Event::Skipped {
                cause: skip_cause(&rest[because + 9..]),
            })
        })
    } else if verb("load failed") {
        rest.contains(": ").then_some(Event::LoadFailed)
    } else if verb("discarded corrupt ") {
        Some(Event::DiscardedCorrupt)
    } else if verb("discarded reason=prefill-failed") {
        Some(Event::DiscardedPrefillFailed)
    } else if verb("store failed") || verb("failed to create ") {
        Some(Event::StoreFailed)
    } else if verb("replaced incompatible file") {
        Some(Event::ReplacedIncompatible)
    } else if verb("failed to discard")
        || verb("trailer ")
        || verb("reaped ")
        || verb("failed to evict")
        || f.words
            .first()
            .is_some_and(|w| w.contains('=') || w.ends_with(';'))
        || verb("retire-candidate")
        || verb("lru-retire")
    {
        Some(Event::Other)
    } else {
        None
    };
    match event {
        Some(e) => Line::Event(e),
        None => Line::Unparsed,
    }
}

pub use crate::stats::Tally;

/// Stores of one reason.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stores {
    pub count: u64,
    /// File sizes as logged (`%.2f MiB`, good to 5 KiB each).
    pub bytes: u64,
    /// Sum of the logged save times, milliseconds.
    pub save_ms: f64,
}

/// Evictions by the engine's budget pass.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Evictions {
    pub count: u64,
    pub bytes: u64,
    /// Sum of the `hits=` the evicted files had.
    pub hits: u64,
    /// Evicted with `hits=0`: written and never read (wasted writes).
    pub unread: Tally,
    /// Evictions by the hits the file had: `0`, `1`, `2-4`, `5-15`, `16+`.
    pub by_hits: BTreeMap<&'static str, Tally>,
}

/// The bucket of an evicted file's hit count.
pub fn hits_bucket(hits: u64) -> &'static str {
    match hits {
        0 => "0",
        1 => "1",
        2..=4 => "2-4",
        5..=15 => "5-15",
        _ => "16+",
    }
}

/// What the engine did in one day (or in the whole window).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Activity {
    pub hits: u64,
    /// Sum of the logged load times, milliseconds.
    pub hit_load_ms: f64,
    pub hit_tokens: u64,
    /// Hits that deleted the file (ds4 before 24fa85e, most forks).
    pub hits_consumed: u64,
    /// Stores by reason (`cold`, `continued`, `evict`, `shutdown`, …).
    pub stored: BTreeMap<String, Stores>,
    /// Bytes written by all stores: the write volume.
    pub written_bytes: u64,
    pub evicted: Evictions,
    /// Stores skipped, by cause.
    pub skipped: BTreeMap<&'static str, u64>,
    pub load_failed: u64,
    pub discarded_corrupt: u64,
    pub discarded_prefill_failed: u64,
    pub store_failed: u64,
    pub replaced_incompatible: u64,
}

impl Activity {
    fn add(&mut self, e: &Event) {
        match e {
            Event::Stored {
                reason,
                bytes,
                save_ms,
                ..
            } => {
                let s = self.stored.entry(reason.clone()).or_default();
                s.count += 1;
                s.bytes += bytes;
                s.save_ms += save_ms;
                self.written_bytes += bytes;
            }
            Event::Hit {
                tokens,
                load_ms,
                consumed,
                ..
            } => {
                self.hits += 1;
                self.hit_load_ms += load_ms;
                self.hit_tokens += tokens;
                self.hits_consumed += *consumed as u64;
            }
            Event::Evicted { hits, bytes, .. } => {
                self.evicted.count += 1;
                self.evicted.bytes += bytes;
                self.evicted.hits += hits;
                self.evicted
                    .by_hits
                    .entry(hits_bucket(*hits))
                    .or_default()
                    .add(*bytes);
                if *hits == 0 {
                    self.evicted.unread.add(*bytes);
                }
            }
            Event::Skipped { cause } => *self.skipped.entry(cause).or_default() += 1,
            Event::LoadFailed => self.load_failed += 1,
            Event::DiscardedCorrupt => self.discarded_corrupt += 1,
            Event::DiscardedPrefillFailed => self.discarded_prefill_failed += 1,
            Event::StoreFailed => self.store_failed += 1,
            Event::ReplacedIncompatible => self.replaced_incompatible += 1,
            Event::Opened { .. } | Event::Other => {}
        }
    }
}

/// How an eviction is tied to the store that wrote its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Link {
    /// The store line named the file's key (a fork that logs it).
    Key([u8; 20]),
    /// ds4 mainline: the same token count and the same `%.2f MiB` size
    /// (both lines print the file's size that way). Two files of equal
    /// tokens and size are told apart by order only: the oldest waiting
    /// store is taken.
    Shape { tokens: u64, centi_mib: u64 },
}

fn centi_mib(bytes: u64) -> u64 {
    ((bytes as f64) / (1024.0 * 1024.0) * 100.0).round() as u64
}

#[derive(Clone, Debug)]
struct Pending {
    seq: u64,
    reason: String,
    bytes: u64,
}

/// Stores waiting for the eviction of their file, at most `max` of them.
#[derive(Debug, Default)]
struct PendingStores {
    by_link: HashMap<Link, VecDeque<Pending>>,
    /// Insertion order, for dropping the oldest; entries already matched
    /// are skipped when met.
    order: VecDeque<(u64, Link)>,
    live: usize,
    next: u64,
    dropped: u64,
}

impl PendingStores {
    fn push(&mut self, link: Link, reason: &str, bytes: u64, max: usize) {
        let seq = self.next;
        self.next += 1;
        self.by_link.entry(link).or_default().push_back(Pending {
            seq,
            reason: reason.to_string(),
            bytes,
        });
        self.order.push_back((seq, link));
        self.live += 1;
        while self.live > max {
            let Some((seq, link)) = self.order.pop_front() else {
                break;
            };
            if let Some(q) = self.by_link.get_mut(&link) {
                if q.front().is_some_and(|p| p.seq == seq) {
                    q.pop_front();
                    self.live -= 1;
                    self.dropped += 1;
                    if q.is_empty() {
                        self.by_link.remove(&link);
                    }
                }
            }
        }
        // Matched entries leave stale places in `order`: keep it within
        // twice the live count.
        if self.order.len() > 2 * max.max(16) {
            let by_link = &self.by_link;
            self.order.retain(|(seq, link)| {
                by_link
                    .get(link)
                    .is_some_and(|q| q.iter().any(|p| p.seq == *seq))
            });
        }
    }

    fn take(&mut self, link: Link) -> Option<Pending> {
        let q = self.by_link.get_mut(&link)?;
        let p = q.pop_front();
        if q.is_empty() {
            self.by_link.remove(&link);
        }
        if p.is_some() {
            self.live -= 1;
        }
        p
    }
}

/// Stores followed, in the window, by the eviction of their file.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Followed {
    /// Stored, then evicted with `hits=0`, by store reason.
    pub evicted_unread: BTreeMap<String, Tally>,
    /// Stored, then evicted after at least one hit, by store reason.
    pub evicted_after_hits: BTreeMap<String, Tally>,
    /// Evictions tied to their store by the key the store line named.
    pub matched_by_key: u64,
    /// Evictions tied by tokens and size (ds4 mainline logs no key).
    pub matched_by_shape: u64,
    /// Evictions of files stored before the window (or whose store line
    /// was not read).
    pub unmatched_evictions: u64,
    /// Stores still on disk at the end of the window, as far as the log
    /// tells (never evicted in it, or consumed by a hit).
    pub not_evicted: u64,
    /// Stores forgotten to keep memory bounded (`max_pending`).
    pub dropped: u64,
}

/// The engine's own budget, from the line it logs when it opens the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoggedBudget {
    /// The directory as logged (sanitize before showing).
    pub dir: String,
    pub budget: u64,
    /// The day of the line, when it had a time stamp.
    pub day: Option<String>,
}

/// Options of a log read.
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// Lines before this are left out.
    pub since: Option<Stamp>,
    /// Lines at or after this are left out.
    pub until: Option<Stamp>,
    /// Unix seconds: the year of a line that prints none.
    pub now: u64,
    pub max_pending: usize,
}

impl LogOptions {
    pub fn new(now: u64) -> LogOptions {
        LogOptions {
            since: None,
            until: None,
            now,
            max_pending: DEFAULT_MAX_PENDING,
        }
    }
}

/// The day a line without a time stamp is counted under, until a line of
/// its input carries one.
pub const UNDATED: &str = "undated";

/// Lines of unknown form kept as samples (sanitize before showing).
const SAMPLES: usize = 5;

/// What the logs say, over the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LogStats {
    /// Lines read, in every input.
    pub lines: u64,
    /// Lines with the `kv cache` phrase (or `KV disk cache`).
    pub kv_lines: u64,
    /// kv-cache lines whose fields did not read.
    pub unparsed: u64,
    /// The first few of them, raw.
    pub unparsed_samples: Vec<String>,
    /// Lines that are not UTF-8 (read with U+FFFD).
    pub not_utf8: u64,
    /// kv-cache lines counted under a day carried over from an earlier
    /// line of their input (they print no time stamp themselves).
    pub carried_day: u64,
    /// kv-cache lines counted under `undated` (no time stamp before them).
    pub undated: u64,
    /// kv-cache lines outside `--since`/`--until` (and undated ones when a
    /// window is given).
    pub outside_window: u64,
    pub first_day: Option<String>,
    pub last_day: Option<String>,
    pub total: Activity,
    /// Per day (`YYYY-MM-DD`, and `undated`).
    pub days: BTreeMap<String, Activity>,
    pub followed: Followed,
    pub budgets: Vec<LoggedBudget>,
}

/// Streams lines into [`LogStats`].
#[derive(Debug)]
pub struct LogReader {
    opts: LogOptions,
    stats: LogStats,
    pending: PendingStores,
    /// The day of the last dated line of the current input.
    carry: Option<Stamp>,
}

impl LogReader {
    pub fn new(opts: LogOptions) -> LogReader {
        LogReader {
            opts,
            stats: LogStats::default(),
            pending: PendingStores::default(),
            carry: None,
        }
    }

    /// Start a new input: a day is carried over within one input only.
    pub fn next_input(&mut self) {
        self.carry = None;
    }

    /// Read every line of `input` (one input).
    pub fn read<R: BufRead>(&mut self, mut input: R) -> std::io::Result<()> {
        self.next_input();
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            if input.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                buf.pop();
            }
            match std::str::from_utf8(&buf) {
                Ok(s) => self.line(s),
                Err(_) => {
                    self.stats.not_utf8 += 1;
                    let s = String::from_utf8_lossy(&buf).into_owned();
                    self.line(&s);
                }
            }
        }
    }

    /// Take one line.
    pub fn line(&mut self, line: &str) {
        self.stats.lines += 1;
        let stamp = leading_stamp(line, self.opts.now);
        if stamp.is_some() {
            self.carry = stamp;
        }
        let parsed = parse_line(line);
        if parsed == Line::NotKv {
            return;
        }
        self.stats.kv_lines += 1;
        let at = stamp.or(self.carry);
        let windowed = self.opts.since.is_some() || self.opts.until.is_some();
        match at {
            None if windowed => {
                self.stats.outside_window += 1;
                return;
            }
            Some(t)
                if self.opts.since.is_some_and(|s| t < s)
                    || self.opts.until.is_some_and(|u| t >= u) =>
            {
                self.stats.outside_window += 1;
                return;
            }
            _ => {}
        }
        let event = match parsed {
            Line::Event(e) => e,
            _ => {
                self.stats.unparsed += 1;
                if self.stats.unparsed_samples.len() < SAMPLES {
                    self.stats.unparsed_samples.push(line.to_string());
                }
                return;
            }
        };
        let day = match at {
            Some(t) => {
                if stamp.is_none() {
                    self.stats.carried_day += 1;
                }
                let d = day_name(t);
                if self.stats.first_day.as_ref().is_none_or(|f| d < *f) {
                    self.stats.first_day = Some(d.clone());
                }
                if self.stats.last_day.as_ref().is_none_or(|l| d > *l) {
                    self.stats.last_day = Some(d.clone());
                }
                d
            }
            None => {
                self.stats.undated += 1;
                UNDATED.to_string()
            }
        };
        self.follow(&event);
        if let Event::Opened { dir, budget } = &event {
            self.stats.budgets.push(LoggedBudget {
                dir: dir.clone(),
                budget: *budget,
                day: at.map(day_name),
            });
        }
        self.stats.total.add(&event);
        self.stats.days.entry(day).or_default().add(&event);
    }

    /// Tie stores to the evictions of their files.
    fn follow(&mut self, e: &Event) {
        let f = &mut self.stats.followed;
        match e {
            Event::Stored {
                tokens,
                reason,
                key,
                bytes,
                ..
            } => {
                let link = match key {
                    Some(k) => Link::Key(*k),
                    None => Link::Shape {
                        tokens: *tokens,
                        centi_mib: centi_mib(*bytes),
                    },
                };
                self.pending
                    .push(link, reason, *bytes, self.opts.max_pending.max(1));
            }
            Event::Evicted {
                tokens,
                hits,
                bytes,
                key,
            } => {
                let by_key = key.and_then(|k| self.pending.take(Link::Key(k)));
                let found = match by_key {
                    Some(p) => {
                        f.matched_by_key += 1;
                        Some(p)
                    }
                    None => {
                        let p = self.pending.take(Link::Shape {
                            tokens: *tokens,
                            centi_mib: centi_mib(*bytes),
                        });
                        f.matched_by_shape += p.is_some() as u64;
                        p
                    }
                };
                match found {
                    Some(p) => {
                        let to = if *hits == 0 {
                            &mut f.evicted_unread
                        } else {
                            &mut f.evicted_after_hits
                        };
                        to.entry(p.reason).or_default().add(p.bytes);
                    }
                    None => f.unmatched_evictions += 1,
                }
            }
            _ => {}
        }
    }

    pub fn finish(mut self) -> LogStats {
        self.stats.followed.not_evicted = self.pending.live as u64;
        self.stats.followed.dropped = self.pending.dropped;
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip() {
        for z in [-1000, 0, 1, 59, 365, 20_000, 20_670, 100_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            day_name(days_from_civil(2026, 8, 5) * 86_400 + 5),
            "2026-08-05"
        );
    }

    #[test]
    fn stamps_of_every_form() {
        // 2026-08-10 00:00 UTC.
        let now = days_from_civil(2026, 8, 10) as u64 * 86_400;
        let day = |s: &str| leading_stamp(s, now).map(day_name);
        assert_eq!(
            day("0805 14:03:22 ds4-server: kv cache").as_deref(),
            Some("2026-08-05")
        );
        assert_eq!(
            day("2026-08-05T14:03:22.123+02:00 host x").as_deref(),
            Some("2026-08-05")
        );
        assert_eq!(
            day("[2026-08-05 14:03:22] x").as_deref(),
            Some("2026-08-05")
        );
        assert_eq!(
            day("Aug  5 14:03:22 host ds4-server[1]:").as_deref(),
            Some("2026-08-05")
        );
        // A December line read in August: this year's would be in the future.
        assert_eq!(day("1231 23:59:59 x").as_deref(), Some("2025-12-31"));
        assert_eq!(day("ds4-server: kv cache stored"), None);
        assert_eq!(day("1399 10:00:00 x"), None);
    }

    #[test]
    fn bounds() {
        let now = days_from_civil(2026, 8, 10) as u64 * 86_400;
        let d5 = days_from_civil(2026, 8, 5) * 86_400;
        assert_eq!(parse_bound("2026-08-05", now, false), Ok(d5));
        assert_eq!(parse_bound("2026-08-05", now, true), Ok(d5 + 86_400));
        assert_eq!(
            parse_bound("2026-08-05T14:00", now, true),
            Ok(d5 + 14 * 3600)
        );
        assert_eq!(parse_bound("2d", now, false), Ok(now as i64 - 2 * 86_400));
        assert!(parse_bound("yesterday", now, false).is_err());
    }

    #[test]
    fn waiting_stores_are_bounded_and_the_oldest_dropped() {
        let mut r = LogReader::new(LogOptions {
            max_pending: 3,
            ..LogOptions::new(0)
        });
        let stored = |t: u32| {
            format!("ds4: kv cache stored tokens={t} trimmed=0 reason=evict key=token-text size=1.00 MiB save=1.0 ms")
        };
        let evicted = |t: u32| {
            format!("ds4: kv cache evicted reason=disk-cache-full tokens={t} hits=0 size=1.00 MiB file=/c/x.kv")
        };
        for t in 1..=5 {
            r.line(&stored(t));
        }
        // 1 and 2 were dropped; 5 and 3 are still there.
        r.line(&evicted(1));
        r.line(&evicted(5));
        r.line(&evicted(3));
        let s = r.finish();
        let f = &s.followed;
        assert_eq!(f.dropped, 2);
        assert_eq!(f.unmatched_evictions, 1);
        assert_eq!(f.matched_by_shape, 2);
        assert_eq!(f.not_evicted, 1);
        assert_eq!(f.evicted_unread["evict"].count, 2);
    }

    #[test]
    fn matched_stores_do_not_pile_up() {
        let mut r = LogReader::new(LogOptions {
            max_pending: 4,
            ..LogOptions::new(0)
        });
        for t in 0..10_000u32 {
            r.line(&format!(
                "ds4: kv cache stored tokens={t} trimmed=0 reason=cold key=token-text size=2.00 MiB save=1.0 ms"
            ));
            r.line(&format!(
                "ds4: kv cache evicted reason=disk-cache-full tokens={t} hits=1 size=2.00 MiB file=/c/x.kv"
            ));
        }
        assert!(
            r.pending.order.len() <= 2 * 16 + 1,
            "{}",
            r.pending.order.len()
        );
        let s = r.finish();
        assert_eq!(s.followed.matched_by_shape, 10_000);
        assert_eq!(s.followed.dropped, 0);
    }

    #[test]
    fn every_kind_of_line() {
        use Event::*;
        let ev = |l: &str| match parse_line(l) {
            Line::Event(e) => e,
            other => panic!("{l}: {other:?}"),
        };
        assert!(matches!(
            ev("ds4: kv cache stored tokens=8192 trimmed=32 reason=continued key=visible-transcript size=412.50 MiB save=850.1 ms"),
            Stored { tokens: 8192, key: None, bytes: 432_537_600, .. }
        ));
        assert!(matches!(
            ev("ds4: kv cache hit text tokens=5 text=9 quant=2 key=token-text load=1.5 ms consumed file=/a b/0123456789012345678901234567890123456789.kv"),
            Hit { consumed: true, key: Some(_), .. }
        ));
        assert_eq!(
            ev("x: kv cache skipped tokens=1 because rendered text is too large"),
            Skipped {
                cause: "text-too-large"
            }
        );
        assert_eq!(
            ev("x: kv cache skipped tokens=1 reason=cold because the moon"),
            Skipped { cause: "other" }
        );
        assert_eq!(
            ev("x: kv cache load failed RESPPROTO /p: truncated cached text load=0.1 ms"),
            LoadFailed
        );
        assert_eq!(
            ev("ds4-server: live kv cache miss live=1 prompt=2 common=0 reason=x"),
            Other
        );
        assert_eq!(
            ev("x: kv cache tail_anchors=0; only the frontier anchor is kept dense"),
            Other
        );
        assert_eq!(
            ev("ds4: KV disk cache /a (b) (budget=64 MiB, cross-quant=accept, min=512)"),
            Opened {
                dir: "/a (b)".into(),
                budget: 64 << 20
            }
        );
        assert_eq!(
            parse_line("ds4: kv cache hit text tokens=5 load=fast ms file=/x"),
            Line::Unparsed
        );
        assert_eq!(
            parse_line("ds4: kv cache stored tokens=5 reason=cold size=1.00 parsecs"),
            Line::Unparsed
        );
        assert_eq!(parse_line("ds4: KV disk cache /a"), Line::Unparsed);
        assert_eq!(parse_line("ds4: starting up"), Line::NotKv);
    }
}
