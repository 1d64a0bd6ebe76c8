//! The stored prompt text: titles (FORMAT.md §4) and making untrusted bytes
//! safe to show on a terminal.

use std::fmt::Write as _;

/// ds4's chat markers (full-width bars and the `▁` word separator).
pub(crate) const USER_MARKER: &str = "<｜User｜>";
pub(crate) const ASSISTANT_MARKER: &str = "<｜Assistant｜>";

/// ChatML, as hanzo-engine renders chat: `<|im_start|>user\n…<|im_end|>`.
pub(crate) const CHATML_USER: &str = "<|im_start|>user";
pub(crate) const CHATML_END: &str = "<|im_end|>";

/// ds4-agent cuts titles at 70 bytes and appends `...`.
pub(crate) const TITLE_MAX_BYTES: usize = 70;
const TITLE_ELLIPSIS: &str = "...";

/// First occurrence of a non-empty `needle`. memchr's SIMD search: titles
/// are taken from every text of a large directory, and a byte-by-byte
/// window compare was a tenth of a listing's time. The chat markers'
/// searchers are built once (building one per search was 1 % of a titled
/// listing).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    use memchr::memmem::Finder;
    use std::sync::OnceLock;
    static MARKERS: OnceLock<[Finder<'static>; 4]> = OnceLock::new();
    if needle.is_empty() {
        return None;
    }
    let markers = MARKERS.get_or_init(|| {
        [USER_MARKER, ASSISTANT_MARKER, CHATML_USER, CHATML_END].map(|m| Finder::new(m.as_bytes()))
    });
    match markers.iter().find(|f| f.needle() == needle) {
        Some(f) => f.find(hay),
        None => memchr::memmem::find(hay, needle),
    }
}

/// Does `needle` occur anywhere in `hay`? (Used for tool-map DSML blocks.)
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// The ds4-agent session title: the text after the first `<｜User｜>` up to
/// the next `<｜Assistant｜>` or `<｜User｜>`, white space runs folded to one
/// space, trimmed, cut at 70 bytes with `...` appended.
///
/// Returns raw bytes (the cut may split a UTF-8 character, as ds4's does);
/// pass them through [`sanitize_line`] before showing them. `None` when the
/// text has no user turn (token-id texts of hanzo-engine, system prompts).
///
/// Texts rendered as ChatML (hanzo-engine) get the same rule applied to
/// their first `<|im_start|>user` turn, so they are titled too.
pub fn title(text: &[u8]) -> Option<Vec<u8>> {
    let turn = |open: &str, ends: &[&str]| {
        let start = find(text, open.as_bytes())? + open.len();
        let rest = &text[start..];
        let end = ends
            .iter()
            .filter_map(|m| find(rest, m.as_bytes()))
            .min()
            .unwrap_or(rest.len());
        Some(&rest[..end])
    };
    let user = turn(USER_MARKER, &[ASSISTANT_MARKER, USER_MARKER])
        .or_else(|| turn(CHATML_USER, &[CHATML_END]))?;
    fold_title(user)
}

/// Fold white space runs to one space, trim, cut at 70 bytes plus `...`.
fn fold_title(turn: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(TITLE_MAX_BYTES + TITLE_ELLIPSIS.len());
    let mut pending_space = false;
    for &b in turn {
        if b.is_ascii_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        out.push(b);
        if out.len() > TITLE_MAX_BYTES {
            break;
        }
    }
    if out.is_empty() {
        return None;
    }
    if out.len() > TITLE_MAX_BYTES {
        out.truncate(TITLE_MAX_BYTES);
        out.extend_from_slice(TITLE_ELLIPSIS.as_bytes());
    }
    Some(out)
}

/// [`title`] of a text fed in pieces, holding at most one piece and a few
/// bytes: a listing titles every checkpoint of a directory without holding
/// any text (a 512 MiB text costs a 64 KiB buffer, not 512 MiB).
#[derive(Clone, Debug)]
pub struct TitleScanner {
    ds4: TurnScan,
    chatml: TurnScan,
}

impl Default for TitleScanner {
    fn default() -> TitleScanner {
        TitleScanner::new()
    }
}

impl TitleScanner {
    pub fn new() -> TitleScanner {
        TitleScanner {
            ds4: TurnScan::new(USER_MARKER, &[ASSISTANT_MARKER, USER_MARKER]),
            chatml: TurnScan::new(CHATML_USER, &[CHATML_END]),
        }
    }

    /// The next piece of the text.
    pub fn feed(&mut self, piece: &[u8]) {
        // Once the ds4 turn is complete nothing can change the title.
        if self.ds4.finished() {
            return;
        }
        self.ds4.feed(piece);
        if !self.ds4.found() {
            self.chatml.feed(piece);
        }
    }

