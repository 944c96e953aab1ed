//! A command that explains itself: `--version` says what the build holds,
//! every subcommand's help has an example, completions and the man page
//! come from the binary under test (the installed one under scripts/test).

mod common;

use common::{run, text};

/// The subcommands `keyroll --help` lists, `help` aside.
fn subcommands() -> Vec<String> {
    let help = text(&run(&["--help"]).stdout);
    let listed: Vec<String> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(listed.len() >= 10, "{help}");
    listed
}

#[test]
fn version_names_the_commit_stores_and_formats() {
    for flag in ["--version", "-V"] {
        let out = run(&[flag]);
        assert!(out.status.success());
        let shown = text(&out.stdout);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 3, "{shown}");
        let first = format!("keyroll {} (commit ", env!("CARGO_PKG_VERSION"));
        assert!(lines[0].starts_with(&first) && lines[0].ends_with(')'), "{shown}");
        let commit = &lines[0][first.len()..lines[0].len() - 1];
        assert!(
            commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "a 12-digit commit: {shown}"
        );
        // The installed command is built with every store and format.
        assert_eq!(lines[1], "stores: env file docker vault aws-sm gcp-sm", "{shown}");
        assert_eq!(lines[2], "formats: keyroll django jwt flask fernet", "{shown}");
    }
}

#[test]
fn every_subcommand_help_shows_an_example_of_itself() {
    for name in subcommands() {
        let out = run(&[&name, "--help"]);
        assert!(out.status.success(), "{name}");
        let help = text(&out.stdout);
        let example = help
            .split_once("Example")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("`keyroll {name} --help` has no example:\n{help}"));
        assert!(
            example.contains(&format!("keyroll {name} ")),
            "`keyroll {name} --help`'s example does not run it:\n{help}"
        );
    }
}

#[test]
fn completions_cover_every_subcommand_for_bash_zsh_and_fish() {
    let names = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for name in &names {
            assert!(script.contains(name.as_str()), "{shell} completion lacks {name}");
        }
    }
    assert!(text(&run(&["completions", "bash"]).stdout).contains("complete -F _keyroll"));
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn the_man_page_is_roff_listing_every_subcommand() {
    let out = run(&["manpage"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq"),
        "roff: {}",
        &page[..page.len().min(200)]
    );
    // The title line names the version, and is one line.
    let version = format!("\"keyroll {}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        page.lines()
            .any(|line| line.starts_with(".TH keyroll 1 ") && line.contains(&version)),
        "{version}\n{page}"
    );
    assert!(!page.contains("\nstores:"), "{page}");
    for name in subcommands() {
        assert!(page.contains(&name), "the man page lacks {name}");
    }
}
