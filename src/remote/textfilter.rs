//! `push --exclude-text REGEX`: a deny-list over the stored prompt text,
//! checked before anything is sent (checkpoints hold prompts verbatim).
//!
//! The text is not held: it streams through the push's first pass, and
//! the patterns run over it as it goes. `regex::Regex` searches a slice,
//! so a streamed text would need overlapping windows that miss a match
//! longer than the overlap; instead kvc drives the regex crate's own lazy
//! DFA (`regex_automata::hybrid`, the engine `Regex` itself uses) one byte
//! at a time from the start of the text to its end. Any match anywhere is
//! found, whatever its length, in memory bounded by the DFA's cache
//! (2 MiB), not by the text. The syntax is the `regex` crate's, over
//! bytes: `.` is a UTF-8 character, `(?-u:.)` any byte.

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::util::{start, syntax};
use regex_automata::Anchored;

/// The compiled patterns.
#[derive(Clone, Debug)]
pub struct TextFilter {
    patterns: Vec<String>,
    dfa: DFA,
}

impl TextFilter {
    /// Compile `patterns` (any of them matching excludes a checkpoint).
    pub fn new(patterns: &[String]) -> Result<TextFilter, String> {
        let dfa = DFA::builder()
            .syntax(syntax::Config::new().utf8(false))
            // `\b` is Unicode-aware by default; the lazy DFA handles it on
            // ASCII text and stops (a quit byte) on other bytes: kvc then
            // refuses the push rather than guess.
            .configure(DFA::config().unicode_word_boundary(true))
            .build_many(patterns)
            .map_err(|e| crate::remote::one_line(&e.to_string()))?;
        Ok(TextFilter {
            patterns: patterns.to_vec(),
            dfa,
        })
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// A scan of one text from its first byte.
    pub fn scanner(&self) -> TextScan<'_> {
        let mut cache = self.dfa.create_cache();
        let state = self
            .dfa
            .start_state(&mut cache, &start::Config::new().anchored(Anchored::No))
            .map_err(|e| e.to_string());
        TextScan {
            filter: self,
            cache,
            state,
            matched: None,
        }
    }

    /// Whether `text`, whole, matches (for tests and small texts).
    pub fn matches(&self, text: &[u8]) -> Result<Option<&str>, String> {
        let mut s = self.scanner();
        s.feed(text);
        s.finish()
    }
}

/// One text going through a [`TextFilter`].
pub struct TextScan<'a> {
    filter: &'a TextFilter,
    cache: Cache,
    /// The DFA state after the bytes fed, or why the scan gave up.
    state: Result<LazyStateID, String>,
    matched: Option<usize>,
}

impl<'a> TextScan<'a> {
    /// The next bytes of the text.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.matched.is_some() {
            return;
        }
        let Ok(mut sid) = self.state else {
            return;
        };
        let dfa = &self.filter.dfa;
        for &b in bytes {
            sid = match dfa.next_state(&mut self.cache, sid, b) {
                Ok(s) => s,
                Err(e) => {
                    self.state = Err(e.to_string());
                    return;
                }
            };
            if sid.is_tagged() {
                if sid.is_match() {
                    self.matched = Some(dfa.match_pattern(&self.cache, sid, 0).as_usize());
                    return;
                }
                if sid.is_quit() {
                    self.state = Err(format!(
                        "the text has a byte ({b:#04x}) the pattern's Unicode \\b cannot judge; write (?-u:\\b)"
                    ));
                    return;
                }
                if sid.is_dead() {
                    break;
                }
            }
        }
        self.state = Ok(sid);
    }

    /// `Ok(Some(pattern))` when a pattern matched, `Ok(None)` when none
    /// did, `Err` when the text could not be judged.
    pub fn finish(mut self) -> Result<Option<&'a str>, String> {
        let pattern = |i: usize| self.filter.patterns[i].as_str();
        if let Some(i) = self.matched {
            return Ok(Some(pattern(i)));
        }
        let sid = self.state?;
        let eoi = self
            .filter
            .dfa
            .next_eoi_state(&mut self.cache, sid)
            .map_err(|e| e.to_string())?;
        if eoi.is_match() {
            let i = self
                .filter
                .dfa
                .match_pattern(&self.cache, eoi, 0)
                .as_usize();
            return Ok(Some(pattern(i)));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: &[&str]) -> TextFilter {
        TextFilter::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn a_match_anywhere_is_found_whatever_the_pieces() {
        let filter = f(&[r"(?i)api[_-]?key\s*=\s*\w{8,}", r"\d{3}-\d{2}-\d{4}"]);
        let text = b"<|User|>here is my API_KEY = abcdefgh12345678 please";
        assert_eq!(
            filter.matches(text).unwrap(),
            Some(filter.patterns()[0].as_str())
        );
        for step in [1, 2, 3, 7, 64] {
            let mut s = filter.scanner();
            for piece in text.chunks(step) {
                s.feed(piece);
            }
            assert!(s.finish().unwrap().is_some(), "step {step}");
        }
        assert_eq!(
            filter.matches(b"ssn 123-45-6789").unwrap(),
            Some(r"\d{3}-\d{2}-\d{4}")
        );
        assert_eq!(filter.matches(b"nothing secret here").unwrap(), None);
        // A match that ends with the text is reported at its end.
        assert!(f(&["secret$"]).matches(b"a secret").unwrap().is_some());
        assert!(f(&["^secret"]).matches(b"not secret").unwrap().is_none());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_text_too() {
        // `.` is a character; a byte that is not UTF-8 takes `(?-u:.)`.
        assert!(f(&["pass.word"])
            .matches(b"pass\xffword")
            .unwrap()
            .is_none());
        assert!(f(&["pass(?-u:.)word"])
            .matches(b"pass\xffword")
            .unwrap()
            .is_some());
        assert!(f(&["pass.word"])
            .matches("pass€word".as_bytes())
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_long_text_costs_no_memory_and_a_bad_pattern_is_an_error() {
        let filter = f(&["needle"]);
        let mut s = filter.scanner();
        let hay = vec![b'x'; 1 << 20];
        for _ in 0..16 {
            s.feed(&hay);
        }
        s.feed(b"need");
        s.feed(b"le");
        assert!(s.finish().unwrap().is_some());
        assert!(TextFilter::new(&["(".to_string()]).is_err());
        let wb = f(&[r"\bkey\b"]);
        assert!(wb.matches(b"a key here").unwrap().is_some());
        assert!(wb.matches("é key".as_bytes()).is_err());
        assert!(f(&[r"(?-u:\b)key"])
            .matches("é key".as_bytes())
            .unwrap()
            .is_some());
    }
}
