//! The command line, as clap derives it.
//!
//! ```
//! use clap::Parser;
//! use tidegate_cli::{Cli, Command};
//! let cli = Cli::try_parse_from(["tidegate", "status", "orders-api/prod"]).unwrap();
//! assert!(matches!(cli.command, Command::Status { .. }));
//! ```

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  the API reported a failure (5xx, a command that did not take effect, a watched
     rollout rolled back), or `check` found problems
  2  usage: bad arguments, or the API refused the request as invalid (400, 422)
  3  auth: no credentials, or the API refused them (401, 403)
  4  not found: no such stage, key or path (404)
  5  conflict: the state does not allow it (409, e.g. nothing waits for approval)
  6  unreachable: DNS, connection, TLS or timeout

Docs: docs/cli.md";

/// See and steer Tidegate: check configs, issue API keys, and drive rollouts
/// through the rollback Lambda's control API.
#[derive(Debug, Parser)]
#[command(name = "tidegate", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Connection and output options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach and authenticate to the control API, and how to print.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The control API (the rollback Lambda's Function URL).
    #[arg(long, env = "TIDEGATE_URL", global = true)]
    pub url: Option<String>,
    /// An API key with the scope tidegate:admin (sent as x-api-key).
    #[arg(long, env = "TIDEGATE_API_KEY", global = true, hide_env_values = true)]
    pub api_key: Option<String>,
    /// The header the API key goes in (the config's [api_keys] header).
    #[arg(long, default_value = "x-api-key", global = true)]
    pub api_key_header: String,
    /// A JWT with the scope tidegate:admin (sent as Authorization: Bearer).
    #[arg(long, env = "TIDEGATE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// SigV4-sign requests with the AWS credential chain: auto signs for
    /// *.lambda-url.<region>.on.aws hosts and when no key or token is given.
    #[arg(long, env = "TIDEGATE_SIGN", value_enum, default_value_t = Sign::Auto, global = true)]
    pub sign: Sign,
    /// The AWS region to sign for (default: from the URL host, else the chain).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 30, global = true)]
    pub timeout: u64,
}

/// When to SigV4-sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sign {
    /// Lambda Function URL hosts, or when no key or token is given.
    Auto,
    /// Every request.
    Always,
    /// Never (NONE Function URLs, API Gateway, local runs).
    Never,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human tables.
    Table,
    /// The API's JSON (or the command's typed result), for scripts.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a gateway config (TOML or JSON) and print every problem with its path.
    Check {
        /// The config file.
        config: PathBuf,
        /// Also check an API_KEYS file (a JSON array of key records).
        #[arg(long)]
        api_keys: Option<PathBuf>,
    },
    /// Issue, rotate, revoke and list API keys.
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Managed stages: deployment, canary and steps, alarms, pause, recent actions.
    Status {
        /// One stage, as API/STAGE (default: every managed stage).
        target: Option<String>,
    },
    /// Start, steer and watch a canary rollout.
    Rollout {
        /// What to do.
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Open the dashboard; for an AWS_IAM Function URL through a local SigV4 signing proxy.
    Dashboard {
        /// Local port of the proxy (default: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Print the URL only; do not open a browser.
        #[arg(long)]
        no_open: bool,
    },
}

/// Where the edge's key admin API is.
#[derive(Debug, Clone, Args)]
pub struct EdgeArgs {
    /// The edge's base URL; with it, keys are stored through its key admin API (KV store).
    #[arg(long, env = "TIDEGATE_EDGE_URL")]
    pub edge: Option<String>,
    /// The edge's ADMIN_KEY.
    #[arg(long, env = "TIDEGATE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// The config's gateway.admin_prefix.
    #[arg(long, default_value = "/__tidegate/")]
    pub admin_prefix: String,
}

