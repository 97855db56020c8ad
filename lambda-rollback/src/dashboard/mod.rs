//! The dashboard: the control API's HTML pages for people. `GET /` lists
//! the managed stages, `GET /ui/{api}/{stage}` shows one: deployments, the
//! canary's planned steps as a progress bar, the edge's live figures per
//! release ("Live at the edge", from `[rollback.edge] health_url`), a chart
//! of requests and 5xx error rate with every action marked, alarms,
//! history, and the operator
//! commands as forms (each behind a `<details>` confirmation, with a
//! required reason).
//!
//! Server-rendered, no external assets, readable without JavaScript; a few
//! lines of inline script reload the page every [`REFRESH_SECS`] unless a
//! form is open. Every piece of user data (stage and alarm names, reasons,
//! identities) goes through [`escape`].
//!
//! ```
//! use tidegate_rollback::dashboard::{escape, render_list, PageContext};
//! use tidegate_rollback::status::{StageStatus, StatusList};
//! let list = StatusList { stages: vec![StageStatus::new("a<b>", "prod", false)] };
//! let html = render_list(&list, &PageContext::new(0));
//! assert!(html.contains("a&lt;b&gt;") && !html.contains("a<b>"));
//! assert_eq!(escape("\"&'"), "&quot;&amp;&#39;");
//! ```

mod chart;
mod edge;
mod layout;
mod stage;
mod text;

pub use chart::{render_chart, ChartLine};
pub use layout::{page, PageContext, REFRESH_SECS};
pub use stage::{render_list, render_signin, render_stage, PlannedStep, Progress, StageDetail};
pub use text::{escape, format_time, path_segment, percent};

#[cfg(test)]
mod tests;
