//! The README's table of what each store can do is what the providers declare.

use keyroll::Capabilities;

/// The README's rows: store, push, publish, promote, disable, compare-and-set.
fn readme_rows() -> Vec<(String, [bool; 5])> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let table = readme
        .split("| store | push | publish | promote | disable | compare-and-set |")
        .nth(1)
        .expect("the capability table");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let store = cells[1].trim_matches('`').to_owned();
            let flag = |n: usize| match cells[n] {
                "yes" => true,
                "" => false,
                other => panic!("{store}: `{other}` is neither yes nor empty"),
            };
            let flags = [flag(2), flag(3), flag(4), flag(5), flag(6)];
            (store, flags)
        })
        .collect()
}

#[test]
fn the_readme_table_is_what_every_provider_declares() {
    let rows = readme_rows();
    let schemes: Vec<&str> = keyroll::SCHEMES.iter().map(|scheme| scheme.name).collect();
    let listed: Vec<&str> = rows.iter().map(|(store, _)| store.as_str()).collect();
    assert_eq!(
        listed, schemes,
        "the table lists every store, in the order of keyroll::SCHEMES"
    );
    for scheme in keyroll::SCHEMES.iter().filter(|scheme| scheme.enabled) {
        let provider = keyroll::open(scheme.example).expect("the example URI opens without a store");
        let Capabilities {
            push,
            publish,
            promote,
            disable,
            compare_and_set,
            ..
        } = provider.capabilities();
        let (_, row) = rows.iter().find(|(store, _)| store == scheme.name).expect("row");
        assert_eq!(
            *row,
            [push, publish, promote, disable, compare_and_set],
            "{}",
            scheme.name
        );
    }
}
