//! `rollout watch`: reads the stage every interval until its canary is
//! promoted or rolled back. On a TTY it redraws the compact view; otherwise
//! it prints one line per change (`--output json`: one JSON object per
//! change).
//!
//! ```
//! use tidegate_cli::{WatchEnd, WatchTracker};
//! let mut t = WatchTracker::default();
//! assert_eq!(t.observe(Some("d2"), Some("d1")), None);
//! assert_eq!(t.observe(None, Some("d2")), Some(WatchEnd::Promoted("d2".into())));
//! ```

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{
    parse_answer, stage_detail, stage_path, watch_line, ApiClient, CliError, Exit, Output,
    StageView,
};

/// How a watch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEnd {
    /// The canary's deployment now serves the stage.
    Promoted(String),
    /// The canary is gone and the stage serves another deployment.
    RolledBack {
        /// The canary that was removed.
        canary: String,
        /// What the stage serves.
        serving: String,
    },
    /// No canary was active when the watch began.
    NoCanary,
}

/// What the watch has seen so far.
#[derive(Debug, Clone, Default)]
pub struct WatchTracker {
    canary: Option<String>,
    reads: u64,
}

impl WatchTracker {
    /// Takes one read (the active canary's deployment, the stage's
    /// deployment); `Some` when the watch is over.
    pub fn observe(&mut self, canary: Option<&str>, serving: Option<&str>) -> Option<WatchEnd> {
        self.reads += 1;
        match (canary, &self.canary) {
            (Some(c), _) => {
                self.canary = Some(c.to_owned());
                None
            }
            (None, None) if self.reads == 1 => Some(WatchEnd::NoCanary),
            (None, None) => None,
            (None, Some(c)) if serving == Some(c.as_str()) => Some(WatchEnd::Promoted(c.clone())),
            (None, Some(c)) => Some(WatchEnd::RolledBack {
                canary: c.clone(),
                serving: serving.unwrap_or("-").to_owned(),
            }),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Watches `api`/`stage`.
pub async fn watch(
    client: &ApiClient,
    api: &str,
    stage: &str,
    interval: f64,
    max_wait: Option<f64>,
    output: Output,
) -> Result<(), CliError> {
    let path = stage_path(api, stage);
    let interval = Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
    let deadline = max_wait.map(|s| Instant::now() + Duration::from_secs_f64(s.clamp(0.0, 1e9)));
    let tty = output == Output::Table && std::io::stdout().is_terminal();
    let mut tracker = WatchTracker::default();
    let mut last = String::new();
    loop {
        let body = match client.get(&path).await {
            Ok(b) => Some(b),
            // A blip (network, 5xx) is reported and retried; anything else ends the watch.
            Err(e) if matches!(e.exit(), Exit::Unreachable | Exit::Failed) => {
                eprintln!("warning: {e}; retrying");
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(body) = body {
            let view: StageView = parse_answer(&path, &body)?;
            let line = watch_line(&view, 0);
            let changed = line != last;
            if tty {
                print!(
                    "\x1b[H\x1b[2J{}\nWatching {} every {:?} (Ctrl-C to stop)\n",
                    stage_detail(&view, 5),
                    view.name(),
                    interval
                );
            } else if changed {
                match output {
                    Output::Json => {
                        let compact: serde_json::Value = parse_answer(&path, &body)?;
                        println!("{compact}");
                    }
                    Output::Table => println!("{}", watch_line(&view, now_ms())),
                }
            }
            let _ = std::io::stdout().flush();
            last = line;
            let canary = view.active_canary().map(|c| c.deployment_id.clone());
            match tracker.observe(canary.as_deref(), view.deployment_id.as_deref()) {
                None => {}
                Some(WatchEnd::Promoted(d)) => {
                    eprintln!("{}: promoted {d}", view.name());
                    return Ok(());
                }
                Some(WatchEnd::NoCanary) => {
                    eprintln!("{}: no canary is active", view.name());
                    return Ok(());
                }
                Some(WatchEnd::RolledBack { canary, serving }) => {
                    return Err(CliError::RolledBack(format!(
                        "{}: canary {canary} removed, serving {serving}",
                        view.name()
                    )));
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() + interval > d) {
            return Err(CliError::NotApplied(format!(
                "{api}/{stage}: still in progress after --max-wait"
            )));
        }
        tokio::time::sleep(interval).await;
    }
}
