//! Gateway config: TOML and JSON load + validate on arbitrary text.
//!
//! Beyond "never panics": a config that loads must render back
//! (`to_toml_string`) to TOML that loads to an equal config, as
//! `GatewayConfig::to_toml_string` promises, and composing the runtime
//! pieces (route table, auth policy, JWKS cache) from it must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidegate_policy::config::{parse, parse_as, Format, GatewayConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let detected = parse(text);
    for format in [Format::Toml, Format::Json] {
        if let Ok(config) = parse_as(text, format) {
            check_loaded(&config);
        }
    }
    if let Ok(config) = detected {
        check_loaded(&config);
    }
});

fn check_loaded(config: &GatewayConfig) {
    let rendered = config.to_toml_string();
    match parse_as(&rendered, Format::Toml) {
        Ok(again) => assert_eq!(&again, config, "round trip changed the config:\n{rendered}"),
        Err(errors) => panic!("rendered config does not load: {errors}\n{rendered}"),
    }
    let _ = config.redacted();
    let _ = config.route_table();
    let _ = config.api_key_header();
    for issuer in &config.issuers {
        let _ = issuer.new_jwks_cache();
    }
    for route in &config.routes {
        let _ = route.auth_policy();
        let _ = config.jwt_policy(route);
        let _ = config.forward_policy(route);
    }
}
