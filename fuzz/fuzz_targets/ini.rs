//! The INI loader on arbitrary text: `Ini::parse`, then every key of every
//! section looked up (with interpolation), then `Config::from_ini_str`.
//!
//! Checks: every listed key is found; a lookup fails only with an
//! interpolation error; an interpolated value is never longer than the bound
//! the loader enforces; lookups are case-insensitive in the key.

#![no_main]

use asyncapy::ini::{Ini, IniError, MAX_INTERPOLATED_LEN};
use asyncapy::Config;
use asyncapy_fuzz::timed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| timed(data, || check(data)));

fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ini) = Ini::parse(text) {
        let sections: Vec<&str> = std::iter::once("DEFAULT").chain(ini.sections()).collect();
        for section in sections {
            assert!(ini.has_section(section));
            for key in ini.keys(section) {
                assert_eq!(key, key.to_lowercase(), "keys are folded to lower case");
                match ini.get(section, key) {
                    Ok(Some(value)) => assert!(value.len() <= MAX_INTERPOLATED_LEN),
                    Ok(None) => panic!("[{section}] {key} is listed but not found"),
                    Err(
                        IniError::BadInterpolation { .. }
                        | IniError::MissingReference { .. }
                        | IniError::InterpolationDepth { .. }
                        | IniError::InterpolationTooLarge { .. },
                    ) => {}
                    Err(e) => panic!("a lookup failed with a syntax error: {e}"),
                }
                let upper = key.to_uppercase();
                if upper.to_lowercase() == key {
                    assert_eq!(ini.get(section, &upper), ini.get(section, key));
                }
            }
        }
    }
    let _ = Config::from_ini_str(text);
}
