//! A blocking client of the REST API a running job (or, later, the coordinator) serves.

use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value;

/// The API at one address.
pub struct Api {
    http: Client,
    base: String,
}

impl Api {
    /// The API at `url` (`http://host:port`, or `host:port`); requests time out after
    /// `timeout` (savepoints wait for their checkpoint to complete).
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let base = match url.contains("://") {
            true => url.trim_end_matches('/').to_string(),
            false => format!("http://{}", url.trim_end_matches('/')),
        };
        let http = Client::builder().timeout(timeout).build()?;
        Ok(Api { http, base })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url(path)), path)
    }

    /// `POST path` with `body` as JSON.
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(self.url(path)).json(body), path)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request`; an error status becomes an error carrying the API's message.
    fn send(&self, request: RequestBuilder, path: &str) -> anyhow::Result<Value> {
        let url = self.url(path);
        let response = request.send().with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let body: Value = response.json().with_context(|| format!("{url} answered no JSON"))?;
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"].as_str().map_or_else(|| body.to_string(), str::to_string);
        Err(anyhow!("{message} ({status} from {url})"))
    }
}