    /// The title, as [`title`] gives it for the whole text.
    pub fn finish(self) -> Option<Vec<u8>> {
        if self.ds4.found() {
            self.ds4.finish()
        } else {
            self.chatml.finish()
        }
    }
}

/// One turn's search: the first `open` marker, then the bytes up to the
/// first of `ends`, folded as they arrive.
#[derive(Clone, Debug)]
struct TurnScan {
    open: &'static [u8],
    ends: Vec<&'static [u8]>,
    /// Bytes kept between pieces: the tail that may start a marker.
    carry: Vec<u8>,
    found: bool,
    /// The turn ended (an end marker, or enough title).
    done: bool,
    out: Vec<u8>,
    pending_space: bool,
}

impl TurnScan {
    fn new(open: &'static str, ends: &[&'static str]) -> TurnScan {
        TurnScan {
            open: open.as_bytes(),
            ends: ends.iter().map(|e| e.as_bytes()).collect(),
            carry: Vec::new(),
            found: false,
            done: false,
            out: Vec::new(),
            pending_space: false,
        }
    }

    fn found(&self) -> bool {
        self.found
    }

    fn finished(&self) -> bool {
        self.done
    }

    fn longest_end(&self) -> usize {
        self.ends.iter().map(|e| e.len()).max().unwrap_or(1)
    }

    fn feed(&mut self, piece: &[u8]) {
        if self.done {
            return;
        }
        if self.carry.is_empty() {
            // The common case, a text in one piece: searched where it
            // lies, not copied first (the copy of every text was most of a
            // titled listing's title time).
            self.feed_window(piece);
        } else {
            let mut window = std::mem::take(&mut self.carry);
            window.extend_from_slice(piece);
            self.feed_window(&window);
        }
    }

    /// [`feed`](Self::feed) of what was carried over and the new piece.
    fn feed_window(&mut self, window: &[u8]) {
        let mut rest: &[u8] = window;
        if !self.found {
            match find(rest, self.open) {
                Some(at) => {
                    self.found = true;
                    rest = &rest[at + self.open.len()..];
                }
                None => {
                    let keep = (self.open.len() - 1).min(rest.len());
                    self.carry = rest[rest.len() - keep..].to_vec();
                    return;
                }
            }
        }
        // Collecting the turn: fold what lies before the first end marker;
        // keep a tail that may be the start of one.
        let end = self.ends.iter().filter_map(|m| find(rest, m)).min();
        let (fold_to, keep_from) = match end {
            Some(e) => (e, rest.len()),
            None => {
                let keep = (self.longest_end() - 1).min(rest.len());
                (rest.len() - keep, rest.len() - keep)
            }
        };
        self.fold(&rest[..fold_to]);
        if end.is_some() {
            self.done = true;
        } else if !self.done {
            self.carry = rest[keep_from..].to_vec();
        }
    }

    /// [`fold_title`], incrementally.
    fn fold(&mut self, turn: &[u8]) {
        for &b in turn {
            if b.is_ascii_whitespace() {
                self.pending_space = !self.out.is_empty();
                continue;
            }
            if self.pending_space {
                self.out.push(b' ');
                self.pending_space = false;
            }
            self.out.push(b);
            if self.out.len() > TITLE_MAX_BYTES {
                self.done = true;
                return;
            }
        }
    }

    fn finish(mut self) -> Option<Vec<u8>> {
        if !self.found {
            return None;
        }
        if !self.done {
            let rest = std::mem::take(&mut self.carry);
            self.fold(&rest);
        }
        let mut out = self.out;
        if out.is_empty() {
            return None;
        }
        if out.len() > TITLE_MAX_BYTES {
            out.truncate(TITLE_MAX_BYTES);
            out.extend_from_slice(TITLE_ELLIPSIS.as_bytes());
        }
        Some(out)
    }
}

/// Is this character unsafe to hand to a terminal or a line-based reader
/// as-is? C0 and C1 control characters drive terminals (ESC starts escape
/// sequences, C1 CSI 0x9b is a one-byte escape); bidi overrides, isolates
/// and marks (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F and the Arabic
/// letter mark U+061C) reorder what is shown ("trojan source"); the line and
/// paragraph separators U+2028/U+2029 end a line for JavaScript and many
/// viewers, so a "one line" field could spill into the next.
pub fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn escape_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\u{1b}' => out.push_str("\\e"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

fn sanitize_with(bytes: &[u8], keep_newlines: bool) -> String {
    // Printable ASCII is safe as it is: copied whole (titles are mostly
    // that; the char-by-char pass was 4 % of a titled listing).
    if bytes
        .iter()
        .fold(true, |ok, &b| ok & (0x20..0x7f).contains(&b))
    {
        return String::from_utf8(bytes.to_vec()).expect("ASCII is UTF-8");
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if keep_newlines && (c == '\n' || c == '\t') {
                out.push(c);
            } else if is_dangerous(c) {
                escape_char(&mut out, c);
            } else {
                out.push(c);
            }
        }
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out
}

