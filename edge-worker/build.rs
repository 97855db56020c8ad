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
//!
//! Cloudflare caps each variable and secret at 5 KB. A `TIDEGATE_CONFIG` or
//! `API_KEYS` over that, in the manifest's vars or in this build's
//! environment (`TIDEGATE_CONFIG=… API_KEYS=… wrangler deploy --dry-run`,
//! for values about to be `wrangler secret put`), fails the build with a
//! message pointing at the embedded config file or the KV key store.

use std::path::{Path, PathBuf};
use std::process::exit;

fn main() {
    println!("cargo:rerun-if-env-changed=TIDEGATE_CONFIG_FILE");
    println!("cargo:rerun-if-env-changed=TIDEGATE_CONFIG");
    println!("cargo:rerun-if-env-changed=API_KEYS");
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

    // Values handed to this build, e.g. before `wrangler secret put`.
    if let Ok(text) = std::env::var("TIDEGATE_CONFIG") {
        check_size(
            "the environment's TIDEGATE_CONFIG",
            "TIDEGATE_CONFIG",
            &text,
        );
        check("the environment's TIDEGATE_CONFIG", &text);
    }
    if let Ok(text) = std::env::var("API_KEYS") {
        check_size("the environment's API_KEYS", "API_KEYS", &text);
        check_api_keys("the environment's API_KEYS", &text);
    }

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
    let var = |vars: Option<&toml::Value>, key: &str| {
        vars.and_then(|v| v.get(key))
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    let mut tables = vec![("[vars]".to_owned(), doc.get("vars"))];
    let envs = doc.get("env").and_then(toml::Value::as_table);
    for (env, table) in envs.into_iter().flatten() {
        tables.push((format!("[env.{env}.vars]"), table.get("vars")));
    }
    for (section, vars) in tables {
        if let Some(text) = var(vars, "TIDEGATE_CONFIG") {
            let what = format!("{name} {section} TIDEGATE_CONFIG");
            check_size(&what, "TIDEGATE_CONFIG", &text);
            check(&what, &text);
        }
        if let Some(text) = var(vars, "API_KEYS") {
            let what = format!("{name} {section} API_KEYS");
            check_size(&what, "API_KEYS", &text);
            check_api_keys(&what, &text);
        }
    }
}

/// Fails on a value over Cloudflare's 5 KB cap for one variable or secret.
fn check_size(what: &str, name: &str, text: &str) {
    if let Err(e) = tidegate_policy::config::check_binding_size(name, text) {
        fail(&format!("{what}: {e}"));
    }
}

fn check_api_keys(what: &str, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    if let Err(errors) = tidegate_policy::auth::ApiKeyStore::from_json(text) {
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        fail(&format!("{what}: {}", listed.join("; ")));
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
