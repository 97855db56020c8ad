//! The exact `UpdateStage` requests a decision turns into, and what the stage
//! must still look like before each is sent.
//!
//! API Gateway has no conditional update, so the adapter re-reads the stage
//! (`GetStage`) right before each [`PatchStep`] and sends it only if
//! [`Expectation::check`] passes; on a mismatch it stops, re-reads and asks
//! for a new decision (the old one was based on a stage that no longer
//! exists). The expectation includes the `tidegate_*` bookkeeping, which
//! every action rewrites in the same request, so of two invocations racing
//! on one stage the second sees the first's write and backs off. The window
//! left is the few milliseconds between the re-read and the patch.
//!
//! Two-step plans, each step one atomic request:
//! - **Promote** (AWS's definition): `percentTraffic := 0`, copy the
//!   canary's stage-variable overrides to the stage, copy the canary's
//!   deployment id to the stage; then `remove /canarySettings` (promote does
//!   not remove them).
//! - **Remove canary**: `percentTraffic := 0` (traffic stops, with the
//!   bookkeeping), then `remove /canarySettings`.
//! - **Roll back over leftover canary settings**: `remove /canarySettings`,
//!   then `replace /deploymentId` (a stage with canary settings cannot move
//!   to another deployment).
//!
//! If a second step fails, the stage is left with inert canary settings
//! (0 %, or the stage's own deployment), which the next decision cleans up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::bookkeeping::{self, Bookkeeping};
use super::state::StageSnapshot;

/// A JSON-Patch-style operation, as `UpdateStage`'s `patchOperations` take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchOp {
    /// The operation.
    pub op: PatchOpKind,
    /// Target path, e.g. `/deploymentId`.
    pub path: String,
    /// New value, for `replace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Source path, for `copy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// The operations the plans use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOpKind {
    /// Set a value (creates a stage variable if absent).
    Replace,
    /// Delete a value.
    Remove,
    /// Copy `from` to `path`.
    Copy,
}

impl PatchOp {
    /// `replace path value`.
    pub fn replace(path: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            op: PatchOpKind::Replace,
            path: path.into(),
            value: Some(value.into()),
            from: None,
        }
    }

    /// `remove path`.
    pub fn remove(path: impl Into<String>) -> Self {
        Self {
            op: PatchOpKind::Remove,
            path: path.into(),
            value: None,
            from: None,
        }
    }

    /// `copy from → path`.
    pub fn copy(from: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            op: PatchOpKind::Copy,
            path: path.into(),
            value: None,
            from: Some(from.into()),
        }
    }
}

/// One `UpdateStage` request and its precondition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchStep {
    /// What the stage must look like just before sending.
    pub expect: Expectation,
    /// The operations, in order.
    pub ops: Vec<PatchOp>,
}

/// The parts of a stage a decision relied on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// The stage's deployment.
    pub deployment_id: String,
    /// Its canary settings, if any.
    pub canary: Option<ExpectedCanary>,
    /// Every `tidegate_*` variable, as read.
    pub bookkeeping: BTreeMap<String, String>,
}

/// Expected canary settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedCanary {
    /// The canary's deployment.
    pub deployment_id: String,
    /// Its traffic share.
    pub percent_traffic: f64,
}

/// How a re-read stage differs from what the decision relied on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Drift {
    /// The stage serves another deployment.
    #[error("stage deployment is {found}, expected {expected}")]
    Deployment {
        /// Expected.
        expected: String,
        /// Found.
        found: String,
    },
    /// The canary settings changed (appeared, vanished, or moved).
    #[error("canary is {found}, expected {expected}")]
    Canary {
        /// Expected, described.
        expected: String,
        /// Found, described.
        found: String,
    },
    /// Another invocation updated the bookkeeping.
    #[error("tidegate bookkeeping changed since it was read")]
    Bookkeeping,
}

