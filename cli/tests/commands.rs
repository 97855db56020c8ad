//! The `tidegate` binary against a fake control API and key admin API on
//! 127.0.0.1: every command, its exit codes and its JSON output.

mod fake;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use fake::{code, stage, stderr, stdout, tidegate, Fake, ADMIN};
use serde_json::{json, Value};

#[test]
fn status_of_every_stage_and_of_one() {
    let f = Fake::start();
    let all = f.run(&["status"]);
    assert_eq!(code(&all), 0, "{}", stderr(&all));
    let out = stdout(&all);
    assert!(out.starts_with("STAGE"), "{out}");
    assert!(out.contains("orders-api/prod  Progressing  d2"), "{out}");
    assert!(out.contains("d3 at 25%") && out.contains("2/4"), "{out}");

    let one = f.run(&["status", "orders-api/prod"]);
    assert_eq!(code(&one), 0, "{}", stderr(&one));
    let out = stdout(&one);
    assert!(out.contains("Status:      Progressing"), "{out}");
    assert!(out.contains("5 → [25] → 50 (approve) → 100"), "{out}");
    assert!(out.contains("orders-5xx") && out.contains("OK"), "{out}");
    assert!(out.contains("operator pause: freeze"), "{out}");
    let seen = f.seen();
    assert_eq!(seen.last().unwrap().header("x-api-key"), Some(fake::KEY));
}

#[test]
fn json_output_is_the_apis_own() {
    let f = Fake::start();
    let o = f.run(&["--output", "json", "status", "orders-api/prod"]);
    assert_eq!(code(&o), 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["canary"]["deployment_id"], "d3");
    assert_eq!(
        v["recent_actions"][0]["future_member"], true,
        "members the CLI does not know survive"
    );
    let h = f.run(&[
        "-o",
        "json",
        "rollout",
        "history",
        "orders-api/prod",
        "--limit",
        "5",
    ]);
    assert_eq!(code(&h), 0);
    let v: Value = serde_json::from_str(&stdout(&h)).unwrap();
    assert_eq!(v["entries"][0]["what"], "pause");
    assert!(f.seen().last().unwrap().path.ends_with("/history?limit=5"));
}

#[test]
fn every_rollout_command_posts_its_body() {
    let f = Fake::start();
    let cases: &[(&[&str], &str, Value)] = &[
        (
            &["start", "--deployment", "d9", "--steps", "5,50,100"],
            "start",
            json!({"deployment": "d9", "steps": [5.0, 50.0, 100.0], "reason": "r"}),
        ),
        (
            &[
                "start",
                "--deployment",
                "d9",
                "--steps",
                "2.5,50:approve,100",
            ],
            "start",
            json!({"deployment": "d9", "steps": [2.5, {"percent": 50.0, "approve": true}, 100.0], "reason": "r"}),
        ),
        (
            &["start", "--deployment", "d9"],
            "start",
            json!({"deployment": "d9", "reason": "r"}),
        ),
        (&["promote"], "promote", json!({"reason": "r"})),
        (&["rollback"], "rollback", json!({"reason": "r"})),
        (
            &["pause", "--for", "2h"],
            "pause",
            json!({"reason": "r", "for": "2h"}),
        ),
        (&["resume"], "resume", json!({"reason": "r"})),
        (&["advance"], "advance", json!({"reason": "r"})),
    ];
    for (args, cmd, body) in cases {
        let mut all = vec!["rollout"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["orders-api/prod", "--reason", "r"]);
        let o = f.run(&all);
        assert_eq!(code(&o), 0, "{cmd}: {}", stderr(&o));
        assert!(
            stdout(&o).contains(&format!(
                "orders-api/prod: {cmd}: applied — operator {cmd}: r"
            )),
            "{}",
            stdout(&o)
        );
        let last = f.seen().pop().unwrap();
        assert_eq!(last.method, "POST");
        assert_eq!(last.path, format!("/stages/orders-api/prod/{cmd}"));
        assert_eq!(
            serde_json::from_str::<Value>(&last.body).unwrap(),
            *body,
            "{cmd}"
        );
    }
}

