//! The `tidegate` command line: checks configs, issues API keys, and shows
//! and steers rollouts through the rollback Lambda's control API (API key,
//! JWT, or SigV4 for AWS_IAM Function URLs). See docs/cli.md.
//!
//! ```
//! use clap::Parser;
//! let cli = tidegate_cli::Cli::try_parse_from(["tidegate", "rollout", "promote", "a/prod", "--reason", "ok"]).unwrap();
//! assert_eq!(cli.global.output, tidegate_cli::Output::Table);
//! ```

mod args;
mod control;
mod error;
mod http;
mod keys;
mod proxy;
mod render;
mod run;
mod view;
mod watch;

#[cfg(test)]
mod tests;

pub use args::{
    Cli, Command, EdgeArgs, GlobalArgs, KeysCommand, Output, Reason, RolloutCommand, Sign, Target,
};
pub use control::{parse_answer, parse_target, stage_path, ApiClient, Credentials};
pub use error::{CliError, Exit};
pub use http::{region_from_host, request, Answer, Http, Signer, MAX_ANSWER};
pub use keys::{expiry_members, LocalKey};
pub use proxy::{dashboard, rewrite_location};
pub use render::{
    format_time, history_table, key_table, phase, stage_detail, stage_table, steps_line, table,
    watch_line,
};
pub use run::{reason, resolve_target, run};
pub use view::{
    parse_step, AuditView, CommandBody, CommandReport, DecisionView, HistoryPage, HistoryView,
    IssueBody, IssuedKeyView, KeyListView, OutcomeView, RevokedKeyView, RotateBody, StageList,
    StageView, StartBody, TriggerView,
};
pub use watch::{watch, WatchEnd, WatchTracker};
