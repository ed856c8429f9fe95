//! Inputs the fuzz targets (`fuzz/`, see fuzz/README.md) found, kept as tests:
//! each one failed (hung, or ran out of memory) before its fix.

use std::time::{Duration, Instant};

use asyncapy::ini::{Ini, IniError, MAX_INTERPOLATED_LEN, MAX_INTERPOLATED_REFS};
use asyncapy::logging::{FormatError, PythonFormat, MAX_FIELD_WIDTH};
use asyncapy::{Config, ConfigError};

/// `[s]` with keys `a`, `b`, ... each referencing the next `fanout` times, the
/// last one holding `leaf`: looking up `a` expands `fanout^levels` references.
fn reference_bomb(levels: usize, fanout: usize, leaf: &str) -> String {
    let names: Vec<char> = ('a'..='z').take(levels + 1).collect();
    let mut text = String::from("[s]\n");
    for pair in names.windows(2) {
        let reference = format!("%({})s", pair[1]);
        text.push_str(&format!("{} = {}\n", pair[0], reference.repeat(fanout)));
    }
    text.push_str(&format!("{} = {leaf}\n", names[levels]));
    text
}

/// Fuzz target `log_format` (timeout): a 12-digit width made every log line
/// write 800 billion spaces. Input: `format 0xff datefmt`.
#[test]
fn log_format_width_is_bounded() {
    let input = b"%(created).3r.d)f %(message)00000000000800000402000s\xff%s";
    let at = input.iter().position(|&b| b == 0xff).unwrap();
    let format = std::str::from_utf8(&input[..at]).unwrap();
    let datefmt = std::str::from_utf8(&input[at + 1..]).unwrap();
    assert_eq!(
        PythonFormat::new(format, datefmt).unwrap_err(),
        FormatError::FieldTooWide(18)
    );
}

#[test]
fn log_format_width_and_precision_limits() {
    let max = MAX_FIELD_WIDTH;
    assert!(PythonFormat::new(&format!("%(message){max}s"), "%H").is_ok());
    assert!(PythonFormat::new(&format!("%(created).{max}f"), "%H").is_ok());
    for format in [
        format!("%(message){}s", max + 1),
        format!("%(created).{}f", max + 1),
        // Once read as width 0 (the digits overflowed usize).
        "%(message)99999999999999999999999s".to_owned(),
        "%(created).99999999999999999999999f".to_owned(),
    ] {
        assert!(
            matches!(
                PythonFormat::new(&format, "%H"),
                Err(FormatError::FieldTooWide(0))
            ),
            "{format}"
        );
    }
    // A config file is checked when it loads.
    let err =
        Config::from_ini_str("[AsyncAPY]\nconsole_format = %%(message)9999999s\n").unwrap_err();
    assert!(
        err.to_string().starts_with("console_format: invalid value"),
        "{err}"
    );
}

/// Fuzz target `ini` (timeout): 467 bytes in which looking up `b` expanded
/// 8^9 references into 1 GB, in exponential time (`a` is one level too deep
/// and was refused at once).
#[test]
fn ini_reference_bomb_is_refused_promptly() {
    let text = reference_bomb(10, 8, "xxxxxxxx");
    assert_eq!(text.len(), 467);
    let ini = Ini::parse(&text).unwrap();
    let start = Instant::now();
    for key in ini.keys("s") {
        match ini.get("s", key) {
            Ok(value) => assert!(value.is_some_and(|v| v.len() <= MAX_INTERPOLATED_LEN)),
            Err(IniError::InterpolationTooLarge { .. } | IniError::InterpolationDepth { .. }) => {}
            Err(e) => panic!("{key}: {e}"),
        }
    }
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(matches!(
        ini.get("s", "a"),
        Err(IniError::InterpolationDepth { .. })
    ));
    assert!(matches!(
        ini.get("s", "b"),
        Err(IniError::InterpolationTooLarge { ref section, ref key }) if section == "s" && key == "b"
    ));

    // The same in the server's own section, where the config loader reads it.
    let text = reference_bomb(9, 8, "xxxxxxxx")
        .replace("[s]", "[AsyncAPY]")
        .replace("\na =", "\naddr =");
    let err = Config::from_ini_str(&text).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Syntax {
                source: IniError::InterpolationTooLarge { .. },
                ..
            }
        ),
        "{err}"
    );
}

/// Expansion is bounded in length even when few references are involved...
#[test]
fn ini_interpolated_length_is_bounded() {
    // 64 references to 1,100 bytes: 70,400 bytes, once returned whole.
    let leaf = "x".repeat(1100);
    let ini = Ini::parse(&reference_bomb(2, 8, &leaf)).unwrap();
    assert!(64 * leaf.len() > MAX_INTERPOLATED_LEN);
    assert!(matches!(
        ini.get("s", "a"),
        Err(IniError::InterpolationTooLarge { .. })
    ));
    // 8 of them are fine.
    assert_eq!(ini.get("s", "b").unwrap().unwrap().len(), 8 * leaf.len());
}

/// ...and in references even when they expand to nothing.
#[test]
fn ini_reference_count_is_bounded() {
    // 8 + 64 + 512 references to an empty value: once answered "".
    let ini = Ini::parse(&reference_bomb(3, 8, "")).unwrap();
    const { assert!(8 + 64 + 512 > MAX_INTERPOLATED_REFS) };
    assert!(matches!(
        ini.get("s", "a"),
        Err(IniError::InterpolationTooLarge { .. })
    ));
    // 8 + 64 are fine.
    assert_eq!(ini.get("s", "b").unwrap().as_deref(), Some(""));
}

/// Fuzz target `proxy` (assertion): a byte that can never be part of a header
/// (a bare `\n`, a NUL) was refused as soon as it arrived, but after `UNKNOWN`
/// anything may precede the `\r\n`: the prefix was refused while the whole
/// line was a header. Now a line is judged at its `\r\n` (or its 107th byte).
#[test]
fn proxy_v1_lines_are_judged_whole() {
    use asyncapy::proxy::{parse, ProxyError};
    let whole = b"PROXY UNKNOWN \x01\x00\x00\x00\x00\x00\x00\x00ffff::2 1 2\r\n";
    let (header, len) = parse(whole).unwrap().unwrap();
    assert_eq!((header.source, len), (None, whole.len()));
    for cut in 0..whole.len() {
        assert_eq!(parse(&whole[..cut]), Ok(None), "prefix of {cut}");
    }
    // An early bare newline: more bytes may still end the line as UNKNOWN...
    let start = b"PROXY UNKNOWN ffff::1 ffff\r ::12 2\n";
    assert_eq!(parse(start), Ok(None));
    let mut more = start.to_vec();
    more.extend_from_slice(b" 1 2\r\n");
    assert_eq!(parse(&more).unwrap().unwrap().1, more.len());
    // ...and for TCP4 it is an error once the line ends.
    assert!(matches!(
        parse(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n\r\n"),
        Err(ProxyError::V1Malformed(_))
    ));
}
