//! The HTTP side: paths (`/api/v1/namespaces/{ns}/{plural}/{name}/status`,
//! `/apis/{group}/{version}/…`) to store operations, with the verbs and query parameters a
//! `kube::Client` sends, and watches as streams of JSON lines.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures::{StreamExt, stream};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tracing::debug;

use crate::apiserver::errors::ApiError;
use crate::apiserver::patch::{Apply, PatchType, json_patch, merge_patch};
use crate::apiserver::resources::{self, Resource};
use crate::apiserver::selector::Selector;
use crate::apiserver::store::{Change, DeleteOptions, Key, Store};

type Params = HashMap<String, String>;

/// The router over `store`.
pub fn router(store: Arc<Store>) -> Router {
    Router::new().fallback(handle).with_state(store)
}

/// A request's target: the resource type, the namespace, and the object and subresource.
struct Target {
    resource: &'static Resource,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

impl Target {
    fn parse(path: &str) -> Result<Target, ApiError> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return Err(ApiError::no_route(path)),
        };
        let (namespace, rest) = match rest {
            ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
                (Some(namespace.to_string()), rest)
            }
            rest => (None, rest),
        };
        let (plural, name, status) = match rest {
            [plural] => (*plural, None, false),
            [plural, name] => (*plural, Some(name.to_string()), false),
            [plural, name, "status"] => (*plural, Some(name.to_string()), true),
            _ => return Err(ApiError::no_route(path)),
        };
        let resource =
            resources::find(group, version, plural).ok_or_else(|| ApiError::no_route(path))?;
        if name.is_some() && namespace.is_none() {
            return Err(ApiError::no_route(path));
        }
        Ok(Target { resource, namespace, name, status })
    }

    fn key(&self) -> Key {
        let (namespace, name) = (self.namespace.as_deref(), self.name.as_deref());
        Key::new(self.resource, namespace.unwrap_or_default(), name.unwrap_or_default())
    }
}

async fn handle(
    State(store): State<Arc<Store>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    debug!(%method, %uri, "request");
    let params: Params =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let result = Target::parse(uri.path()).and_then(|target| {
        let content_type =
            headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        match (&method, target.name.is_some()) {
            (&Method::GET, false) if flag(&params, "watch") => watch(&store, &target, &params),
            (&Method::GET, false) => list(&store, &target, &params),
            (&Method::POST, false) => create(&store, &target, &body),
            (&Method::GET, true) => store.get(target.resource, &target.key()).map(ok),
            (&Method::PUT, true) => replace(&store, &target, &body),
            (&Method::PATCH, true) => patch(&store, &target, content_type, &params, &body),
            (&Method::DELETE, true) => delete(&store, &target, &body),
            _ => Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on {}",
                uri.path()
            ))),
        }
    });
    result.unwrap_or_else(IntoResponse::into_response)
}

fn ok(object: Value) -> Response {
    Json(object).into_response()
}

fn flag(params: &Params, name: &str) -> bool {
    params.get(name).is_some_and(|v| v == "true" || v == "1")
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// The label and field selectors of a list or watch.
fn selectors(params: &Params) -> Result<(Selector, Selector), ApiError> {
    let labels = Selector::labels(params.get("labelSelector").map_or("", String::as_str))?;
    let fields = Selector::fields(params.get("fieldSelector").map_or("", String::as_str))?;
    Ok((labels, fields))
}

fn list(store: &Store, target: &Target, params: &Params) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(params)?;
    let (items, revision) = store.list(target.resource, target.namespace.as_deref());
    let items: Vec<Value> = items
        .into_iter()
        .filter(|o| labels.matches_labels(o) && fields.matches_fields(o))
        .collect();
    Ok(ok(json!({
        "apiVersion": target.resource.api_version(),
        "kind": format!("{}List", target.resource.kind),
        "metadata": { "resourceVersion": revision.to_string() },
        "items": items,
    })))
}