#[test]
fn the_only_managed_stage_is_the_default_target() {
    let f = Fake::start();
    let o = f.run(&["rollout", "promote", "--reason", "looks good"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        f.seen().last().unwrap().path,
        "/stages/orders-api/prod/promote"
    );
}

#[test]
fn exit_codes_name_the_failure() {
    let f = Fake::start();
    // 409: nothing waits for approval.
    let o = f.run(&["rollout", "approve", "orders-api/prod", "--reason", "ok"]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("409 Nothing to approve (not-awaiting-approval)"),
        "{}",
        stderr(&o)
    );
    // 404: not a managed stage.
    let o = f.run(&["status", "orders-api/staging"]);
    assert_eq!(code(&o), 4);
    assert!(stderr(&o).contains("not in the [[rollback.stages]]"));
    // 2: no reason and stdin is not a terminal.
    let o = f.run(&["rollout", "promote", "orders-api/prod"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--reason is required"));
    // 2: not API/STAGE; clap's own usage errors too.
    assert_eq!(code(&f.run(&["status", "prod"])), 2);
    assert_eq!(code(&f.run(&["rollout", "frobnicate"])), 2);
    // 3: a wrong key, and none at all.
    let o = tidegate(
        &[
            "--url".into(),
            f.url(),
            "--api-key".into(),
            "nope".into(),
            "status".into(),
        ],
        &[],
    );
    assert_eq!(code(&o), 3);
    let o = tidegate(&["--url".into(), f.url(), "status".into()], &[]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("no credentials: pass --api-key, set TIDEGATE_API_KEY"),
        "{}",
        stderr(&o)
    );
    // 2: no URL.
    let o = tidegate(&["status".into()], &[("TIDEGATE_API_KEY", "k")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("pass --url or set TIDEGATE_URL"));
    // 6: nothing listens.
    let o = tidegate(
        &[
            "--url".into(),
            "http://127.0.0.1:9".into(),
            "--api-key".into(),
            "k".into(),
            "status".into(),
        ],
        &[],
    );
    assert_eq!(code(&o), 6);
    // 1: the command did not take effect.
    f.with(|s| {
        s.outcome =
            Some(json!({"status": "drifted", "drift": "stage deployment is d7, expected d2"}))
    });
    let o = f.run(&["rollout", "promote", "orders-api/prod", "--reason", "x"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("did not take effect: drifted: stage deployment is d7"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn credentials_come_from_the_environment_too() {
    let f = Fake::start();
    let o = tidegate(
        &["status".into()],
        &[("TIDEGATE_URL", &f.url()), ("TIDEGATE_API_KEY", fake::KEY)],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = tidegate(
        &["--sign".into(), "never".into(), "status".into()],
        &[("TIDEGATE_URL", &f.url()), ("TIDEGATE_TOKEN", "eyJ.x.y")],
    );
    assert_eq!(code(&o), 3, "the fake takes no tokens");
    assert_eq!(
        f.seen().last().unwrap().header("authorization"),
        Some("Bearer eyJ.x.y")
    );
}

#[test]
fn sigv4_signs_with_the_aws_credential_chain() {
    let f = Fake::start();
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_REGION", "eu-west-1"),
    ];
    let o = tidegate(
        &[
            "--url".into(),
            f.url(),
            "--sign".into(),
            "always".into(),
            "--api-key".into(),
            fake::KEY.into(),
            "status".into(),
        ],
        &env,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let seen = f.seen().pop().unwrap();
    let auth = seen.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/"),
        "{auth}"
    );
    assert!(auth.contains("/eu-west-1/lambda/aws4_request"), "{auth}");
    assert!(seen.header("x-amz-date").is_some());
    assert_eq!(
        seen.header("x-api-key"),
        Some(fake::KEY),
        "the control API's own key rides along"
    );
    // With no key or token, auto signs; a token cannot share the header.
    let o = tidegate(&["--url".into(), f.url(), "status".into()], &env);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = tidegate(
        &[
            "--url".into(),
            f.url(),
            "--sign".into(),
            "always".into(),
            "--token".into(),
            "t".into(),
            "status".into(),
        ],
        &env,
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("use --api-key"));
}

#[test]
fn watch_prints_a_line_per_change_until_promoted() {
    let f = Fake::start();
    f.with(|s| {
        s.stage = [
            stage("d2", Some(("d3", 5.0)), Some(0)),
            stage("d2", Some(("d3", 5.0)), Some(0)),
            stage("d2", Some(("d3", 25.0)), Some(1)),
            stage("d3", None, None),
        ]
        .into();
    });
    let o = f.run(&["rollout", "watch", "orders-api/prod", "--interval", "0.1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "one line per change: {out}");
    assert!(
        lines[0].contains("Progressing deployment=d2 canary=d3at5% steps=1/4"),
        "{out}"
    );
    assert!(lines[2].contains("Healthy deployment=d3"), "{out}");
    assert!(stderr(&o).contains("promoted d3"));
}

#[test]
fn watch_ends_with_exit_1_on_a_rollback_and_speaks_json_lines() {
    let f = Fake::start();
    f.with(|s| {
        s.stage = [
            stage("d2", Some(("d3", 5.0)), Some(0)),
            stage("d2", None, None),
        ]
        .into()
    });
    let o = f.run(&[
        "-o",
        "json",
        "rollout",
        "watch",
        "orders-api/prod",
        "--interval",
        "0.1",
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("rolled back: orders-api/prod: canary d3 removed, serving d2"),
        "{}",
        stderr(&o)
    );
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["deployment_id"], "d2");
}

#[test]
fn keys_new_locally_prints_the_key_once_and_a_record_api_keys_accepts() {
    let o = tidegate(
        &[
            "-o".into(),
            "json".into(),
            "keys".into(),
            "new".into(),
            "--consumer".into(),
            "acme".into(),
            "--scopes".into(),
            "orders:read,tidegate:admin".into(),
            "--tier".into(),
            "gold".into(),
            "--expires".into(),
            "90d".into(),
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let key = v["key"].as_str().unwrap();
    assert!(key.starts_with("tdg_") && key.len() == 47, "{key}");
    let entry = &v["api_keys_entry"];
    assert_eq!(entry["sha256"], tidegate_policy::auth::hash_key(key));
    assert_eq!(entry["scopes"], json!(["orders:read", "tidegate:admin"]));
    let store = tidegate_policy::auth::ApiKeyStore::from_json(&json!([entry]).to_string()).unwrap();
    let id = store.authenticate(key, 1_800_000_000_000).unwrap();
    assert_eq!(id.subject, "acme");
    // Invalid grants are refused the way the edge refuses them.
    let o = tidegate(
        &[
            "keys".into(),
            "new".into(),
            "--consumer".into(),
            "acme".into(),
            "--expires".into(),
            "yesterday".into(),
        ],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("expires_at"), "{}", stderr(&o));
}

#[test]
fn keys_through_the_edge_admin_api() {
    let f = Fake::start();
    let edge = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        all.extend(["--edge".into(), f.url(), "--admin-key".into(), ADMIN.into()]);
        tidegate(&all, &[])
    };
    let o = edge(&[
        "keys",
        "new",
        "--consumer",
        "acme",
        "--scopes",
        "orders:read",
        "--expires",
        "2030-01-01T00:00:00Z",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("key:    tdg_fromtheedge"),
        "{}",
        stdout(&o)
    );
    let last = f.seen().pop().unwrap();
    assert_eq!(last.path, "/__tidegate/keys");
    assert_eq!(
        serde_json::from_str::<Value>(&last.body).unwrap(),
        json!({"consumer": "acme", "scopes": ["orders:read"], "expires_at": "2030-01-01T00:00:00Z"})
    );

    let o = edge(&["keys", "list", "--consumer", "acme"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("key_0011223344556677aabb  acme"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        f.seen().pop().unwrap().path,
        "/__tidegate/keys?consumer=acme"
    );

    let o = edge(&[
        "keys",
        "rotate",
        "key_0011223344556677aabb",
        "--overlap",
        "1h",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("tdg_rotated")
            && stdout(&o).contains("replaces key_0011223344556677aabb")
    );
    assert_eq!(f.seen().pop().unwrap().body, r#"{"overlap":"1h"}"#);

    let o = edge(&["-o", "json", "keys", "revoke", "key_0011223344556677aabb"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&o)).unwrap()["status"],
        "revoked"
    );

    let o = edge(&["keys", "revoke", "key_unknown"]);
    assert_eq!(code(&o), 4);
    // Without --edge, the commands that need it say how to give it.
    let o = tidegate(&["keys".into(), "revoke".into(), "key_x".into()], &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("pass --edge URL and --admin-key"));
    let o = tidegate(
        &[
            "keys".into(),
            "list".into(),
            "--consumer".into(),
            "a".into(),
            "--edge".into(),
            f.url(),
        ],
        &[],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("TIDEGATE_ADMIN_KEY"));
}

#[test]
fn check_lists_every_problem_with_its_path() {
    let dir = std::env::temp_dir().join(format!("tidegate-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[gateway]\nfoo = 1\n[[routes]]\nname = 1\n").unwrap();
    let keys = dir.join("keys.json");
    std::fs::write(&keys, r#"[{"id": "a", "consumer": "c", "sha256": "00"}]"#).unwrap();
    let o = tidegate(
        &[
            "check".into(),
            bad.display().to_string(),
            "--api-keys".into(),
            keys.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("gateway.foo")
            && err.contains("routes[0].name")
            && err.contains("keys[0].sha256"),
        "{err}"
    );
    assert!(err.contains("3 problem(s) found"), "{err}");
    let o = tidegate(
        &[
            "-o".into(),
            "json".into(),
            "check".into(),
            bad.display().to_string(),
        ],
        &[],
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"][0]["path"], "gateway.foo");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/gateway.toml");
    let o = tidegate(&["check".into(), example.into()], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains(": ok ("));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dashboard_signs_through_a_local_proxy() {
    let f = Fake::start();
    // Not signed: the URL as it is.
    let o = tidegate(
        &[
            "--url".into(),
            f.url(),
            "--sign".into(),
            "never".into(),
            "dashboard".into(),
        ],
        &[],
    );
    assert_eq!(code(&o), 0);
    assert_eq!(stdout(&o).trim(), format!("{}/", f.url()));

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tidegate"))
        .args([
            "--url",
            &f.url(),
            "--sign",
            "always",
            "dashboard",
            "--no-open",
        ])
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let local = line
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    assert!(local.starts_with("127.0.0.1:"), "{line}");
    let get = |host: &str| {
        let mut s = std::net::TcpStream::connect(&local).unwrap();
        write!(s, "GET /stages HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAuthorization: Bearer dropped\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let answer = get(&local);
    let rebound = get("evil.example:80");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("orders-api"), "{answer}");
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    let seen: Vec<_> = f
        .seen()
        .into_iter()
        .filter(|s| s.path == "/stages")
        .collect();
    assert_eq!(seen.len(), 1, "the rebound request never reached the API");
    let auth = seen[0].header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
            && auth.contains("/us-east-1/lambda/"),
        "{auth}"
    );
}

/// `cmdline` under `script`, which gives it a terminal; `None` without util-linux's `script`.
fn on_a_terminal(cmdline: &str, stdin: &str) -> Option<(i32, String)> {
    let mut child = std::process::Command::new("script")
        .args(["-qec", cmdline, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TERM", "dumb")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

#[test]
fn on_a_terminal_watch_redraws_and_a_missing_reason_is_asked_for() {
    let f = Fake::start();
    f.with(|s| {
        s.stage = [
            stage("d2", Some(("d3", 5.0)), Some(0)),
            stage("d3", None, None),
        ]
        .into()
    });
    let bin = env!("CARGO_BIN_EXE_tidegate");
    let base = format!("{bin} --url {} --api-key {}", f.url(), fake::KEY);
    let Some((rc, out)) = on_a_terminal(
        &format!("{base} rollout watch orders-api/prod --interval 0.1"),
        "",
    ) else {
        eprintln!("skipped: no `script` to give the CLI a terminal");
        return;
    };
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("\x1b[H\x1b[2J"), "redraws: {out:?}");
    assert!(out.contains("Watching orders-api/prod"), "{out}");
    assert!(
        out.contains("Status:      Progressing") && out.contains("promoted d3"),
        "{out}"
    );

    let (rc, out) = on_a_terminal(
        &format!("{base} rollout promote orders-api/prod"),
        "ship it\n",
    )
    .unwrap();
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("Reason (recorded in the stage's history): "),
        "{out}"
    );
    let last = f.seen().pop().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&last.body).unwrap(),
        json!({"reason": "ship it"})
    );
}
