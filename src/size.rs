//! Parsing the sizes people type for a budget (`8GiB`, `1.5G`, `500MB`).
//!
//! A bare number is refused: ds4's own `--kv-disk-space-mb` counts MiB, so
//! a user copying `8192` from an engine's command line means 8 GiB, while
//! the same number read as bytes would empty the cache. A unit is cheap to
//! type; a silent mix-up deletes data.

const KIB: u128 = 1 << 10;
const MIB: u128 = 1 << 20;
const GIB: u128 = 1 << 30;
const TIB: u128 = 1 << 40;

/// Every unit accepted, lower-cased (units are matched case-insensitively:
/// `200gb`, `8g`, `8GIB`), with its multiplier. Binary units have one-letter
/// short forms (`8G` = `8GiB`), as in `du -h` and `sort -h`; decimal units
/// end in `B` (`kB`, `MB`, `GB`, `TB`), as disk vendors and restic write
/// them.
const UNITS: &[(&str, u128)] = &[
    ("b", 1),
    ("k", KIB),
    ("kib", KIB),
    ("m", MIB),
    ("mib", MIB),
    ("g", GIB),
    ("gib", GIB),
    ("t", TIB),
    ("tib", TIB),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
];

/// `19.87 KiB`: bytes for people, in binary units (as the tables show
/// them).
pub fn human(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::BINARY)
}

