//! How to reach S3: endpoint, region and credentials, given explicitly or read from the
//! usual `AWS_*` environment variables.

use std::fmt;

/// Settings for `s3://` URLs (`file://` URLs ignore them).
///
/// Nothing is taken from ambient AWS configuration (profiles, instance metadata): an `s3://`
/// URL needs an endpoint or credentials here.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    /// Endpoint of an S3-compatible server, e.g. `http://127.0.0.1:9000`; `None` for AWS.
    pub endpoint: Option<String>,
    /// Region; `us-east-1` when `None`.
    pub region: Option<String>,
    /// Access key id; set together with `secret_access_key`.
    pub access_key_id: Option<String>,
    /// Secret access key; set together with `access_key_id`.
    pub secret_access_key: Option<String>,
    /// Whether plain `http://` endpoints are allowed.
    pub allow_http: bool,
}

impl StorageOptions {
    /// Options from `AWS_ENDPOINT` (or `AWS_ENDPOINT_URL`), `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_ALLOW_HTTP` (`true`, `1` or `yes`); empty variables
    /// count as unset.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Options from a lookup of environment variables by name.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        Self {
            endpoint: var("AWS_ENDPOINT").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("AWS_REGION"),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            allow_http: var("AWS_ALLOW_HTTP").is_some_and(|value| {
                ["true", "1", "yes"].iter().any(|yes| value.eq_ignore_ascii_case(yes))
            }),
        }
    }
}

/// Never prints the secret.
impl fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageOptions")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "***"))
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> StorageOptions {
        let vars: HashMap<_, _> = vars.iter().copied().collect();
        StorageOptions::from_vars(|name| vars.get(name).map(|value| value.to_string()))
    }

    #[test]
    fn reads_aws_variables() {
        let options = from(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "key"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_ALLOW_HTTP", "TRUE"),
        ]);
        assert_eq!(
            options,
            StorageOptions {
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("eu-west-1".into()),
                access_key_id: Some("key".into()),
                secret_access_key: Some("secret".into()),
                allow_http: true,
            }
        );
        assert!(!format!("{options:?}").contains("secret\""), "{options:?}");
    }

    #[test]
    fn aws_endpoint_wins_and_empty_variables_are_unset() {
        let options = from(&[
            ("AWS_ENDPOINT", "http://a"),
            ("AWS_ENDPOINT_URL", "http://b"),
            ("AWS_REGION", ""),
            ("AWS_ALLOW_HTTP", "0"),
        ]);
        assert_eq!(options.endpoint.as_deref(), Some("http://a"));
        assert_eq!(options.region, None);
        assert!(!options.allow_http);
    }
}
