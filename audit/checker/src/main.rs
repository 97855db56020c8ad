//! `tidegate-audit <advisory-db> <ignore.txt> <Cargo.lock>...`
//!
//! Checks each lock file against an advisory database snapshot on disk, the
//! way `cargo audit --no-fetch --db` does (same crate, same matching). Fails
//! on a vulnerability unless `ignore.txt` lists its id with a reason; prints
//! the informational advisories (unmaintained, unsound, notice) and yanked
//! crates are not checked (that needs the registry).

use std::path::Path;
use std::process::ExitCode;

use rustsec::advisory::{Id, Informational};
use rustsec::report::{Report, Settings};
use rustsec::{Database, Lockfile};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db_path, ignore_path, locks @ ..] = args.as_slice() else {
        eprintln!("usage: tidegate-audit <advisory-db> <ignore.txt> <Cargo.lock>...");
        return ExitCode::from(2);
    };
    match run(Path::new(db_path), Path::new(ignore_path), locks) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Audits every lock file; `Ok(false)` when one has an unlisted vulnerability.
fn run(db_path: &Path, ignore_path: &Path, locks: &[String]) -> Result<bool, String> {
    let db = Database::open(db_path)
        .map_err(|e| format!("advisory database {}: {e}", db_path.display()))?;
    let settings = Settings {
        ignore: ignored_ids(ignore_path)?,
        informational_warnings: vec![
            Informational::Unmaintained,
            Informational::Unsound,
            Informational::Notice,
        ],
        ..Settings::default()
    };
    let mut clean = true;
    for lock in locks {
        let lockfile = Lockfile::load(lock).map_err(|e| format!("{lock}: {e}"))?;
        let report = Report::generate(&db, &lockfile, &settings);
        println!(
            "{lock}: {} crates, {} vulnerabilities (not counting {} ignored ids)",
            lockfile.packages.len(),
            report.vulnerabilities.count,
            settings.ignore.len()
        );
        for v in &report.vulnerabilities.list {
            clean = false;
            println!(
                "  VULNERABLE {} {}: {} — {} (patched: {})",
                v.package.name,
                v.package.version,
                v.advisory.id,
                v.advisory.title,
                versions(&v.versions.patched().iter().map(ToString::to_string).collect::<Vec<_>>())
            );
        }
        for (kind, warnings) in &report.warnings {
            for w in warnings {
                let id = w.advisory.as_ref().map_or_else(String::new, |a| format!(" {}", a.id));
                let title = w.advisory.as_ref().map_or("", |a| a.title.as_str());
                println!("  warning ({kind}) {} {}{id}: {title}", w.package.name, w.package.version);
            }
        }
    }
    Ok(clean)
}

/// The ids in `ignore.txt` (lines "RUSTSEC-YYYY-NNNN  reason"; `#` comments).
fn ignored_ids(path: &Path) -> Result<Vec<Id>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut ids = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(2, char::is_whitespace);
        let id = parts.next().unwrap_or_default();
        if parts.next().map_or(true, |why| why.trim().is_empty()) {
            return Err(format!("{}:{}: {id} needs a reason after the id", path.display(), n + 1));
        }
        ids.push(id.parse().map_err(|e| format!("{}:{}: {id}: {e}", path.display(), n + 1))?);
    }
    Ok(ids)
}

fn versions(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}
