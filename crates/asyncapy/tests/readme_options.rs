//! The README's table of options is the option table's (`config.rs`), so the
//! two cannot drift. After changing an option, run
//! `ASYNCAPY_BLESS=1 cargo test -p asyncapy --test readme_options` to rewrite
//! the README's copy.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

const BEGIN: &str = "<!-- options: made from the option table of crates/asyncapy/src/config.rs; see crates/asyncapy/tests/readme_options.rs -->\n";
const END: &str = "<!-- end of options -->\n";

#[test]
fn the_readme_table_of_options_is_the_option_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("the README marks its table of options")
        + BEGIN.len();
    let end = start
        + readme[start..]
            .find(END)
            .expect("the end of the table is marked");
    let table = asyncapy::config::options_table();
    if std::env::var_os("ASYNCAPY_BLESS").is_some() {
        let blessed = format!("{}{table}{}", &readme[..start], &readme[end..]);
        std::fs::write(path, blessed).unwrap();
        return;
    }
    assert!(
        readme[start..end] == table,
        "the README's table of options differs from the option table; \
         rewrite it with ASYNCAPY_BLESS=1 cargo test -p asyncapy --test readme_options\n\
         README:\n{}\noption table:\n{table}",
        &readme[start..end]
    );
}
