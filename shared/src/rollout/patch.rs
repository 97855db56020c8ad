//! The exact `UpdateStage` requests a decision turns into, what the stage
//! must still look like before each is sent, and what it looks like after.
//!
//! API Gateway has no conditional update. The adapter therefore serialises
//! its writers (one lease per stage, see the Lambda's store) and still
//! re-reads the stage (`GetStage`) right before each [`PatchStep`], sending
//! it only if [`Expectation::check`] passes: a deploy by the user's
//! pipeline or an operator in the console between the read and the write
//! makes the decision stale, and it is made again on the new stage.
//!
//! Plans:
//! - **Remove canary**: one request, `remove /canarySettings`. Removing the
//!   settings stops canary traffic by itself, so there is no intermediate
//!   0 % state for another writer to step from, nor leftover settings to
//!   block the user's next deployment.
//! - **Promote** (AWS's definition): `percentTraffic := 0`, copy the
//!   canary's stage-variable overrides to the stage, copy the canary's
//!   deployment id to the stage; then `remove /canarySettings` (promote does
//!   not remove them). If the second request does not land, the record
//!   remembers the 0 % canary Tidegate made and the next decision removes it
//!   whatever else is going on.
//! - **Roll back over leftover canary settings**: `remove /canarySettings`,
//!   then `replace /deploymentId` (a stage with canary settings cannot move
//!   to another deployment).
//!
//! Each step also says what the stage looks like once it landed
//! ([`PatchStep::after`]): when a request fails after an attempt whose
//! answer was lost (the SDK retried, and the retry found nothing to do),
//! the adapter re-reads the stage and, if it already looks like that,
//! counts the step as done.

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::state::{CanarySnapshot, StageSnapshot};

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
    /// Set a value.
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

/// One `UpdateStage` request, its precondition and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchStep {
    /// What the stage must look like just before sending.
    pub expect: Expectation,
    /// The operations, in order.
    pub ops: Vec<PatchOp>,
    /// What the stage looks like once the request landed.
    pub after: Expectation,
}

/// The parts of a stage a decision relied on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// The stage's deployment.
    pub deployment_id: String,
    /// Its canary settings, if any.
    pub canary: Option<ExpectedCanary>,
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
        Ok(())
    }

    fn with_canary(&self, canary: Option<ExpectedCanary>) -> Self {
        Self {
            deployment_id: self.deployment_id.clone(),
            canary,
        }
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

const PERCENT: &str = "/canarySettings/percentTraffic";
const CANARY: &str = "/canarySettings";
const CANARY_DEPLOYMENT: &str = "/canarySettings/deploymentId";

/// The requests that carry out `action` on the stage read as `snapshot`.
/// Empty when nothing changes on the stage.
pub fn plan(action: &Action, snapshot: &StageSnapshot) -> Vec<PatchStep> {
    let start = Expectation::of(snapshot);
    let step = |expect: &Expectation, ops: Vec<PatchOp>, after: Expectation| PatchStep {
        expect: expect.clone(),
        ops,
        after,
    };
    match action {
        Action::RemoveCanary { .. } => {
            let after = start.with_canary(None);
            vec![step(&start, vec![PatchOp::remove(CANARY)], after)]
        }
        Action::RollbackStage {
            to_deployment,
            clears_leftover_canary,
            ..
        } => {
            let roll = vec![PatchOp::replace("/deploymentId", to_deployment.clone())];
            let rolled = Expectation {
                deployment_id: to_deployment.clone(),
                canary: None,
            };
            if *clears_leftover_canary {
                let cleared = start.with_canary(None);
                vec![
                    step(&start, vec![PatchOp::remove(CANARY)], cleared.clone()),
                    step(&cleared, roll, rolled),
                ]
            } else {
                vec![step(&start, roll, rolled)]
            }
        }
        Action::SetCanaryPercent {
            deployment_id, to, ..
        } => {
            let after = start.with_canary(Some(ExpectedCanary {
                deployment_id: deployment_id.clone(),
                percent_traffic: *to,
            }));
            vec![step(
                &start,
                vec![PatchOp::replace(PERCENT, percent_value(*to))],
                after,
            )]
        }
        Action::StartCanary {
            deployment_id,
            percent,
        } => {
            // `replace /canarySettings/deploymentId` creates the settings at
            // 0 % and the percentage follows in the same request, so no
            // moment has a canary at a share nobody planned. Leftover
            // settings go first: their variable overrides are not this
            // canary's.
            let create = vec![
                PatchOp::replace(CANARY_DEPLOYMENT, deployment_id.clone()),
                PatchOp::replace(PERCENT, percent_value(*percent)),
            ];
            let started = Expectation {
                deployment_id: snapshot.deployment_id.clone(),
                canary: Some(ExpectedCanary {
                    deployment_id: deployment_id.clone(),
                    percent_traffic: *percent,
                }),
            };
            if snapshot.canary.is_some() {
                let cleared = start.with_canary(None);
                vec![
                    step(&start, vec![PatchOp::remove(CANARY)], cleared.clone()),
                    step(&cleared, create, started),
                ]
            } else {
                vec![step(&start, create, started)]
            }
        }
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
            let promoted = Expectation {
                deployment_id: deployment.clone(),
                canary: Some(ExpectedCanary {
                    deployment_id: deployment.clone(),
                    percent_traffic: 0.0,
                }),
            };
            let removed = promoted.with_canary(None);
            vec![
                step(&start, ops, promoted.clone()),
                step(&promoted, vec![PatchOp::remove(CANARY)], removed),
            ]
        }
        Action::RecordKnownGood { .. } | Action::None { .. } => Vec::new(),
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
            (PatchOpKind::Replace, CANARY_DEPLOYMENT, _) => {
                if value.is_empty() {
                    return Err(bad());
                }
                // Creates the settings at 0 % when there are none.
                let c = s.canary.get_or_insert_with(|| CanarySnapshot {
                    deployment_id: String::new(),
                    percent_traffic: 0.0,
                    stage_variable_overrides: std::collections::BTreeMap::new(),
                });
                c.deployment_id = value.clone();
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
mod tests;