/// The `tidegate_*` variables of a variable map.
pub fn bookkeeping_variables(variables: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    variables
        .iter()
        .filter(|(k, _)| k.starts_with(bookkeeping::PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Expectation {
    /// What `snapshot` shows.
    pub fn of(snapshot: &StageSnapshot) -> Self {
        Self {
            deployment_id: snapshot.deployment_id.clone(),
            canary: snapshot.canary.as_ref().map(|c| ExpectedCanary {
                deployment_id: c.deployment_id.clone(),
                percent_traffic: c.percent_traffic,
            }),
            bookkeeping: bookkeeping_variables(&snapshot.variables),
        }
    }

    /// `Ok` if a fresh read of the stage still matches.
    pub fn check(&self, snapshot: &StageSnapshot) -> Result<(), Drift> {
        if snapshot.deployment_id != self.deployment_id {
            return Err(Drift::Deployment {
                expected: self.deployment_id.clone(),
                found: snapshot.deployment_id.clone(),
            });
        }
        let found = Self::of(snapshot);
        if found.canary != self.canary {
            return Err(Drift::Canary {
                expected: describe(self.canary.as_ref()),
                found: describe(found.canary.as_ref()),
            });
        }
        if found.bookkeeping != self.bookkeeping {
            return Err(Drift::Bookkeeping);
        }
        Ok(())
    }
}

fn describe(c: Option<&ExpectedCanary>) -> String {
    match c {
        Some(c) => format!("{} at {}%", c.deployment_id, c.percent_traffic),
        None => "absent".into(),
    }
}

/// `percentTraffic` as a patch value: `5.0`, `12.5`.
pub fn percent_value(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.1}")
    } else {
        format!("{p}")
    }
}

/// Operations that turn the bookkeeping variables `old` into `new`: replace
/// what changed, remove what this version writes and `new` no longer has.
/// Unknown `tidegate_*` variables are left alone.
pub fn bookkeeping_ops(old: &BTreeMap<String, String>, new: &Bookkeeping) -> Vec<PatchOp> {
    let encoded = new.encode();
    let mut ops: Vec<PatchOp> = encoded
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| PatchOp::replace(format!("/variables/{k}"), v.clone()))
        .collect();
    ops.extend(
        bookkeeping::VARIABLES
            .iter()
            .filter(|k| old.contains_key(**k) && !encoded.contains_key(**k))
            .map(|k| PatchOp::remove(format!("/variables/{k}"))),
    );
    ops
}

const PERCENT: &str = "/canarySettings/percentTraffic";
const CANARY: &str = "/canarySettings";

/// The requests that carry out `action` on the stage read as `snapshot`,
/// writing `book` with the first of them. Empty when nothing changes.
pub fn plan(action: &Action, snapshot: &StageSnapshot, book: &Bookkeeping) -> Vec<PatchStep> {
    let start = Expectation::of(snapshot);
    let book_ops = bookkeeping_ops(&start.bookkeeping, book);
    let with_book = |mut ops: Vec<PatchOp>| {
        ops.extend(book_ops.iter().cloned());
        ops
    };
    // After the first step: same stage, canary as given, new bookkeeping.
    let after = |deployment_id: &str, canary: Option<ExpectedCanary>| Expectation {
        deployment_id: deployment_id.to_owned(),
        canary,
        bookkeeping: book.encode(),
    };
    match action {
        Action::RemoveCanary { deployment_id, .. } => {
            let at_zero = snapshot
                .canary
                .as_ref()
                .is_some_and(|c| c.percent_traffic == 0.0);
            if at_zero {
                vec![PatchStep {
                    ops: with_book(vec![PatchOp::remove(CANARY)]),
                    expect: start,
                }]
            } else {
                let second = after(
                    &snapshot.deployment_id,
                    Some(ExpectedCanary {
                        deployment_id: deployment_id.clone(),
                        percent_traffic: 0.0,
                    }),
                );
                vec![
                    PatchStep {
                        ops: with_book(vec![PatchOp::replace(PERCENT, percent_value(0.0))]),
                        expect: start,
                    },
                    PatchStep {
                        ops: vec![PatchOp::remove(CANARY)],
                        expect: second,
                    },
                ]
            }
        }
        Action::RollbackStage {
            to_deployment,
            clears_leftover_canary,
            ..
        } => {
            let roll = with_book(vec![PatchOp::replace(
                "/deploymentId",
                to_deployment.clone(),
            )]);
            if *clears_leftover_canary {
                let second = Expectation {
                    canary: None,
                    ..start.clone()
                };
                vec![
                    PatchStep {
                        ops: vec![PatchOp::remove(CANARY)],
                        expect: start,
                    },
                    PatchStep {
                        ops: roll,
                        expect: second,
                    },
                ]
            } else {
                vec![PatchStep {
                    ops: roll,
                    expect: start,
                }]
            }
        }
        Action::SetCanaryPercent { to, .. } => vec![PatchStep {
            ops: with_book(vec![PatchOp::replace(PERCENT, percent_value(*to))]),
            expect: start,
        }],
        Action::PromoteCanary { deployment, .. } => {
            let mut ops = vec![PatchOp::replace(PERCENT, percent_value(0.0))];
            let has_overrides = snapshot
                .canary
                .as_ref()
                .is_some_and(|c| !c.stage_variable_overrides.is_empty());
            if has_overrides {
                ops.push(PatchOp::copy(
                    "/canarySettings/stageVariableOverrides",
                    "/variables",
                ));
            }
            ops.push(PatchOp::copy(
                "/canarySettings/deploymentId",
                "/deploymentId",
            ));
            let second = after(
                deployment,
                Some(ExpectedCanary {
                    deployment_id: deployment.clone(),
                    percent_traffic: 0.0,
                }),
            );
            vec![
                PatchStep {
                    ops: with_book(ops),
                    expect: start,
                },
                PatchStep {
                    ops: vec![PatchOp::remove(CANARY)],
                    expect: second,
                },
            ]
        }
        Action::RecordKnownGood { .. } | Action::None { .. } => {
            if book_ops.is_empty() {
                Vec::new()
            } else {
                vec![PatchStep {
                    ops: book_ops,
                    expect: start,
                }]
            }
        }
    }
}

