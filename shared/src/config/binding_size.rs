//! Cloudflare's size cap on one Worker variable or secret (5 KB), checked
//! at build time (`edge-worker/build.rs`, hence `wrangler deploy --dry-run`)
//! and again by the Worker, since Miniflare and `wrangler dev` do not
//! enforce it while production refuses the upload.

/// The largest variable or secret value Cloudflare accepts: 5 KB, counted
/// here as 5 × 1024 bytes of UTF-8.
pub const MAX_BINDING_BYTES: usize = 5 * 1024;

/// A variable or secret value too large for Cloudflare.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingSizeError {
    /// The value of `name` has `bytes` bytes, over [`MAX_BINDING_BYTES`].
    #[error(
        "{name} is {bytes} bytes, over Cloudflare's 5 KB ({MAX_BINDING_BYTES} bytes) limit for a \
         variable or secret; {}",
        fix_for(name)
    )]
    TooLarge {
        /// The binding.
        name: String,
        /// Its size in bytes.
        bytes: usize,
    },
}

fn fix_for(name: &str) -> &'static str {
    match name {
        "TIDEGATE_CONFIG" => {
            "embed the configuration in the Worker instead: put it in a file, build with \
             TIDEGATE_CONFIG_FILE=<path> (default examples/gateway.toml) and leave TIDEGATE_CONFIG \
             unset"
        }
        "API_KEYS" => {
            "keep about 30 keys at most there and move the rest to a Workers KV key store \
             ([api_keys] store = \"kv\", see docs/configuration.md)"
        }
        _ => "make it smaller",
    }
}

/// Checks one variable or secret value against Cloudflare's cap.
pub fn check_binding_size(name: &str, value: &str) -> Result<(), BindingSizeError> {
    if value.len() > MAX_BINDING_BYTES {
        return Err(BindingSizeError::TooLarge {
            name: name.to_owned(),
            bytes: value.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_up_to_5_kib_pass() {
        assert_eq!(check_binding_size("API_KEYS", &"x".repeat(5120)), Ok(()));
        assert_eq!(check_binding_size("API_KEYS", ""), Ok(()));
    }

    #[test]
    fn larger_values_fail_with_the_fix() {
        let e = check_binding_size("TIDEGATE_CONFIG", &"é".repeat(2561)).unwrap_err();
        assert_eq!(
            e,
            BindingSizeError::TooLarge {
                name: "TIDEGATE_CONFIG".into(),
                bytes: 5122
            }
        );
        let text = e.to_string();
        assert!(text.starts_with("TIDEGATE_CONFIG is 5122 bytes, over Cloudflare's 5 KB"));
        assert!(text.contains("TIDEGATE_CONFIG_FILE"), "{text}");
        let keys = check_binding_size("API_KEYS", &"x".repeat(5121)).unwrap_err();
        assert!(keys.to_string().contains("store = \"kv\""), "{keys}");
        let other = check_binding_size("OTHER", &"x".repeat(6000)).unwrap_err();
        assert!(other.to_string().ends_with("make it smaller"));
    }
}
