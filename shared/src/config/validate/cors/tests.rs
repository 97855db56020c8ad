use crate::config::parse;
use crate::cors::{OriginRule, PreflightOutcome, PreflightRequest};
use crate::route::Method;

fn route(extra: &str) -> String {
    format!(
        r#"
[api_keys]
[[routes]]
name = "api"
path = "/api/*"
methods = ["GET", "POST"]
upstream = "https://origin.example.com"
auth = {{ require = "either" }}
{extra}
[[issuers]]
name = "idp"
issuer = "https://idp.example/"
audiences = ["api"]
jwks_url = "https://idp.example/jwks"
algorithms = ["RS256"]
"#
    )
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn defaults() {
    let config = parse(&route(
        "cors = { allow_origins = [\"https://app.example.com\", \"https://*.example.org\"] }",
    ))
    .unwrap();
    let cors = config.routes[0].cors.as_ref().unwrap();
    assert_eq!(
        cors.origins,
        vec![
            OriginRule::Exact("https://app.example.com".into()),
            OriginRule::parse("https://*.example.org").unwrap()
        ]
    );
    assert_eq!(cors.methods, vec![Method::Get, Method::Post]);
    assert!(cors.headers.contains(&"authorization".to_owned()));
    assert!(cors.headers.contains(&"x-api-key".to_owned()));
    assert!(!cors.credentials);
    assert_eq!(cors.max_age.as_secs(), 600);
    assert!(config.routes[0].forward_client_headers.is_empty());
    // The effective configuration parses back to the same thing.
    assert_eq!(parse(&config.to_toml_string()).unwrap(), config);
    let req = PreflightRequest {
        origin: "https://a.example.org",
        method: "POST",
        headers: Some("x-api-key"),
    };
    assert!(matches!(cors.preflight(&req), PreflightOutcome::Allowed(_)));
}

#[test]
fn every_problem_is_named_with_its_fix() {
    let errors = problems(&route(
        r#"forward_client_headers = ["x-forwarded-host", "x-custom", "x_forwarded_for"]
[routes.cors]
allow_origins = ["*", "https://App.example.com/", "https://*.com", "null"]
allow_methods = ["GET", "DELETE", "BREW"]
allow_headers = ["x-ok", "bad header"]
expose_headers = ["*"]
allow_credentials = true
max_age = "2d"
"#,
    ));
    let expect = [
        "routes[0].cors.allow_origins: `*` already allows every origin",
        "routes[0].cors.allow_credentials: browsers refuse `Access-Control-Allow-Origin: *` with credentials",
        "routes[0].cors.allow_origins[1]: `https://App.example.com/` is not usable: is not written as browsers send it (lower case, no path or trailing `/`, no default port); write \"https://app.example.com\"",
        "routes[0].cors.allow_origins[2]: `https://*.com` is not usable: a subdomain pattern needs",
        "routes[0].cors.allow_origins[3]: `null` is not usable: `null` is the origin",
        "routes[0].cors.allow_methods[1]: the route does not serve DELETE",
        "routes[0].cors.allow_methods[2]: `BREW` is not accepted",
        "routes[0].cors.allow_headers[1]: `bad header` is not accepted",
        "routes[0].cors.expose_headers: with credentials browsers read `*`",
        "routes[0].cors.max_age: 2d is out of range",
        "routes[0].forward_client_headers[1]: `x-custom` is not accepted; expected one of x-forwarded-for",
        "routes[0].forward_client_headers[2]: `x_forwarded_for` is not accepted",
    ];
    for want in expect {
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "missing {want:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
}

#[test]
fn wildcards_and_pass_through() {
    let config = parse(&route(
        r#"forward_client_headers = ["X-Forwarded-Host"]
[routes.cors]
allow_origins = ["*"]
allow_headers = ["*"]
expose_headers = ["*"]
max_age = "0s"
"#,
    ))
    .unwrap();
    let r = &config.routes[0];
    assert_eq!(r.forward_client_headers, ["x-forwarded-host"]);
    let cors = r.cors.as_ref().unwrap();
    assert!(cors.any_origin && cors.any_header);
    assert_eq!(parse(&config.to_toml_string()).unwrap(), config);
    assert!(problems(&route("[routes.cors]\nallow_origins = []\n"))[0]
        .starts_with("routes[0].cors.allow_origins: is missing"));
    assert!(problems(&route(
        "[routes.cors]\nallow_origins = [\"*\"]\nmax_age = \"1500ms\"\n"
    ))[0]
        .contains("whole seconds"));
}
