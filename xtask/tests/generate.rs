//! The generated FHIR R4 tables are deterministic and match the committed `src/fhir/tables`.

use xtask::package::PACKAGE_FILE;

#[test]
fn tables_are_deterministic_and_up_to_date() {
    let r4_dir = xtask::default_r4_dir();
    if !r4_dir.join(PACKAGE_FILE).is_file() {
        eprintln!(
            "skipping: {} not found (set FHIR_R4_DIR to the directory holding the FHIR R4 core package)",
            r4_dir.join(PACKAGE_FILE).display()
        );
        return;
    }
    let first = xtask::generate(&r4_dir).expect("generation succeeds");
    let second = xtask::generate(&r4_dir).expect("generation succeeds again");
    assert!(first == second, "two generations differ");

    let expected_files = [
        "compartment.rs",
        "elements.rs",
        "resource_types.rs",
        "search_params.rs",
        "valuesets.rs",
    ];
    assert_eq!(
        first.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_files
    );
    for contents in first.values() {
        assert!(
            contents.starts_with(xtask::HEADER),
            "every generated file starts with the @generated header"
        );
    }

    let stale = xtask::stale_files(&first, &xtask::default_out_dir());
    assert!(
        stale.is_empty(),
        "src/fhir/tables is out of date ({}); run `cargo run -p xtask -- gen-tables`",
        stale.join(", ")
    );
}
