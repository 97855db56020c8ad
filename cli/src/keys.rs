//! `tidegate keys …`: a new key made here (OS randomness, the policy's own
//! grant parser and record writer) or through the edge's key admin API
//! (`/__tidegate/keys`, KV store), which rotate, revoke and list need.
//!
//! ```
//! use tidegate_cli::expiry_members;
//! assert_eq!(expiry_members(Some("90d")), (None, Some("90d".to_owned())));
//! assert_eq!(expiry_members(Some("2030-01-01T00:00:00Z")).0.as_deref(), Some("2030-01-01T00:00:00Z"));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tidegate_policy::auth::{parse_issue_request, ApiKeyEntry};

use crate::run::print_raw;
use crate::{
    key_table, parse_answer, ApiClient, CliError, Credentials, EdgeArgs, GlobalArgs, Http,
    IssueBody, IssuedKeyView, KeyListView, KeysCommand, Output, RevokedKeyView, RotateBody,
};

/// A key made here, for `--output json`.
#[derive(Debug, Serialize)]
pub struct LocalKey {
    /// The key: shown this once.
    pub key: String,
    /// Its record id.
    pub id: String,
    /// The record to add to the `API_KEYS` secret's array.
    pub api_keys_entry: ApiKeyEntry,
}

/// `--expires` as `(expires_at, expires_in)`: a duration (`90d`) or a time.
pub fn expiry_members(expires: Option<&str>) -> (Option<String>, Option<String>) {
    match expires {
        None => (None, None),
        Some(e) if tidegate_policy::config::parse_duration(e).is_ok() => (None, Some(e.to_owned())),
        Some(e) => (Some(e.to_owned()), None),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn random<const N: usize>() -> Result<[u8; N], CliError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| CliError::Usage(format!("the OS gave no randomness: {e}")))?;
    Ok(bytes)
}

/// The edge's key admin API, or the error naming what is missing.
fn edge(args: &EdgeArgs, global: &GlobalArgs, what: &str) -> Result<(ApiClient, String), CliError> {
    let Some(url) = args.edge.as_deref() else {
        return Err(CliError::Usage(format!(
            "{what} goes through the edge's key admin API (keys in Workers KV): pass --edge URL and --admin-key (or set TIDEGATE_EDGE_URL and TIDEGATE_ADMIN_KEY). With keys in the API_KEYS secret, issue a new key with `tidegate keys new` and edit the secret"
        )));
    };
    let Some(admin) = args.admin_key.clone() else {
        return Err(CliError::Usage(
            "--edge needs the edge's ADMIN_KEY: pass --admin-key or set TIDEGATE_ADMIN_KEY".into(),
        ));
    };
    let http = Http::new(Duration::from_secs(global.timeout.max(1)))?;
    let client = ApiClient::new(
        http,
        url,
        Credentials {
            bearer: Some(admin),
            ..Credentials::default()
        },
    );
    let prefix = format!("/{}/", args.admin_prefix.trim_matches('/'));
    Ok((client, format!("{prefix}keys")))
}

