use super::locate::{line_col, parse_path, path_at, render, span_of, Seg};
use super::*;

#[test]
fn paths_render_and_parse_back() {
    let path = vec![
        Seg::Key("clients".into()),
        Seg::Index(2),
        Seg::Key("networks".into()),
        Seg::Index(0),
    ];
    assert_eq!(render(&path), "clients[2].networks[0]");
    assert_eq!(parse_path("clients[2].networks[0]"), path);
}

#[test]
fn line_and_column_count_characters() {
    let text = "a = 1\nbé = \"x\"\n";
    assert_eq!(line_col(text, 0), (1, 1));
    let x = text.find('"').unwrap();
    assert_eq!(line_col(text, x), (2, 6));
}

#[test]
fn spans_of_keys_in_tables_and_arrays_of_tables() {
    let text = "[budgets]\nrequests = \"1/minute\"\n\n[[clients]]\nname = \"a\"\n\n[[clients]]\nname = \"b\"\nnetworks = [\"10.0.0.0/8\", \"x\"]\n";
    let at = |p: &str| span_of(text, &parse_path(p)).map(|s| line_col(text, s.start));
    assert_eq!(at("budgets.requests"), Some((2, 12)));
    assert_eq!(at("clients[1].networks[1]"), Some((9, 27)));
    assert_eq!(at("clients[1].name"), Some((8, 8)));
    let offset = text.find("\"x\"").unwrap();
    assert_eq!(render(&path_at(text, offset)), "clients[1].networks[1]");
}

#[test]
fn secrets_never_show_in_debug() {
    let text = "[[routes.resources]]\ntype = \"Patient\"\ninteractions = [\"read\"]\n[tokens]\nissuer = \"https://auth.example\"\naudiences = [\"https://fhir.example\"]\ndanger_hmac_secret = { inline = \"0123456789abcdef0123456789abcdef-very-secret\", danger_inline_secret = true }\n";
    let policy = Policy::from_toml_str(text, "inline.toml").unwrap_or_else(|e| panic!("{e}"));
    let debug = format!("{policy:?} {:?}", policy.build().unwrap());
    assert!(!debug.contains("very-secret"), "{debug}");
}

#[test]
fn inline_secret_without_opt_in_names_no_value() {
    let text = "[tokens]\nissuer = \"https://auth.example\"\naudiences = [\"https://fhir.example\"]\ndanger_hmac_secret = \"hunter2-hunter2-hunter2-hunter2-hunter2\"\n";
    let e = Policy::from_toml_str(text, "p.toml").unwrap_err();
    assert_eq!(e.key(), "tokens.danger_hmac_secret");
    assert_eq!(e.line(), Some(4));
    assert!(!e.to_string().contains("hunter2"), "{e}");
}
