//! Runs a parsed command line: `check`, `status`, `rollout …`; `keys` and
//! `dashboard` live in their own modules.
//!
//! ```
//! use tidegate_cli::{reason, Reason};
//! assert_eq!(reason(&Reason { reason: Some(" canary 5xx ".into()) }).unwrap(), "canary 5xx");
//! ```

use std::io::{BufRead, IsTerminal, Write};

use bytes::Bytes;
use tidegate_policy::auth::ApiKeyStore;

use crate::{
    dashboard, history_table, keys, parse_answer, parse_target, stage_detail, stage_path,
    stage_table, watch, ApiClient, Cli, CliError, Command, CommandBody, CommandReport, HistoryPage,
    Output, Reason, RolloutCommand, StageList, StageView, StartBody,
};

/// Runs `cli`.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let global = cli.global;
    match cli.command {
        Command::Check { config, api_keys } => check(&config, api_keys.as_deref(), global.output),
        Command::Keys { command } => keys::run(command, &global).await,
        Command::Status { target } => {
            let client = ApiClient::control(&global).await?;
            status(&client, target.as_deref(), global.output).await
        }
        Command::Rollout { command } => {
            let client = ApiClient::control(&global).await?;
            rollout(&client, command, global.output).await
        }
        Command::Dashboard { port, no_open } => dashboard(&global, port, no_open).await,
    }
}

/// Prints a 2xx JSON body as it came.
pub fn print_raw(body: &Bytes) {
    let text = String::from_utf8_lossy(body);
    println!("{}", text.trim_end());
}

/// One problem `check` found.
#[derive(Debug, serde::Serialize)]
struct CheckProblem {
    file: String,
    path: String,
    message: String,
}

/// `check --output json`.
#[derive(Debug, serde::Serialize)]
struct CheckReport {
    valid: bool,
    problems: Vec<CheckProblem>,
}

fn check(
    config: &std::path::Path,
    api_keys: Option<&std::path::Path>,
    output: Output,
) -> Result<(), CliError> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| CliError::Io {
            path: p.display().to_string(),
            error: e.to_string(),
        })
    };
    let mut problems = Vec::new();
    let file = config.display().to_string();
    let mut summary = String::new();
    match tidegate_policy::config::parse(&read(config)?) {
        Ok(c) => {
            summary = format!(
                "{file}: ok ({} routes, {} issuers, {} managed stages)",
                c.routes.len(),
                c.issuers.len(),
                c.rollback.as_ref().map_or(0, |r| r.stages.len())
            );
        }
        Err(errors) => problems.extend(errors.iter().map(|e| CheckProblem {
            file: file.clone(),
            path: e.path.clone(),
            message: e.kind.to_string(),
        })),
    }
    if let Some(keys) = api_keys {
        if let Err(errors) = ApiKeyStore::from_json(&read(keys)?) {
            let file = keys.display().to_string();
            problems.extend(errors.into_iter().map(|e| CheckProblem {
                file: file.clone(),
                path: e.path,
                message: e.problem.to_string(),
            }));
        }
    }
    let count = problems.len();
    match output {
        Output::Json => {
            let report = CheckReport {
                valid: count == 0,
                problems,
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
        }
        Output::Table => {
            for p in &problems {
                if p.path.is_empty() {
                    eprintln!("{}: {}", p.file, p.message);
                } else {
                    eprintln!("{}: {}: {}", p.file, p.path, p.message);
                }
            }
            if count == 0 {
                println!("{summary}");
                if api_keys.is_some() {
                    println!("API_KEYS: ok");
                }
            }
        }
    }
    if count == 0 {
        Ok(())
    } else {
        Err(CliError::Invalid(count))
    }
}

async fn status(client: &ApiClient, target: Option<&str>, output: Output) -> Result<(), CliError> {
    match target {
        Some(t) => {
            let (api, stage) = parse_target(t)?;
            let path = stage_path(&api, &stage);
            let body = client.get(&path).await?;
            if output == Output::Json {
                print_raw(&body);
            } else {
                let view: StageView = parse_answer(&path, &body)?;
                print!("{}", stage_detail(&view, 5));
            }
        }
        None => {
            let body = client.get("/stages").await?;
            if output == Output::Json {
                print_raw(&body);
            } else {
                let list: StageList = parse_answer("/stages", &body)?;
                if list.stages.is_empty() {
                    println!("no managed stages: add [[rollback.stages]] to the config");
                } else {
                    print!("{}", stage_table(&list.stages));
                }
            }
        }
    }
    Ok(())
}