/// `n` bytes in the largest binary unit that keeps it at least 1, with two
/// decimals: for the readings a bare-number error offers.
fn approx(bytes: u128) -> String {
    let units = [("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)];
    for (name, m) in units {
        if bytes >= m {
            let whole = bytes / m;
            let hundredths = (bytes % m) * 100 / m;
            return format!("{whole}.{hundredths:02} {name}");
        }
    }
    format!("{bytes} B")
}

/// The two readings of a bare number: as ds4's MiB, and as bytes.
fn readings(number: &str) -> String {
    let whole: u128 = number
        .split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let as_mib = whole
        .checked_mul(MIB)
        .map_or("too large".to_string(), approx);
    format!(
        "{number}MiB (ds4's --kv-disk-space-mb unit) is {as_mib}, {number}B is {}",
        approx(whole)
    )
}

/// Digits after the decimal point that are taken into account: `1.5GiB`
/// needs one, and more than nine cannot change a byte count below 1 EiB.
const MAX_FRACTION_DIGITS: usize = 9;

/// Why a size did not parse. Each message is one line that quotes the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("empty size: give a number with a unit, e.g. 8GiB")]
    Empty,
    #[error("{0:?} has no unit: write the one you mean; {readings}", readings = readings(.0))]
    NoUnit(String),
    #[error("{input:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB or K, M, G, T for powers of 1024; kB, MB, GB, TB for powers of 1000)")]
    BadUnit { input: String, unit: String },
    #[error("{0:?} is not a size: expected a number and a unit, e.g. 8GiB or 1.5G")]
    BadNumber(String),
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parse `8GiB`, `8 GiB`, `1.5G`, `500MB`, `0B` into bytes. Fractions are
/// rounded down to a whole byte.
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SizeError::Empty);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = (&s[..split], s[split..].trim_start());
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(SizeError::BadNumber(input.into()));
    }
    if unit.is_empty() {
        return Err(SizeError::NoUnit(number.into()));
    }
    let lower = unit.to_ascii_lowercase();
    let Some(&(_, mult)) = UNITS.iter().find(|(u, _)| *u == lower) else {
        return Err(SizeError::BadUnit {
            input: input.into(),
            unit: unit.into(),
        });
    };
    let too_large = || SizeError::TooLarge(input.into());
    // Exact integer arithmetic: int × mult + frac × mult / 10^digits.
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_large())?
    };
    let frac = &frac[..frac.len().min(MAX_FRACTION_DIGITS)];
    let frac_bytes = if frac.is_empty() {
        0
    } else {
        let scale = 10u128.pow(frac.len() as u32);
        frac.parse::<u128>().map_err(|_| too_large())? * mult / scale
    };
    let bytes = int
        .checked_mul(mult)
        .and_then(|b| b.checked_add(frac_bytes))
        .ok_or_else(too_large)?;
    u64::try_from(bytes).map_err(|_| too_large())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_units_and_their_short_forms_agree() {
        assert_eq!(parse_size("8GiB"), Ok(8 << 30));
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("8 GiB"), Ok(8 << 30));
        assert_eq!(parse_size("4096MiB"), Ok(4 << 30));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("0B"), Ok(0));
        assert_eq!(parse_size("123B"), Ok(123));
    }

    #[test]
    fn decimal_units_are_powers_of_ten() {
        assert_eq!(parse_size("1kB"), Ok(1000));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("8GB"), Ok(8_000_000_000));
        assert_eq!(parse_size("1TB"), Ok(1_000_000_000_000));
    }

    #[test]
    fn fractions_are_exact_and_round_down() {
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("0.5K"), Ok(512));
        assert_eq!(parse_size(".5K"), Ok(512));
        assert_eq!(parse_size("1.5B"), Ok(1));
        assert_eq!(parse_size("2.25MB"), Ok(2_250_000));
        assert_eq!(parse_size("1.0000000001GiB"), Ok(1 << 30));
    }

    #[test]
    fn units_are_case_insensitive() {
        assert_eq!(parse_size("200gb"), Ok(200_000_000_000));
        assert_eq!(parse_size("200GB"), Ok(200_000_000_000));
        assert_eq!(parse_size("8g"), Ok(8 << 30));
        assert_eq!(parse_size("8GIB"), Ok(8 << 30));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("3mib"), Ok(3 << 20));
        assert_eq!(parse_size("7b"), Ok(7));
    }

    #[test]
    fn a_bare_number_is_refused_with_both_readings() {
        let e = parse_size("8192").unwrap_err();
        assert_eq!(e, SizeError::NoUnit("8192".into()));
        let msg = e.to_string();
        assert!(msg.contains("--kv-disk-space-mb"), "{msg}");
        assert!(msg.contains("8192MiB"), "{msg}");
        assert!(msg.contains("is 8.00 GiB"), "{msg}");
        assert!(msg.contains("8192B is 8.00 KiB"), "{msg}");
        assert!(!msg.contains('\n'));
        // A byte count typed without its unit: both readings, so the MiB
        // one (95 TiB) is visibly not what was meant.
        let msg = parse_size("100000000").unwrap_err().to_string();
        assert!(
            msg.contains("100000000MiB (ds4's --kv-disk-space-mb unit) is 95.36 TiB"),
            "{msg}"
        );
        assert!(msg.contains("100000000B is 95.36 MiB"), "{msg}");
        assert!(matches!(parse_size("0"), Err(SizeError::NoUnit(_))));
        assert!(matches!(parse_size("1.5"), Err(SizeError::NoUnit(_))));
    }

    #[test]
    fn bad_units_numbers_and_overflow_are_one_line_errors() {
        for bad in ["8Gi", "8 bytes", "8gigs", "8iB"] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::BadUnit { .. })),
                "{bad}"
            );
        }
        for bad in ["GiB", "-1GiB", "1.2.3GiB", ".GiB", "x"] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::BadNumber(_))),
                "{bad}: {:?}",
                parse_size(bad)
            );
        }
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("  "), Err(SizeError::Empty));
        assert!(matches!(
            parse_size("16777216TiB"),
            Err(SizeError::TooLarge(_))
        ));
        assert!(matches!(
            parse_size("99999999999999999999999999999999999999999B"),
            Err(SizeError::TooLarge(_))
        ));
        assert_eq!(parse_size("16777215TiB"), Ok(16_777_215u64 << 40));
    }
}
