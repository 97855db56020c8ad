//! A route's rate limits applied to one request: keys, quotas, headers and
//! refusals come from `RateLimitPolicy`; the counting from the `Throttle`
//! Durable Objects ([`crate::durable`]).

use tidegate_policy::auth::Identity;
use tidegate_policy::cache::first_header;
use tidegate_policy::config::{PlanChoice, Route};
use tidegate_policy::problem::Problem;
use tidegate_policy::throttle::KeySource;
use worker::Env;

use crate::durable;
use crate::flow::{Flow, Phase};

/// The only header the client IP is taken from; `X-Forwarded-For` is never
/// trusted.
pub const CLIENT_IP_HEADER: &str = "cf-connecting-ip";

/// Counts the request against the route's limits. Adds the rate-limit
/// headers to `flow.extra`; `Err` is the problem to answer with (429, or 503
/// when the limiter is unreachable and the route fails closed).
pub async fn apply(
    env: &Env,
    route: &Route,
    identity: Option<&Identity>,
    plan: PlanChoice<'_>,
    headers: &[(String, String)],
    flow: &mut Flow,
) -> Result<(), Problem> {
    let Some(policy) = &route.rate_limit else {
        return Ok(());
    };
    // The caller's plan replaces the quotas of the limits it names.
    if let PlanChoice::Unknown(tier) = plan {
        flow.log.unknown_tier = Some(tier.chars().take(64).collect());
    }
    let policy = &*policy.for_plan(plan.tier());
    let source = KeySource::from_identity(identity, first_header(headers, CLIENT_IP_HEADER));
    let keys = policy
        .storage_keys(&route.name, &source)
        .map_err(|e| e.problem())?;
    let checking = durable::check(env, policy, &keys, identity);
    let result = flow.timings.time(Phase::Throttle, checking).await;
    let decision = match result {
        Ok(decision) => decision,
        Err(e) => {
            flow.log.error = Some(e.log_text());
            return match policy.on_limiter_error() {
                None => {
                    flow.log.limiter = Some("error-open");
                    Ok(())
                }
                Some(problem) => {
                    flow.log.limiter = Some("error-closed");
                    Err(problem)
                }
            };
        }
    };
    flow.log.limiter = Some(match (decision.allowed, policy.shadow) {
        (true, _) => "allowed",
        (false, true) => "shadow-denied",
        (false, false) => "denied",
    });
    let rendered = policy.headers(&decision);
    flow.extra
        .extend(rendered.into_iter().map(|(n, v)| (n.to_owned(), v)));
    policy.rejection(&decision).map_or(Ok(()), Err)
}
