//! Authentication per route: which credential, verified how, is the policy's
//! call; this module reads the headers, fetches keys through [`crate::jwks`],
//! has WebCrypto check token signatures ([`crate::webcrypto`]) and turns a
//! refusal into its problem and `WWW-Authenticate` challenge.

use std::rc::Rc;

use tidegate_policy::auth::{
    authorize, select_credential, AuthRejection, Credential, Identity, UnverifiedJwt,
    DEFAULT_MAX_TOKEN_BYTES,
};
use tidegate_policy::cache::first_header;
use tidegate_policy::config::Route;
use tidegate_policy::problem::Problem;
use worker::{Context, Env};

use crate::config::{self, Gateway};
use crate::response::add_time;
use crate::webcrypto::WebCrypto;
use crate::Flow;

/// The caller of `route`: `None` for a public route, or the problem to
/// answer with.
pub async fn authenticate(
    env: &Env,
    ctx: &Context,
    gw: &Rc<Gateway>,
    route: &Route,
    headers: &[(String, String)],
    flow: &mut Flow,
) -> Result<Option<Identity>, Problem> {
    let started = crate::now_ms();
    let result = verify(env, ctx, gw, route, headers).await;
    add_time(
        &mut flow.timings.auth,
        crate::now_ms().saturating_sub(started),
    );
    match result {
        Ok(identity) => {
            if let Some(id) = &identity {
                flow.log.subject = Some(id.subject.clone());
                flow.log.key_id = id.key_id.clone();
            }
            Ok(identity)
        }
        Err(Refusal::Auth(rejection)) => {
            flow.log.auth_error = Some(rejection.label());
            if let Some(challenge) = rejection.www_authenticate() {
                flow.extra.push(("www-authenticate".to_owned(), challenge));
            }
            Err(rejection.to_problem())
        }
        Err(Refusal::Edge(e)) => Err(crate::fail(flow, e)),
    }
}

/// Why a request was not authenticated.
enum Refusal {
    /// The policy refused the credential.
    Auth(AuthRejection),
    /// The gateway could not check it (invalid `API_KEYS`).
    Edge(crate::error::EdgeError),
}

impl From<AuthRejection> for Refusal {
    fn from(r: AuthRejection) -> Self {
        Self::Auth(r)
    }
}

async fn verify(
    env: &Env,
    ctx: &Context,
    gw: &Rc<Gateway>,
    route: &Route,
    headers: &[(String, String)],
) -> Result<Option<Identity>, Refusal> {
    let config = &gw.config;
    let credential = select_credential(
        route.auth.requirement,
        first_header(headers, "authorization"),
        first_header(headers, config.api_key_header()),
    )?;
    let identity = match credential {
        None => return Ok(None),
        Some(Credential::ApiKey(key)) => {
            let store = config::api_keys(env).map_err(Refusal::Edge)?;
            store.authenticate(key, crate::now_ms())?
        }
        Some(Credential::Bearer(token)) => {
            let jwt = UnverifiedJwt::parse(token, DEFAULT_MAX_TOKEN_BYTES)?;
            let issuer = config.issuer_for_token(route, &jwt)?;
            let jwk = crate::jwks::key_for(gw, issuer, jwt.kid(), jwt.alg(), ctx).await?;
            // The signature with WebCrypto (native in workerd), the rest by the policy.
            let check = jwt.signature_check(&issuer.policy, &jwk)?;
            check
                .verify_with(&WebCrypto)
                .await?
                .identity(crate::now_ms())?
        }
    };
    authorize(&identity, &route.auth.scopes)?;
    Ok(Some(identity))
}