/// `tidegate keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// A new key: printed once with its API_KEYS record, or stored through the edge (--edge).
    New {
        /// Who owns it.
        #[arg(long)]
        consumer: String,
        /// Scopes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// The plan ([tiers.NAME]).
        #[arg(long)]
        tier: Option<String>,
        /// When it stops working: an RFC 3339 time or a duration such as 90d.
        #[arg(long)]
        expires: Option<String>,
        /// The edge's key admin API.
        #[command(flatten)]
        edge: EdgeArgs,
    },
    /// A new key for the same grant; the old one ends after the overlap (--edge).
    Rotate {
        /// The key's id (key_…).
        id: String,
        /// How long the old key keeps working (default: the edge's rotation_overlap).
        #[arg(long)]
        overlap: Option<String>,
        /// When the new key stops working: an RFC 3339 time or a duration.
        #[arg(long)]
        expires: Option<String>,
        /// The edge's key admin API.
        #[command(flatten)]
        edge: EdgeArgs,
    },
    /// Revoke a key (--edge).
    Revoke {
        /// The key's id (key_…).
        id: String,
        /// The edge's key admin API.
        #[command(flatten)]
        edge: EdgeArgs,
    },
    /// A consumer's keys (--edge).
    List {
        /// Whose keys.
        #[arg(long)]
        consumer: String,
        /// Keys per page (1 to 1000).
        #[arg(long)]
        limit: Option<u32>,
        /// The cursor a previous page printed.
        #[arg(long)]
        cursor: Option<String>,
        /// The edge's key admin API.
        #[command(flatten)]
        edge: EdgeArgs,
    },
}

/// The stage a rollout command acts on, and the operator's reason.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// API/STAGE (default: the only managed stage).
    pub target: Option<String>,
}

/// The reason a mutating command records in the history.
#[derive(Debug, Clone, Args)]
pub struct Reason {
    /// Why (recorded with your identity in the stage's history); prompted for on a TTY.
    #[arg(long, short = 'r')]
    pub reason: Option<String>,
}

/// `tidegate rollout …`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start a canary of a deployment at its first step.
    Start {
        /// Which stage.
        #[command(flatten)]
        target: Target,
        /// The deployment id to roll out.
        #[arg(long)]
        deployment: String,
        /// Steps, comma-separated: percentages, PERCENT:approve for a gate, e.g.
        /// 5,25,50:approve,100 (default: the stage's canary_steps).
        #[arg(long, value_delimiter = ',', value_parser = crate::parse_step)]
        steps: Vec<tidegate_policy::config::CanaryStepEntry>,
        /// Why.
        #[command(flatten)]
        reason: Reason,
    },
    /// Send all traffic to the canary now.
    Promote {
        /// Which stage.
        #[command(flatten)]
        target: Target,
        /// Why.
        #[command(flatten)]
        reason: Reason,
    },
    /// Remove the canary, or roll the stage back to its last-known-good deployment.
    Rollback {
        /// Which stage.
        #[command(flatten)]
        target: Target,
        /// Why.
        #[command(flatten)]
        reason: Reason,
    },
    /// Hold the rollout where it is.
    Pause {
        /// Which stage.
        #[command(flatten)]
        target: Target,
        /// End the pause by itself after this long (e.g. 2h).
        #[arg(long = "for")]
        duration: Option<String>,
        /// Why.
        #[command(flatten)]
        reason: Reason,
    },
    /// End a pause.
    Resume {
        /// Which stage.
        #[command(flatten)]
        target: Target,
        /// Why.
        #[command(flatten)]
        reason: Reason,
    },
    /// Move the canary one planned step now.
    Advance {
        /// Which stage.
        #[command(flatten)]
        target: Target,
        /// Why.
        #[command(flatten)]
        reason: Reason,
    },
    /// Pass the approval gate the canary waits at.
    Approve {
        /// Which stage.
        #[command(flatten)]
        target: Target,
        /// Why.
        #[command(flatten)]
        reason: Reason,
    },
    /// The stage's action history, newest first.
    History {
        /// Which stage.
        #[command(flatten)]
        target: Target,
        /// How many entries.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Live progress until the canary is promoted or rolled back.
    Watch {
        /// Which stage.
        #[command(flatten)]
        target: Target,
        /// Seconds between reads.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Give up after this many seconds (default: never).
        #[arg(long)]
        max_wait: Option<f64>,
    },
}
