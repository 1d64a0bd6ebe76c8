//! The JSON form of a tool-id map: what `kvc trailer export` writes and
//! `kvc trailer set --from` reads. Ids and DSML blocks are bytes; a field
//! that is valid UTF-8 is a JSON string (`id`, `dsml`), one that is not is
//! written as hex (`id_hex`, `dsml_hex`), so a map survives export → set
//! byte for byte.

use super::rewrite;
use crate::format::trailer::{c_string, EntryUse, NulField, ToolMap, ToolMapEntry};
use serde::{Deserialize, Serialize};

/// The largest map `set --from` reads: far above any map ds4 writes (a few
/// KiB), and a bound on what a mistaken `--from /dev/zero` can cost.
pub const MAX_INPUT: u64 = 256 << 20;

/// One entry as `export` writes it and `set` reads it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsml: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsml_hex: Option<String>,
    /// Written by `export` for an entry ds4 never uses because a later
    /// entry (this index, from 1) has the same id; ignored by `set`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadowed_by: Option<usize>,
    /// Written by `export` for an entry ds4 drops (its id or DSML starts
    /// with a NUL byte); ignored by `set`, which refuses NUL bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_by_ds4: Option<String>,
}

/// What ds4 makes of an entry when it loads the map (ds4_server.c at
/// b030961), for listings and exports: its word (`used`, `shadowed`,
/// `dropped`), the entry that shadows it (from 1), and a note on NUL bytes
/// (ds4 reads ids and DSML blocks as C strings).
pub fn ds4_reading(
    e: &ToolMapEntry,
    used: EntryUse,
) -> (&'static str, Option<usize>, Option<String>) {
    let cut = |what: &str, b: &[u8]| {
        let n = c_string(b).len();
        (n > 0 && n < b.len()).then(|| {
            format!(
                "ds4 reads the {what} as a C string: only its first {n} of {} bytes (a NUL follows)",
                b.len()
            )
        })
    };
    match used {
        EntryUse::Used => (
            "used",
            None,
            cut("id", &e.id).or_else(|| cut("DSML", &e.dsml)),
        ),
        EntryUse::Shadowed { by } => ("shadowed", Some(by + 1), cut("id", &e.id)),
        EntryUse::Dropped(f) => (
            "dropped",
            None,
            Some(format!(
                "its {} starts with a NUL byte: ds4 drops the entry",
                match f {
                    NulField::Id => "id",
                    NulField::Dsml => "DSML",
                }
            )),
        ),
    }
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A byte field as a string, or as hex when it is not UTF-8.
pub(crate) fn split_field(b: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(b) {
        Ok(s) => (Some(s.to_string()), None),
        Err(_) => (None, Some(to_hex(b))),
    }
}

/// The JSON of one entry, with what ds4 makes of it.
pub fn entry_to_json(e: &ToolMapEntry, used: EntryUse) -> EntryJson {
    let (id, id_hex) = split_field(&e.id);
    let (dsml, dsml_hex) = split_field(&e.dsml);
    let (_, shadowed_by, note) = ds4_reading(e, used);
    EntryJson {
        id,
        id_hex,
        dsml,
        dsml_hex,
        shadowed_by,
        dropped_by_ds4: note.filter(|_| matches!(used, EntryUse::Dropped(_))),
    }
}

fn field(
    text: Option<String>,
    hex: Option<String>,
    name: &str,
    index: usize,
) -> Result<Vec<u8>, String> {
    match (text, hex) {
        (Some(s), None) => Ok(s.into_bytes()),
        (None, Some(h)) => from_hex(&h).ok_or_else(|| {
            format!(
                "entry {}: `{name}_hex` is not an even number of hex digits",
                index + 1
            )
        }),
        (None, None) => Err(format!(
            "entry {}: `{name}` (or `{name}_hex`) is missing",
            index + 1
        )),
        (Some(_), Some(_)) => Err(format!(
            "entry {}: give `{name}` or `{name}_hex`, not both",
            index + 1
        )),
    }
}

/// Parse and check a map given to `set`: JSON shape, then ds4's limits
/// (`rewrite::check_limits`). The error is one line.
pub fn parse_map(bytes: &[u8]) -> Result<ToolMap, String> {
    let raw: Vec<EntryJson> = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a tool-id map ([{{\"id\": ..., \"dsml\": ...}}, ...]): {e}"))?;
    let mut map = ToolMap::default();
    for (i, e) in raw.into_iter().enumerate() {
        map.entries.push(ToolMapEntry {
            id: field(e.id, e.id_hex, "id", i)?,
            dsml: field(e.dsml, e.dsml_hex, "dsml", i)?,
        });
    }
    let problems = rewrite::check_limits(&map);
    if let Some(first) = problems.first() {
        let more = match problems.len() {
            1 => String::new(),
            2 => " (and 1 more problem)".to_string(),
            n => format!(" (and {} more problems)", n - 1),
        };
        return Err(format!("{first}{more}"));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_fields_round_trip_and_reject_odd_input() {
        let b = [0u8, 0xff, 0x7f, b'a'];
        assert_eq!(from_hex(&to_hex(&b)).unwrap(), b);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(split_field(b"ok"), (Some("ok".into()), None));
        assert_eq!(split_field(b"\xff"), (None, Some("ff".into())));
    }
}