/// One line safe for a terminal or a table cell: every control character
/// (newlines included) and bidi control is shown escaped (`\e`, `\n`,
/// `\x07`, `\u{202e}`), invalid UTF-8 becomes U+FFFD.
pub fn sanitize_line(bytes: &[u8]) -> String {
    sanitize_with(bytes, false)
}

/// Like [`sanitize_line`] but keeps newlines and tabs, for showing a whole
/// text (`kvc show --text`).
pub fn sanitize_text(bytes: &[u8]) -> String {
    sanitize_with(bytes, true)
}

/// A span of seconds, coarse, for people: `42s`, `5m`, `3h`, `2d` (hours
/// up to two days, then days). The one form of a relative time in kvc's
/// tables and messages (`3h ago`, `last written 2d ago`, `for 5m`).
pub fn span(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_folds_white_space_and_stops_at_the_next_turn() {
        let t = "<｜begin▁of▁sentence｜>sys<｜User｜>  List\n\tthe  files <｜Assistant｜>ok";
        assert_eq!(title(t.as_bytes()).unwrap(), b"List the files");
    }

    #[test]
    fn title_is_cut_at_70_bytes_with_ellipsis() {
        let long = format!("<｜User｜>{}", "word ".repeat(40));
        let t = title(long.as_bytes()).unwrap();
        assert_eq!(t.len(), TITLE_MAX_BYTES + 3);
        assert!(t.ends_with(b"..."));
        let exact = format!("<｜User｜>{}", "x".repeat(70));
        assert_eq!(title(exact.as_bytes()).unwrap().len(), 70);
    }

    #[test]
    fn chatml_texts_get_a_title_too() {
        let t =
            b"<|im_start|>system\nbe nice<|im_end|>\n<|im_start|>user\nhello  there<|im_end|>\n";
        assert_eq!(title(t).unwrap(), b"hello there");
    }

    #[test]
    fn no_user_turn_means_no_title() {
        assert_eq!(title(b"plain system prompt"), None);
        assert_eq!(title("<｜User｜>   <｜Assistant｜>".as_bytes()), None);
    }

    #[test]
    fn a_streamed_title_is_the_title_whatever_the_pieces() {
        let texts: Vec<Vec<u8>> = vec![
            "<｜begin▁of▁sentence｜>sys<｜User｜>  List\n\tthe  files <｜Assistant｜>ok".into(),
            format!("<｜User｜>{}<｜Assistant｜>", "word ".repeat(40)).into(),
            format!("<｜User｜>{}", "x".repeat(70)).into(),
            b"<|im_start|>system\nbe nice<|im_end|>\n<|im_start|>user\nhello  there<|im_end|>\n"
                .to_vec(),
            b"plain system prompt".to_vec(),
            "<｜User｜>   <｜Assistant｜>".into(),
            "<|im_start|>user\na<|im_end|><｜User｜>b<｜User｜>".into(),
            "<｜User｜>ends without a marker   ".into(),
            "<｜User｜>a<｜Assist<｜User｜>".into(),
            "<｜User｜><｜User｜>".into(),
            b"".to_vec(),
        ];
        for t in &texts {
            for step in [1, 2, 3, 5, 7, 13, 64, 4096] {
                let mut s = TitleScanner::new();
                for piece in t.chunks(step) {
                    s.feed(piece);
                }
                assert_eq!(
                    s.finish(),
                    title(t),
                    "{:?} in pieces of {step}",
                    String::from_utf8_lossy(t)
                );
            }
        }
    }

    #[test]
    fn sanitizer_escapes_controls_bidi_and_invalid_utf8() {
        let s = sanitize_line(b"a\x1b]0;pwned\x07b\x1b[2J\n\xff\xc2\x9b");
        assert_eq!(s, "a\\e]0;pwned\\x07b\\e[2J\\n\u{fffd}\\x9b");
        assert!(!s.contains('\u{1b}'));
        assert_eq!(sanitize_line("x\u{202e}y".as_bytes()), "x\\u{202e}y");
        assert_eq!(sanitize_text(b"l1\nl2\x1b"), "l1\nl2\\e");
    }

    #[test]
    fn sanitizer_escapes_the_arabic_letter_mark_and_line_separators() {
        for (c, shown) in [
            ('\u{061c}', "\\u{61c}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
        ] {
            let raw = format!("a{c}b");
            assert_eq!(sanitize_line(raw.as_bytes()), format!("a{shown}b"));
            // Kept newlines or not, a separator never passes raw.
            assert!(!sanitize_text(raw.as_bytes()).contains(c));
        }
    }
}
