//! Embeds the gateway configuration into the Worker and refuses to build an
//! invalid one.
//!
//! The file is `TIDEGATE_CONFIG_FILE` (relative paths are taken from the
//! repository root), default `examples/gateway.toml`. It is the Worker's
//! configuration whenever the `TIDEGATE_CONFIG` variable is not set. Any
//! `TIDEGATE_CONFIG` written in the root `wrangler.toml` (`[vars]`, or
//! `[env.NAME.vars]`) is validated too, so `wrangler deploy --dry-run`, which
//! runs this build, fails on a broken configuration before anything is
//! uploaded. Variables set elsewhere (dashboard, `--var`) are checked at
//! run time: every request then gets a 500 problem naming the errors.

use std::path::{Path, PathBuf};
use std::process::exit;

fn main() {
    println!("cargo:rerun-if-env-changed=TIDEGATE_CONFIG_FILE");
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = crate_dir
        .parent()
        .map_or_else(|| crate_dir.clone(), Path::to_path_buf);
    let file = match std::env::var_os("TIDEGATE_CONFIG_FILE") {
        Some(f) if !f.is_empty() => root.join(f),
        _ => root.join("examples/gateway.toml"),
    };
    println!("cargo:rerun-if-changed={}", file.display());
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        fail(&format!(
            "cannot read the gateway config {} ({e}); set TIDEGATE_CONFIG_FILE to an existing file",
            file.display()
        ))
    });
    check(&file.display().to_string(), &text);

    let wrangler = root.join("wrangler.toml");
    println!("cargo:rerun-if-changed={}", wrangler.display());
    if let Ok(manifest) = std::fs::read_to_string(&wrangler) {
        check_wrangler_vars(&wrangler.display().to_string(), &manifest);
    }

    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("gateway.toml");
    if let Err(e) = std::fs::write(&out, text) {
        fail(&format!("cannot write {}: {e}", out.display()));
    }
}

/// Validates every `TIDEGATE_CONFIG` string in the manifest's vars.
fn check_wrangler_vars(name: &str, manifest: &str) {
    let Ok(doc) = manifest.parse::<toml::Table>() else {
        // wrangler itself reports a malformed manifest.
        return;
    };
    let var = |vars: Option<&toml::Value>| {
        vars.and_then(|v| v.get("TIDEGATE_CONFIG"))
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    if let Some(text) = var(doc.get("vars")) {
        check(&format!("{name} [vars] TIDEGATE_CONFIG"), &text);
    }
    let envs = doc.get("env").and_then(toml::Value::as_table);
    for (env, table) in envs.into_iter().flatten() {
        if let Some(text) = var(table.get("vars")) {
            check(&format!("{name} [env.{env}.vars] TIDEGATE_CONFIG"), &text);
        }
    }
}

fn check(what: &str, text: &str) {
    if text.trim().is_empty() {
        return; // blank means "use the embedded file", as at run time
    }
    if let Err(errors) = tidegate_policy::config::parse(text) {
        fail(&format!("{what}: {errors}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    exit(1)
}