/// The stage `target` names, or the only managed one.
pub async fn resolve_target(
    client: &ApiClient,
    target: Option<&str>,
) -> Result<(String, String), CliError> {
    if let Some(t) = target {
        return parse_target(t);
    }
    let body = client.get("/stages").await?;
    let list: StageList = parse_answer("/stages", &body)?;
    match list.stages.as_slice() {
        [only] => Ok((only.api.clone(), only.stage.clone())),
        [] => Err(CliError::Usage(
            "no managed stages: add [[rollback.stages]] to the config".into(),
        )),
        many => Err(CliError::Usage(format!(
            "several managed stages: name one of {}",
            many.iter()
                .map(StageView::name)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The reason given, or one read from the terminal.
pub fn reason(r: &Reason) -> Result<String, CliError> {
    if let Some(text) = r.reason.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(text.to_owned());
    }
    let required = || {
        CliError::Usage(
            "--reason is required: it is recorded with your identity in the stage's history".into(),
        )
    };
    if !std::io::stdin().is_terminal() {
        return Err(required());
    }
    eprint!("Reason (recorded in the stage's history): ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|_| required())?;
    let line = line.trim();
    if line.is_empty() {
        Err(required())
    } else {
        Ok(line.to_owned())
    }
}

async fn rollout(
    client: &ApiClient,
    command: RolloutCommand,
    output: Output,
) -> Result<(), CliError> {
    let (name, target, body): (&str, _, Result<Vec<u8>, CliError>) = match command {
        RolloutCommand::History { target, limit } => {
            let (api, stage) = resolve_target(client, target.target.as_deref()).await?;
            let path = format!("{}/history?limit={limit}", stage_path(&api, &stage));
            let body = client.get(&path).await?;
            if output == Output::Json {
                print_raw(&body);
            } else {
                let page: HistoryPage = parse_answer(&path, &body)?;
                if page.entries.is_empty() {
                    println!("no actions recorded for {api}/{stage}");
                } else {
                    print!("{}", history_table(&page.entries));
                }
            }
            return Ok(());
        }
        RolloutCommand::Watch {
            target,
            interval,
            max_wait,
        } => {
            let (api, stage) = resolve_target(client, target.target.as_deref()).await?;
            return watch(client, &api, &stage, interval, max_wait, output).await;
        }
        RolloutCommand::Start {
            target,
            deployment,
            steps,
            reason: r,
        } => {
            let body = StartBody {
                deployment,
                steps: (!steps.is_empty()).then_some(steps),
                reason: reason(&r)?,
            };
            ("start", target, to_json(&body))
        }
        RolloutCommand::Pause {
            target,
            duration,
            reason: r,
        } => ("pause", target, command_body(&r, duration)),
        RolloutCommand::Promote { target, reason: r } => {
            ("promote", target, command_body(&r, None))
        }
        RolloutCommand::Rollback { target, reason: r } => {
            ("rollback", target, command_body(&r, None))
        }
        RolloutCommand::Resume { target, reason: r } => ("resume", target, command_body(&r, None)),
        RolloutCommand::Advance { target, reason: r } => {
            ("advance", target, command_body(&r, None))
        }
        RolloutCommand::Approve { target, reason: r } => {
            ("approve", target, command_body(&r, None))
        }
    };
    let body = body?;
    let (api, stage) = resolve_target(client, target.target.as_deref()).await?;
    let path = format!("{}/{name}", stage_path(&api, &stage));
    let answer = client.post_raw(&path, Bytes::from(body)).await?;
    let report: CommandReport = parse_answer(&path, &answer)?;
    if output == Output::Json {
        print_raw(&answer);
    } else {
        let summary = report
            .decision
            .as_ref()
            .and_then(|d| d.audit.as_ref())
            .map(|a| a.summary.as_str())
            .filter(|s| !s.is_empty());
        match summary {
            Some(s) => println!("{api}/{stage}: {name}: {} — {s}", report.outcome.describe()),
            None => println!("{api}/{stage}: {name}: {}", report.outcome.describe()),
        }
    }
    if report.outcome.succeeded() {
        Ok(())
    } else {
        Err(CliError::NotApplied(format!(
            "{name} on {api}/{stage} did not take effect: {}",
            report.outcome.describe()
        )))
    }
}

fn to_json(body: &impl serde::Serialize) -> Result<Vec<u8>, CliError> {
    serde_json::to_vec(body).map_err(|e| CliError::Usage(e.to_string()))
}

fn command_body(r: &Reason, duration: Option<String>) -> Result<Vec<u8>, CliError> {
    to_json(&CommandBody {
        reason: reason(r)?,
        duration,
    })
}
