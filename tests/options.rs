//! The docs' tables of options are the library's table
//! (`keyroll::options::OPTIONS`), rendered: a new option, or a changed
//! default or doc line, fails here until the README and docs/PYTHON.md say
//! the same. The failure prints the table to paste.

use keyroll::options::{OPTIONS, Unit};

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

/// The README's table: every door's spelling of each option.
fn readme_table() -> String {
    let mut table = String::from(
        "| option | Rust builder | `keyroll` flag | Python `keyroll.open`, Flask | Django `KEYROLL` | default |\n\
         |---|---|---|---|---|---|\n",
    );
    for option in OPTIONS {
        let (flag_value, python) = match option.unit {
            Unit::Count => ("N", "an int"),
            _ => ("DURATION", "seconds"),
        };
        table.push_str(&format!(
            "| {} | `.{}(…)` | `--{} {flag_value}` | `{}=` {python} | `{}` | {} |\n",
            option.doc,
            option.name,
            option.name.replace('_', "-"),
            option.name,
            option.name.to_uppercase(),
            option.default,
        ));
    }
    table
}

/// docs/PYTHON.md's table of the `KEYROLL` setting, between its `KEYS` and
/// `ENABLED` rows.
fn python_rows() -> String {
    OPTIONS
        .iter()
        .map(|option| {
            let unit = match option.unit {
                Unit::Count => "",
                _ => ", seconds",
            };
            format!(
                "| `{}` | `{}` | {}{unit} (default: {}) |\n",
                option.name.to_uppercase(),
                option.name,
                option.doc,
                option.default
            )
        })
        .collect()
}

#[test]
fn the_readme_table_of_options_is_the_library_s() {
    let table = readme_table();
    assert!(
        read("README.md").contains(&table),
        "the README's table of options differs from keyroll::options::OPTIONS; it should read:\n{table}"
    );
}

#[test]
fn the_django_setting_table_is_the_library_s() {
    let rows = python_rows();
    let expected = format!(
        "| `KEYS` (required) | `uri` | the key source |\n{rows}| `ENABLED` | | `False` turns the app off (tests) |\n"
    );
    assert!(
        read("docs/PYTHON.md").contains(&expected),
        "docs/PYTHON.md's KEYROLL table differs from keyroll::options::OPTIONS; it should read:\n{expected}"
    );
}

#[cfg(feature = "gcp")]
#[test]
fn every_option_set_reaches_the_builder_as_its_method_would() {
    use std::time::Duration;

    use keyroll::Refresher;
    use keyroll::options::Options;

    let mut options = Options::new();
    for (name, text) in [
        ("interval", "10s"),
        ("jitter", "1s"),
        ("clock_skew_margin", "2s"),
        ("fallback_window", "7d"),
        ("max_fallbacks", "2"),
        ("fail_closed_after", "1h"),
    ] {
        options.set_text(name, text).expect(name);
    }
    // A shared store: the activation delay is computed from the refresher's options.
    let uri = "gcp-sm://projects/p/secrets/s";
    let from_options = options
        .apply(Refresher::builder(keyroll::open(uri).expect("opens")))
        .effective_policy();
    let by_hand = Refresher::builder(keyroll::open(uri).expect("opens"))
        .interval(Duration::from_secs(10))
        .jitter(Duration::from_secs(1))
        .clock_skew_margin(Duration::from_secs(2))
        .fallback_window(Duration::from_secs(7 * 86_400))
        .max_fallbacks(2)
        .effective_policy();
    assert_eq!(from_options.activation_delay, by_hand.activation_delay);
    assert!(from_options.activation_delay >= Some(Duration::from_secs(13)));
    assert_eq!(from_options.fallback_window, Duration::from_secs(7 * 86_400));
    assert_eq!(from_options.max_fallbacks, 2);

    options
        .set_text("activation_delay", "90s")
        .expect("activation_delay");
    let explicit = options
        .apply(Refresher::builder(keyroll::open(uri).expect("opens")))
        .effective_policy();
    assert_eq!(explicit.activation_delay, Some(Duration::from_secs(90)));
}