/// Why [`simulate`] refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimulateError {
    /// `replace /deploymentId` while canary settings exist, which API Gateway
    /// refuses ("non canary deployment not supported on stage because Canary
    /// is enabled").
    #[error("cannot replace /deploymentId while canary settings exist")]
    CanaryEnabled,
    /// The operation needs canary settings and there are none.
    #[error("`{0}` needs canary settings, and the stage has none")]
    NoCanary(String),
    /// A value that does not parse.
    #[error("`{path}` = {value:?} is not a valid value")]
    BadValue {
        /// Path.
        path: String,
        /// Value.
        value: String,
    },
    /// An operation the plans never produce.
    #[error("unsupported operation {op:?} on `{path}`")]
    Unsupported {
        /// Operation.
        op: PatchOpKind,
        /// Path.
        path: String,
    },
}

/// What `ops` would make of `snapshot`, following API Gateway's rules for
/// the operations the plans use. For dry-run previews and tests.
pub fn simulate(snapshot: &StageSnapshot, ops: &[PatchOp]) -> Result<StageSnapshot, SimulateError> {
    let mut s = snapshot.clone();
    for op in ops {
        let path = op.path.as_str();
        let value = op.value.clone().unwrap_or_default();
        let bad = || SimulateError::BadValue {
            path: path.to_owned(),
            value: value.clone(),
        };
        match (op.op, path, op.from.as_deref()) {
            (PatchOpKind::Replace, "/deploymentId", _) => {
                if s.canary.is_some() {
                    return Err(SimulateError::CanaryEnabled);
                }
                if value.is_empty() {
                    return Err(bad());
                }
                s.deployment_id = value.clone();
            }
            (PatchOpKind::Replace, PERCENT, _) => {
                let p: f64 = value.parse().map_err(|_| bad())?;
                if !(p.is_finite() && (0.0..=100.0).contains(&p)) {
                    return Err(bad());
                }
                s.canary
                    .as_mut()
                    .ok_or_else(|| SimulateError::NoCanary(path.to_owned()))?
                    .percent_traffic = p;
            }
            (PatchOpKind::Remove, CANARY, _) => {
                s.canary
                    .take()
                    .ok_or_else(|| SimulateError::NoCanary(path.to_owned()))?;
            }
            (PatchOpKind::Copy, "/deploymentId", Some("/canarySettings/deploymentId")) => {
                let c = s
                    .canary
                    .as_ref()
                    .ok_or_else(|| SimulateError::NoCanary(path.to_owned()))?;
                s.deployment_id = c.deployment_id.clone();
            }
            (PatchOpKind::Copy, "/variables", Some("/canarySettings/stageVariableOverrides")) => {
                let c = s
                    .canary
                    .as_ref()
                    .ok_or_else(|| SimulateError::NoCanary(path.to_owned()))?;
                let overrides = c.stage_variable_overrides.clone();
                s.variables.extend(overrides);
            }
            (kind, p, _) if p.starts_with("/variables/") => {
                let name = p.trim_start_matches("/variables/").to_owned();
                match kind {
                    PatchOpKind::Replace if !value.is_empty() => {
                        s.variables.insert(name, value.clone());
                    }
                    PatchOpKind::Remove => {
                        s.variables.remove(&name);
                    }
                    _ => return Err(bad()),
                }
            }
            (op, _, _) => {
                return Err(SimulateError::Unsupported {
                    op,
                    path: path.to_owned(),
                })
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::action::{Hold, RemoveReason, RollbackReason};
    use crate::rollout::bookkeeping::Mark;
    use crate::rollout::state::CanarySnapshot;

    fn snap(canary: Option<(&str, f64)>) -> StageSnapshot {
        StageSnapshot {
            rest_api_id: "api".into(),
            rest_api_name: None,
            stage_name: "prod".into(),
            deployment_id: "d1".into(),
            canary: canary.map(|(d, p)| CanarySnapshot {
                deployment_id: d.into(),
                percent_traffic: p,
                stage_variable_overrides: [("color".to_owned(), "blue".to_owned())].into(),
            }),
            last_updated_ms: None,
            variables: [
                ("backend".to_owned(), "x".to_owned()),
                ("tidegate_last_action".to_owned(), "5".to_owned()),
                ("tidegate_paused".to_owned(), "1,x".to_owned()),
            ]
            .into(),
        }
    }

    #[test]
    fn expectation_detects_each_kind_of_drift() {
        let s = snap(Some(("d2", 10.0)));
        let e = Expectation::of(&s);
        assert_eq!(e.bookkeeping.len(), 2);
        assert_eq!(e.check(&s), Ok(()));
        let mut moved = s.clone();
        moved.deployment_id = "d9".into();
        assert!(matches!(e.check(&moved), Err(Drift::Deployment { .. })));
        let mut stepped = s.clone();
        if let Some(c) = stepped.canary.as_mut() {
            c.percent_traffic = 25.0;
        }
        let err = e.check(&stepped).unwrap_err();
        assert_eq!(err.to_string(), "canary is d2 at 25%, expected d2 at 10%");
        let mut gone = s.clone();
        gone.canary = None;
        assert!(matches!(e.check(&gone), Err(Drift::Canary { .. })));
        let mut raced = s.clone();
        raced
            .variables
            .insert("tidegate_last_action".into(), "6".into());
        assert_eq!(e.check(&raced), Err(Drift::Bookkeeping));
        // Other variables may change freely.
        let mut edited = s.clone();
        edited.variables.insert("backend".into(), "y".into());
        assert_eq!(e.check(&edited), Ok(()));
    }

    #[test]
    fn bookkeeping_ops_replace_changes_and_remove_dropped() {
        let old = bookkeeping_variables(&snap(None).variables);
        let new = Bookkeeping {
            last_action_ms: Some(5),
            known_good: Some(Mark::new("d1", 7)),
            ..Bookkeeping::default()
        };
        assert_eq!(
            bookkeeping_ops(&old, &new),
            vec![
                PatchOp::replace("/variables/tidegate_known_good", "d1,7"),
                PatchOp::remove("/variables/tidegate_paused"),
            ]
        );
    }

    #[test]
    fn promote_is_aws_promote_then_remove() {
        let s = snap(Some(("d2", 100.0)));
        let book = Bookkeeping {
            last_action_ms: Some(9),
            ..Bookkeeping::default()
        };
        let steps = plan(
            &Action::PromoteCanary {
                deployment: "d2".into(),
                from_deployment: "d1".into(),
            },
            &s,
            &book,
        );
        assert_eq!(steps.len(), 2);
        let ops = &steps[0].ops;
        assert_eq!(ops[0], PatchOp::replace(PERCENT, "0.0"));
        assert_eq!(
            ops[1],
            PatchOp::copy("/canarySettings/stageVariableOverrides", "/variables")
        );
        assert_eq!(
            ops[2],
            PatchOp::copy("/canarySettings/deploymentId", "/deploymentId")
        );
        assert_eq!(steps[0].expect, Expectation::of(&s));
        assert_eq!(steps[1].ops, vec![PatchOp::remove(CANARY)]);
        assert_eq!(steps[1].expect.deployment_id, "d2");
        assert_eq!(
            steps[1].expect.canary,
            Some(ExpectedCanary {
                deployment_id: "d2".into(),
                percent_traffic: 0.0
            })
        );
        let json = serde_json::to_value(&steps[0].ops[2]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"op": "copy", "path": "/deploymentId", "from": "/canarySettings/deploymentId"})
        );
    }

    #[test]
    fn remove_canary_stops_traffic_first() {
        let s = snap(Some(("d2", 25.0)));
        let action = Action::RemoveCanary {
            deployment_id: "d2".into(),
            percent: 25.0,
            reason: RemoveReason::Leftover,
        };
        let steps = plan(&action, &s, &Bookkeeping::default());
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].ops[0], PatchOp::replace(PERCENT, "0.0"));
        assert_eq!(steps[1].ops, vec![PatchOp::remove(CANARY)]);
        // Already at 0 %: one request.
        let s0 = snap(Some(("d2", 0.0)));
        let steps = plan(&action, &s0, &Bookkeeping::default());
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].ops[0], PatchOp::remove(CANARY));
    }

    #[test]
    fn rollback_over_leftover_canary_removes_it_first() {
        let s = snap(Some(("d1", 0.0)));
        let action = Action::RollbackStage {
            from_deployment: "d1".into(),
            to_deployment: "d0".into(),
            reason: RollbackReason::Manual { reason: "x".into() },
            clears_leftover_canary: true,
        };
        let steps = plan(&action, &s, &Bookkeeping::default());
        assert_eq!(steps[0].ops, vec![PatchOp::remove(CANARY)]);
        assert_eq!(steps[1].ops[0], PatchOp::replace("/deploymentId", "d0"));
        assert_eq!(steps[1].expect.canary, None);
        assert_eq!(steps[1].expect.bookkeeping, steps[0].expect.bookkeeping);
    }

    #[test]
    fn simulate_follows_api_gateway_rules() {
        let s = snap(Some(("d2", 10.0)));
        assert_eq!(
            simulate(&s, &[PatchOp::replace("/deploymentId", "d0")]),
            Err(SimulateError::CanaryEnabled)
        );
        let promoted = simulate(
            &s,
            &[
                PatchOp::replace(PERCENT, "0.0"),
                PatchOp::copy("/canarySettings/stageVariableOverrides", "/variables"),
                PatchOp::copy("/canarySettings/deploymentId", "/deploymentId"),
            ],
        )
        .unwrap();
        assert_eq!(promoted.deployment_id, "d2");
        assert_eq!(promoted.variables["color"], "blue");
        assert_eq!(promoted.canary.as_ref().unwrap().percent_traffic, 0.0);
        let removed = simulate(&promoted, &[PatchOp::remove(CANARY)]).unwrap();
        assert_eq!(removed.canary, None);
        assert_eq!(
            simulate(&removed, &[PatchOp::remove(CANARY)]),
            Err(SimulateError::NoCanary(CANARY.into()))
        );
        assert!(matches!(
            simulate(&s, &[PatchOp::replace(PERCENT, "120")]),
            Err(SimulateError::BadValue { .. })
        ));
        assert!(matches!(
            simulate(&s, &[PatchOp::remove("/description")]),
            Err(SimulateError::Unsupported { .. })
        ));
    }

    #[test]
    fn nothing_to_write_means_no_steps() {
        let s = snap(None);
        let (book, _) = Bookkeeping::decode_or_pause(&s.variables, 0);
        let none = Action::None {
            reason: Hold::Steady,
        };
        assert!(plan(&none, &s, &book).is_empty());
        assert_eq!(percent_value(5.0), "5.0");
        assert_eq!(percent_value(12.5), "12.5");
    }
}
