//! Developer tasks for fhirwall.
//!
//! ```text
//! cargo run -p xtask -- gen-tables [--r4 DIR] [--out DIR] [--check]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo run -p xtask -- gen-tables [--r4 DIR] [--out DIR] [--check]

  --r4 DIR   directory holding hl7.fhir.r4.core.tgz
             (default: $FHIR_R4_DIR, else ../shared/fhir-r4 next to the workspace)
  --out DIR  where the tables go (default: src/fhir/tables)
  --check    generate in memory and fail if a committed file differs";

struct Options {
    r4: PathBuf,
    out: PathBuf,
    check: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        r4: xtask::default_r4_dir(),
        out: xtask::default_out_dir(),
        check: false,
    };
    let mut args = args.iter();
    match args.next().map(String::as_str) {
        Some("gen-tables") => {}
        Some(other) => return Err(format!("unknown task {other:?}")),
        None => return Err("no task given".to_owned()),
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--r4" => options.r4 = args.next().ok_or("--r4 needs a directory")?.into(),
            "--out" => options.out = args.next().ok_or("--out needs a directory")?.into(),
            "--check" => options.check = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn run(options: &Options) -> Result<bool, String> {
    let (files, stats) = xtask::generate_with_stats(&options.r4)?;
    eprintln!("{stats:#?}");
    if options.check {
        let stale = xtask::stale_files(&files, &options.out);
        for name in &stale {
            eprintln!("out of date: {}", options.out.join(name).display());
        }
        if !stale.is_empty() {
            eprintln!("run `cargo run -p xtask -- gen-tables` to regenerate");
        }
        return Ok(stale.is_empty());
    }
    std::fs::create_dir_all(&options.out)
        .map_err(|e| format!("cannot create {}: {e}", options.out.display()))?;
    for (name, contents) in &files {
        let path = options.out.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(contents.as_str()) {
            continue;
        }
        std::fs::write(&path, contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(true)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
