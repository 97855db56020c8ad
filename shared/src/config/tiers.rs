//! Tiers as plans: which plan a caller is on, and a route's limits under it.
//!
//! A caller's tier comes from its API key record (`tier`) or its JWT (the
//! issuer's `tier_claim`). With a `[tiers.NAME]` of that name, every route
//! limit whose name the plan lists counts with the plan's quota instead of
//! the route's (the route's `key` and `cost` stay), and the key record's own
//! `limits` overrides then scale that quota. A caller without a tier, or
//! with a tier no `[tiers]` entry names, gets the routes' own limits (the
//! default plan); the adapter logs the unknown tier.

use std::borrow::Cow;

use super::model::{GatewayConfig, RateLimitPolicy, Tier};
use crate::auth::Identity;

/// The plan a caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanChoice<'a> {
    /// No tier: the routes' own limits.
    Default,
    /// A configured tier.
    Tier(&'a Tier),
    /// A tier no `[tiers]` entry names: the routes' own limits, logged.
    Unknown(&'a str),
}

impl PlanChoice<'_> {
    /// The plan, if a configured one applies.
    pub fn tier(&self) -> Option<&Tier> {
        match self {
            Self::Tier(t) => Some(t),
            _ => None,
        }
    }
}

impl GatewayConfig {
    /// The plan of `identity`. Without any `[tiers]`, tiers are only labels
    /// (sent to the origin) and every caller is on the default plan.
    pub fn plan_for<'a>(&'a self, identity: Option<&'a Identity>) -> PlanChoice<'a> {
        match identity.and_then(|i| i.tier.as_deref()) {
            None => PlanChoice::Default,
            Some(_) if self.tiers.is_empty() => PlanChoice::Default,
            Some(name) => self
                .tiers
                .get(name)
                .map_or(PlanChoice::Unknown(name), PlanChoice::Tier),
        }
    }
}

impl RateLimitPolicy {
    /// This policy under `plan`: borrowed as is when no plan applies or the
    /// plan lists none of its limits, else a copy with the plan's quotas.
    pub fn for_plan(&self, plan: Option<&Tier>) -> Cow<'_, RateLimitPolicy> {
        let Some(plan) = plan else {
            return Cow::Borrowed(self);
        };
        let quota = |name: &str| plan.limits.iter().find(|l| l.name == name).map(|l| l.quota);
        if self.limits.iter().all(|l| quota(&l.name).is_none()) {
            return Cow::Borrowed(self);
        }
        let mut out = self.clone();
        for limit in &mut out.limits {
            if let Some(q) = quota(&limit.name) {
                limit.quota = q;
            }
        }
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests;