/// Runs a `keys` command.
pub async fn run(command: KeysCommand, global: &GlobalArgs) -> Result<(), CliError> {
    let output = global.output;
    match command {
        KeysCommand::New {
            consumer,
            scopes,
            tier,
            expires,
            edge: edge_args,
        } => {
            let (expires_at, expires_in) = expiry_members(expires.as_deref());
            let body = IssueBody {
                consumer,
                scopes: scopes.into_iter().filter(|s| !s.is_empty()).collect(),
                tier,
                expires_at,
                expires_in,
            };
            if edge_args.edge.is_none() {
                return new_local(&body, output);
            }
            let (client, path) = edge(&edge_args, global, "storing a key")?;
            let answer = client.post(&path, &body).await?;
            print_issued(&path, &answer, output)
        }
        KeysCommand::Rotate {
            id,
            overlap,
            expires,
            edge: edge_args,
        } => {
            let (client, path) = edge(&edge_args, global, "keys rotate")?;
            let (expires_at, expires_in) = expiry_members(expires.as_deref());
            let body = RotateBody {
                overlap,
                expires_at,
                expires_in,
            };
            let path = format!("{path}/{}/rotate", segment(&id)?);
            let answer = client.post(&path, &body).await?;
            print_issued(&path, &answer, output)
        }
        KeysCommand::Revoke {
            id,
            edge: edge_args,
        } => {
            let (client, path) = edge(&edge_args, global, "keys revoke")?;
            let path = format!("{path}/{}/revoke", segment(&id)?);
            let answer = client.post_raw(&path, Bytes::new()).await?;
            let revoked: RevokedKeyView = parse_answer(&path, &answer)?;
            if output == Output::Json {
                print_raw(&answer);
            } else {
                println!(
                    "revoked {} ({}); every location refuses it within {} s",
                    revoked.summary.id, revoked.summary.consumer, revoked.effective_within_seconds
                );
            }
            Ok(())
        }
        KeysCommand::List {
            consumer,
            limit,
            cursor,
            edge: edge_args,
        } => {
            let (client, path) = edge(&edge_args, global, "keys list")?;
            let mut query = format!("?consumer={}", query_part(&consumer));
            if let Some(l) = limit {
                query.push_str(&format!("&limit={l}"));
            }
            if let Some(c) = cursor {
                query.push_str(&format!("&cursor={}", query_part(&c)));
            }
            let path = format!("{path}{query}");
            let answer = client.get(&path).await?;
            let page: KeyListView = parse_answer(&path, &answer)?;
            if output == Output::Json {
                print_raw(&answer);
            } else {
                if page.keys.is_empty() {
                    println!("{consumer} has no keys");
                } else {
                    print!("{}", key_table(&page.keys));
                }
                if let Some(c) = page.cursor {
                    println!("more: --cursor {c}");
                }
            }
            Ok(())
        }
    }
}

/// A key id as a path segment (the policy's rule: `A-Z a-z 0-9 _ - .`).
fn segment(id: &str) -> Result<&str, CliError> {
    tidegate_policy::auth::parse_key_id(id)
        .map_err(|e| CliError::Usage(format!("`{id}`: {e}; key ids look like key_3f…")))
}

fn query_part(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A key made here: the policy validates the grant exactly as the edge's
/// `POST keys` would, and writes the `API_KEYS` record.
fn new_local(body: &IssueBody, output: Output) -> Result<(), CliError> {
    let bytes = serde_json::to_vec(body).map_err(|e| CliError::Usage(e.to_string()))?;
    let now = now_ms();
    // Any tier: without the config at hand, `tidegate check` is where tiers are checked.
    let grant = parse_issue_request(&bytes, now, |_| true)
        .map_err(|e| CliError::Usage(format!("{e} (from --consumer/--scopes/--tier/--expires)")))?;
    let issued = grant.issue(&random::<32>()?, &random::<10>()?, now);
    let entry = issued.record.to_api_key_record(issued.hash).to_entry();
    let local = LocalKey {
        key: issued.key,
        id: entry.id.clone(),
        api_keys_entry: entry,
    };
    let entry_json = serde_json::to_string(&local.api_keys_entry).unwrap_or_default();
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&local).unwrap_or_default()
        ),
        Output::Table => {
            println!("key:    {}", local.key);
            println!("id:     {}", local.id);
            println!();
            println!("Store the key now: it is shown only this once, and Tidegate keeps only its SHA-256.");
            println!("Add this record to the JSON array in the API_KEYS secret:");
            println!();
            println!("{entry_json}");
        }
    }
    Ok(())
}

fn print_issued(path: &str, answer: &Bytes, output: Output) -> Result<(), CliError> {
    let issued: IssuedKeyView = parse_answer(path, answer)?;
    if output == Output::Json {
        print_raw(answer);
        return Ok(());
    }
    println!("key:    {}", issued.key);
    println!("id:     {}", issued.summary.id);
    if let Some(old) = &issued.replaces {
        let ends = old
            .expires_at
            .map_or("-".into(), |s| crate::format_time(s.saturating_mul(1000)));
        println!("replaces {} (works until {ends})", old.id);
    }
    println!();
    println!("Store the key now: it is shown only this once; the edge keeps only its SHA-256.");
    print!("{}", key_table(std::slice::from_ref(&issued.summary)));
    Ok(())
}
