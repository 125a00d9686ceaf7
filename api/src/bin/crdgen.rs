//! Writes the CRD YAML files generated from the kruise-api types.
//!
//! Usage: `crdgen [--out-dir <charts-root>]` (default `charts`), or `crdgen --print` to write all
//! documents to stdout.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut out_dir = PathBuf::from("charts");
    let mut print = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--print" => print = true,
            "--out-dir" => match args.next() {
                Some(dir) => out_dir = PathBuf::from(dir),
                None => {
                    eprintln!("--out-dir needs a directory");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("usage: crdgen [--out-dir <charts-root>] [--print]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}; see --help");
                return ExitCode::from(2);
            }
        }
    }
    if print {
        return match kruise_api::crd::rendered_files() {
            Ok(files) => {
                for (_, yaml) in files {
                    println!("---\n{}", yaml.trim_end());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("crdgen: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match kruise_api::crd::write_all(&out_dir) {
        Ok(paths) => {
            for p in paths {
                println!("wrote {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crdgen: {e}");
            ExitCode::FAILURE
        }
    }
}
