//! `[purge]`: global purges through Cloudflare's zone purge API. The API
//! token never appears in the file: only the name of the Worker secret that
//! holds it.

use super::assertion::binding_name;
use super::*;

/// Length of a Cloudflare zone ID, in hex characters.
const ZONE_ID_LEN: usize = 32;

pub(super) fn purge(s: PurgeSection, c: &mut Collector) -> Option<PurgeSettings> {
    let zone = s.zone_id.trim();
    let zone_id = if zone.len() == ZONE_ID_LEN && zone.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(zone.to_ascii_lowercase())
    } else {
        c.push(
            "purge.zone_id",
            Kind::NotOneOf {
                value: s.zone_id.clone(),
                expected: "a Cloudflare zone ID: 32 hex characters (dashboard, zone \
                           overview, API section)"
                    .into(),
            },
        );
        None
    };
    let api_token_secret = match &s.api_token_secret {
        None => Some(PurgeSettings::DEFAULT_API_TOKEN_SECRET.to_owned()),
        Some(name) => binding_name(c, "purge.api_token_secret", name),
    };
    let api_base = match &s.api_base {
        None => Url::parse(PurgeSettings::DEFAULT_API_BASE).ok(),
        Some(text) => api_base(c, text),
    };
    Some(PurgeSettings {
        zone_id: zone_id?,
        api_token_secret: api_token_secret?,
        api_base: api_base?,
    })
}

/// The API base: https (http only for localhost), no query or fragment.
fn api_base(c: &mut Collector, text: &UrlText) -> Option<Url> {
    let path = "purge.api_base";
    let url = url(c, path, &text.0)?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let reason = if url.scheme() != "https" && !local {
        "the API token must not travel in clear text: https (http is allowed only for localhost)"
    } else if url.query().is_some() || url.fragment().is_some() {
        "the API base may have no query or fragment"
    } else {
        return Some(url);
    };
    c.push(
        path,
        Kind::Url {
            value: text.0.clone(),
            reason: reason.into(),
        },
    );
    None
}

#[cfg(test)]
mod tests {
    use crate::config;

    const ZONE: &str = "0123456789abcdef0123456789ABCDEF";

    fn errors(section: &str) -> String {
        match config::parse(section) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_and_round_trip() {
        let cfg = config::parse(&format!("[purge]\nzone_id = \"{ZONE}\"\n")).unwrap();
        let p = cfg.purge.as_ref().unwrap();
        assert_eq!(p.zone_id, ZONE.to_ascii_lowercase());
        assert_eq!(p.api_token_secret, "CF_PURGE_TOKEN");
        assert_eq!(
            p.purge_url(),
            format!(
                "https://api.cloudflare.com/client/v4/zones/{}/purge_cache",
                ZONE.to_ascii_lowercase()
            )
        );
        assert_eq!(config::parse(&cfg.to_toml_string()).unwrap(), cfg);
    }

    #[test]
    fn local_api_base_for_tests() {
        let cfg = config::parse(&format!(
            "[purge]\nzone_id = \"{ZONE}\"\napi_base = \"http://127.0.0.1:8123/client/v4/\"\napi_token_secret = \"T\"\n"
        ))
        .unwrap();
        let p = cfg.purge.unwrap();
        assert_eq!(p.api_token_secret, "T");
        assert!(p
            .purge_url()
            .starts_with("http://127.0.0.1:8123/client/v4/zones/"));
    }

    #[test]
    fn every_problem_with_its_path() {
        let text = errors(
            "[purge]\nzone_id = \"xyz\"\napi_token_secret = \"not a name\"\napi_base = \"http://api.example.com\"\n",
        );
        assert!(text.contains("purge.zone_id"), "{text}");
        assert!(text.contains("purge.api_token_secret"), "{text}");
        assert!(text.contains("purge.api_base"), "{text}");
        let text = errors(&format!(
            "[purge]\nzone_id = \"{ZONE}\"\napi_base = \"https://a.example/?x=1\"\n"
        ));
        assert!(text.contains("purge.api_base"), "{text}");
        let text = errors("[purge]\napi_base = \"https://a.example\"\n");
        assert!(text.contains("zone_id"), "{text}");
        let text = errors(&format!("[purge]\nzone_id = \"{ZONE}\"\ncolour = 1\n"));
        assert!(text.contains("colour"), "{text}");
    }
}