/// A watch: the changes after `resourceVersion` (the current objects when it is absent or
/// `0`), then every change as it happens, until `timeoutSeconds`.
fn watch(store: &Store, target: &Target, params: &Params) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(params)?;
    let from =
        match params.get("resourceVersion").map(String::as_str) {
            None | Some("" | "0") => None,
            Some(version) => Some(version.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid resourceVersion {version:?}"))
            })?),
        };
    let timeout = params.get("timeoutSeconds").and_then(|s| s.parse().ok()).unwrap_or(1800);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let (past, receiver) = store.watch(target.resource, target.namespace.as_deref(), from);
    let after = past.last().map_or(from.unwrap_or(0), |c| c.revision);
    let live = stream::unfold((receiver, after), move |(mut receiver, after)| async move {
        loop {
            let change = match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Ok(change)) => change,
                // A watcher that falls behind is closed; the client watches again from its
                // last version, as after any closed watch.
                Ok(Err(RecvError::Lagged(_) | RecvError::Closed)) | Err(_) => return None,
            };
            if change.revision > after {
                return Some((change, (receiver, after)));
            }
        }
    });
    let scope = target.key();
    let wanted = move |change: &Arc<Change>| {
        change.key.resource == scope.resource
            && (scope.namespace.is_empty() || change.key.namespace == scope.namespace)
            && labels.matches_labels(&change.object)
            && fields.matches_fields(&change.object)
    };
    let events = stream::iter(past)
        .chain(live)
        .filter(move |change| futures::future::ready(wanted(change)))
        .map(|change| {
            let event = json!({ "type": change.kind.as_str(), "object": change.object });
            let mut line = serde_json::to_vec(&event).expect("JSON values serialize");
            line.push(b'\n');
            Ok::<_, std::convert::Infallible>(Bytes::from(line))
        });
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(events))
        .expect("a valid response"))
}

fn create(store: &Store, target: &Target, body: &[u8]) -> Result<Response, ApiError> {
    let namespace = target
        .namespace
        .as_deref()
        .ok_or_else(|| ApiError::method_not_allowed("create needs a namespace"))?;
    let created = store.create(target.resource, namespace, json_body(body)?)?;
    Ok((axum::http::StatusCode::CREATED, Json(created)).into_response())
}

fn replace(store: &Store, target: &Target, body: &[u8]) -> Result<Response, ApiError> {
    let object = json_body(body)?;
    let (resource, name) = (target.resource, target.name.clone().unwrap_or_default());
    let written = store.write(resource, &target.key(), target.status, |current| match current {
        Some(_) => Ok(object),
        None => Err(ApiError::not_found(resource.kind, &name)),
    })?;
    Ok(ok(written))
}

fn patch(
    store: &Store,
    target: &Target,
    content_type: &str,
    params: &Params,
    body: &[u8],
) -> Result<Response, ApiError> {
    let (resource, name) = (target.resource, target.name.clone().unwrap_or_default());
    let kind = PatchType::of(content_type)?;
    let apply = match kind {
        PatchType::Apply => {
            let manager = params
                .get("fieldManager")
                .ok_or_else(|| ApiError::bad_request("fieldManager is required for apply patch"))?;
            Some(Apply {
                manager,
                subresource: target.status.then_some("status"),
                api_version: resource.api_version(),
            })
        }
        _ => None,
    };
    let written =
        store.write(resource, &target.key(), target.status, |current| match (kind, current) {
            (PatchType::Json, Some(current)) => json_patch(current, body, resource.kind, &name),
            (PatchType::Merge, Some(current)) => merge_patch(current, body),
            (PatchType::Apply, current) => {
                let fresh = json!({ "metadata": { "name": name } });
                apply.as_ref().expect("set for apply").apply(current.unwrap_or(&fresh), body)
            }
            (_, None) => Err(ApiError::not_found(resource.kind, &name)),
        })?;
    Ok(ok(written))
}

fn delete(store: &Store, target: &Target, body: &[u8]) -> Result<Response, ApiError> {
    let options = if body.is_empty() { Value::Null } else { json_body(body)? };
    let options = DeleteOptions {
        grace_period: options["gracePeriodSeconds"].as_i64(),
        orphan: options["propagationPolicy"] == "Orphan",
    };
    store.delete(target.resource, &target.key(), options).map(ok)
}
