//! The object store: objects as JSON under one lock, a cluster-wide `resourceVersion` that
//! every write increments, the history of changes that watches resume from, and the
//! API server's write rules (generation, finalizers, graceful pod deletion, garbage
//! collection of owned objects).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tracing::debug;

use crate::apiserver::errors::ApiError;
use crate::apiserver::resources::Resource;

/// Where an object lives: its resource type, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// `group/plural`.
    pub resource: String,
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl Key {
    /// The key of `name` in `namespace`.
    pub fn new(resource: &Resource, namespace: &str, name: &str) -> Key {
        Key {
            resource: format!("{}/{}", resource.group, resource.plural),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// The kind of a change, as watch events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed.
    Deleted,
}

impl ChangeType {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One write, as watches see it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The `resourceVersion` it made.
    pub revision: u64,
    /// The object's key.
    pub key: Key,
    /// What happened.
    pub kind: ChangeType,
    /// The object after the write (before it, for a delete; with the new version).
    pub object: Value,
}

/// What a delete asks for (`DeleteOptions`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `propagationPolicy: Orphan`: leave owned objects.
    pub orphan: bool,
}

#[derive(Default)]
struct State {
    revision: u64,
    uids: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<Arc<Change>>,
}

/// The store.
pub struct Store {
    state: Mutex<State>,
    changes: broadcast::Sender<Arc<Change>>,
}

impl Default for Store {
    fn default() -> Self {
        Store { state: Mutex::default(), changes: broadcast::channel(4096).0 }
    }
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("the store lock is never poisoned")
    }

    /// The object at `key`.
    pub fn get(&self, resource: &Resource, key: &Key) -> Result<Value, ApiError> {
        self.lock().objects.get(key).cloned().ok_or_else(|| not_found(resource, key))
    }

    /// The objects of `resource` (in `namespace`, or all) and the current version.
    pub fn list(&self, resource: &Resource, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let state = self.lock();
        let items = (state.objects.iter())
            .filter(|(key, _)| in_scope(key, resource, namespace))
            .map(|(_, object)| object.clone())
            .collect();
        (items, state.revision)
    }

    /// The changes of `resource` after version `from` (or the current objects as `ADDED`
    /// when `None`), and a receiver of every later change; both under the lock, so that
    /// nothing is missed or seen twice.
    pub fn watch(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>) {
        let state = self.lock();
        let past = match from {
            Some(from) => (state.history.iter())
                .filter(|c| c.revision > from && in_scope(&c.key, resource, namespace))
                .cloned()
                .collect(),
            None => (state.objects.iter())
                .filter(|(key, _)| in_scope(key, resource, namespace))
                .map(|(key, object)| {
                    let revision = version(object);
                    Arc::new(Change {
                        revision,
                        key: key.clone(),
                        kind: ChangeType::Added,
                        object: object.clone(),
                    })
                })
                .collect(),
        };
        (past, self.changes.subscribe())
    }

    /// Creates `object` in `namespace`.
    pub fn create(
        &self,
        resource: &Resource,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let meta = &mut object["metadata"];
        if !meta.is_object() {
            return Err(ApiError::bad_request("the object has no metadata"));
        }
        if meta["namespace"].as_str().is_some_and(|ns| ns != namespace) {
            return Err(ApiError::bad_request(
                "the namespace of the object does not match the path",
            ));
        }
        if meta["name"].as_str().is_none_or(str::is_empty) {
            let Some(prefix) = meta["generateName"].as_str() else {
                return Err(ApiError::invalid(
                    resource.kind,
                    "",
                    "name or generateName is required",
                ));
            };
            meta["name"] = format!("{prefix}{:05x}", state.uids + 1).into();
        }
        let name = meta["name"].as_str().expect("set above").to_string();
        let key = Key::new(resource, namespace, &name);
        if state.objects.contains_key(&key) {
            return Err(ApiError::already_exists(resource.kind, &name));
        }
        state.uids += 1;
        let fields = meta.as_object_mut().expect("checked to be an object");
        fields.insert("namespace".into(), namespace.into());
        fields.insert("uid".into(), format!("00000000-0000-4000-8000-{:012x}", state.uids).into());
        fields.insert("creationTimestamp".into(), now().into());
        for system in ["deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"] {
            fields.remove(system);
        }
        if resource.generation {
            fields.insert("generation".into(), 1.into());
        }
        object["apiVersion"] = resource.api_version().into();
        object["kind"] = resource.kind.into();
        if resource.status {
            drop_field(&mut object, "status");
        }
        Ok(commit(&mut state, &self.changes, key, ChangeType::Added, object))
    }

    /// Writes what `change` makes of the object at `key` (through the status subresource
    /// when `status`). `change` gets `None` when the object does not exist; what it then
    /// returns is created (server-side apply), unless it fails.
    pub fn write(
        &self,
        resource: &Resource,
        key: &Key,
        status: bool,
        change: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let Some(current) = state.objects.get(key).cloned() else {
            if status {
                return Err(not_found(resource, key));
            }
            let object = change(None)?;
            drop(state);
            return self.create(resource, &key.namespace, object);
        };
        let candidate = change(Some(&current))?;
        let next = next_version(resource, key, &current, candidate, status)?;
        if next == current {
            return Ok(current);
        }
        let written = commit(&mut state, &self.changes, key.clone(), ChangeType::Modified, next);
        if finalized(&written) {
            remove(&mut state, &self.changes, key.clone(), DeleteOptions::default());
        }
        Ok(written)
    }

    /// Deletes the object at `key`: at once, or by setting `deletionTimestamp` while it has
    /// finalizers or is a pod on a node (its kubelet finishes the delete).
    pub fn delete(
        &self,
        resource: &Resource,
        key: &Key,
        options: DeleteOptions,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let current = state.objects.get(key).cloned().ok_or_else(|| not_found(resource, key))?;
        let finalizers =
            current["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        let graceful = resource.kind == "Pod"
            && current["spec"]["nodeName"].as_str().is_some()
            && options.grace_period != Some(0);
        if !finalizers && !graceful {
            return Ok(remove(&mut state, &self.changes, key.clone(), options));
        }
        if !current["metadata"]["deletionTimestamp"].is_null() {
            return Ok(current);
        }
        let mut next = current;
        next["metadata"]["deletionTimestamp"] = now().into();
        let grace = if graceful { options.grace_period.unwrap_or(30) } else { 0 };
        next["metadata"]["deletionGracePeriodSeconds"] = grace.into();
        Ok(commit(&mut state, &self.changes, key.clone(), ChangeType::Modified, next))
    }
}

/// The object a write of `candidate` over `current` stores: the immutable metadata kept,
/// only the writable part taken (status through `/status`, the rest otherwise), the
/// generation counted, and the preconditions checked.
fn next_version(
    resource: &Resource,
    key: &Key,
    current: &Value,
    mut candidate: Value,
    status: bool,
) -> Result<Value, ApiError> {
    if candidate["metadata"]["name"].as_str().is_some_and(|n| n != key.name) {
        return Err(ApiError::bad_request("the name of the object does not match the path"));
    }
    let precondition = candidate["metadata"]["resourceVersion"].as_str().filter(|v| !v.is_empty());
    if precondition.is_some_and(|v| Some(v) != current["metadata"]["resourceVersion"].as_str()) {
        return Err(ApiError::conflict(resource.kind, &key.name));
    }
    let mut next = if status {
        let mut next = current.clone();
        next["status"] = candidate["status"].take();
        next["metadata"]["managedFields"] = candidate["metadata"]["managedFields"].take();
        next
    } else {
        if resource.status {
            candidate["status"] = current["status"].clone();
        }
        candidate
    };
    let meta = &mut next["metadata"];
    for immutable in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
    ] {
        meta[immutable] = current["metadata"][immutable].clone();
    }
    if meta["managedFields"].is_null() {
        meta["managedFields"] = current["metadata"]["managedFields"].clone();
    }
    next["apiVersion"] = resource.api_version().into();
    next["kind"] = resource.kind.into();
    strip_nulls(&mut next);
    let deleting = !current["metadata"]["deletionTimestamp"].is_null();
    let finalizers =
        |object: &Value| object["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
    let before = finalizers(current);
    if deleting && finalizers(&next).iter().any(|f| !before.contains(f)) {
        let message = "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted";
        return Err(ApiError::invalid(resource.kind, &key.name, message));
    }
    if resource.generation && spec_of(&next) != spec_of(current) {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(0);
        next["metadata"]["generation"] = (generation + 1).into();
    }
    Ok(next)
}

/// Everything outside metadata and status.
fn spec_of(object: &Value) -> Value {
    let mut spec = object.clone();
    drop_field(&mut spec, "metadata");
    drop_field(&mut spec, "status");
    spec
}

/// Whether `object` is being deleted and no finalizer holds it any more.
fn finalized(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
        && object["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty)
}

/// Stores `object` at `key` with the next version and tells the watches.
fn commit(
    state: &mut State,
    changes: &broadcast::Sender<Arc<Change>>,
    key: Key,
    kind: ChangeType,
    mut object: Value,
) -> Value {
    state.revision += 1;
    object["metadata"]["resourceVersion"] = state.revision.to_string().into();
    debug!(?key, kind = kind.as_str(), revision = state.revision, "write");
    match kind {
        ChangeType::Deleted => state.objects.remove(&key),
        _ => state.objects.insert(key.clone(), object.clone()),
    };
    let change = Arc::new(Change { revision: state.revision, key, kind, object: object.clone() });
    state.history.push(change.clone());
    // No receiver is fine: nobody watches.
    let _ = changes.send(change);
    object
}

/// Removes the object at `key` and, unless orphaned, deletes what it owns (background
/// propagation); returns the removed object.
fn remove(
    state: &mut State,
    changes: &broadcast::Sender<Arc<Change>>,
    key: Key,
    options: DeleteOptions,
) -> Value {
    let object = state.objects.get(&key).cloned().expect("removing a stored object");
    let removed = commit(state, changes, key, ChangeType::Deleted, object);
    if options.orphan {
        return removed;
    }
    let uid = removed["metadata"]["uid"].clone();
    let owned: Vec<Key> = (state.objects.iter())
        .filter(|(_, o)| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in owned {
        collect(state, changes, key);
    }
    removed
}

/// The garbage collector's delete of an owned object: through its finalizers and, for a pod
/// on a node, its kubelet.
fn collect(state: &mut State, changes: &broadcast::Sender<Arc<Change>>, key: Key) {
    let object = state.objects.get(&key).cloned().expect("collecting a stored object");
    let held = object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty())
        || (key.resource == "/pods" && object["spec"]["nodeName"].is_string());
    if !held {
        remove(state, changes, key, DeleteOptions::default());
    } else if object["metadata"]["deletionTimestamp"].is_null() {
        let mut next = object;
        next["metadata"]["deletionTimestamp"] = now().into();
        commit(state, changes, key, ChangeType::Modified, next);
    }
}

fn in_scope(key: &Key, resource: &Resource, namespace: Option<&str>) -> bool {
    key.resource == format!("{}/{}", resource.group, resource.plural)
        && namespace.is_none_or(|ns| ns == key.namespace)
}

fn not_found(resource: &Resource, key: &Key) -> ApiError {
    ApiError::not_found(
        format!("{}.{}", resource.plural, resource.group).trim_end_matches('.'),
        &key.name,
    )
}

/// The `resourceVersion` of a stored object.
pub fn version(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn drop_field(object: &mut Value, field: &str) {
    if let Some(fields) = object.as_object_mut() {
        fields.remove(field);
    }
}

/// Removes `null` fields, as decoding into the API types does.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !v.is_null());
            fields.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Now, as `metav1.Time` spells it.
fn now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::find;

    #[test]
    fn finalizers_hold_a_delete_and_the_owner_takes_its_objects_along() {
        let store = Store::default();
        let jobs = find("weir.dev", "v1alpha1", "streamjobs").unwrap();
        let maps = find("", "v1", "configmaps").unwrap();
        let job = json!({ "metadata": { "name": "j", "finalizers": ["f"] }, "spec": {} });
        let job = store.create(jobs, "ns", job).unwrap();
        let owner = json!([{ "uid": job["metadata"]["uid"], "kind": "StreamJob", "name": "j", "apiVersion": "weir.dev/v1alpha1" }]);
        store
            .create(maps, "ns", json!({ "metadata": { "name": "m", "ownerReferences": owner } }))
            .unwrap();
        let job_key = Key::new(jobs, "ns", "j");
        let deleting = store.delete(jobs, &job_key, DeleteOptions::default()).unwrap();
        assert!(deleting["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(store.list(maps, Some("ns")).0.len(), 1);
        let added = store.write(jobs, &job_key, false, |c| {
            let mut c = c.unwrap().clone();
            c["metadata"]["finalizers"] = json!(["f", "g"]);
            Ok(c)
        });
        assert_eq!(added.unwrap_err().code, 422);
        store
            .write(jobs, &job_key, false, |c| {
                let mut c = c.unwrap().clone();
                c["metadata"]["finalizers"] = json!([]);
                Ok(c)
            })
            .unwrap();
        assert_eq!(store.get(jobs, &job_key).unwrap_err().code, 404);
        assert!(store.list(maps, Some("ns")).0.is_empty());
    }

    #[test]
    fn generation_counts_spec_changes_and_versions_every_write() {
        let store = Store::default();
        let jobs = find("weir.dev", "v1alpha1", "streamjobs").unwrap();
        let key = Key::new(jobs, "ns", "j");
        let created = store
            .create(jobs, "ns", json!({ "metadata": { "name": "j" }, "spec": { "a": 1 } }))
            .unwrap();
        let set = |status: bool, path: &str, value: Value| {
            store
                .write(jobs, &key, status, |c| {
                    let mut c = c.unwrap().clone();
                    c[path] = value;
                    Ok(c)
                })
                .unwrap()
        };
        let labelled = set(false, "metadata", json!({ "name": "j", "labels": { "x": "y" } }));
        let status = set(true, "status", json!({ "phase": "Running" }));
        let ignored = set(false, "status", json!({ "phase": "Other" }));
        let changed = set(false, "spec", json!({ "a": 2 }));
        let versions: Vec<u64> =
            [&created, &labelled, &status, &ignored, &changed].iter().map(|o| version(o)).collect();
        assert_eq!(versions, [1, 2, 3, 3, 4]);
        let generations: Vec<_> = [&created, &labelled, &status, &changed]
            .iter()
            .map(|o| o["metadata"]["generation"].as_i64())
            .collect();
        assert_eq!(generations, [Some(1), Some(1), Some(1), Some(2)]);
        assert_eq!(changed["status"]["phase"], "Running");
        let stale = json!({ "metadata": { "name": "j", "resourceVersion": "2" }, "spec": {} });
        assert_eq!(store.write(jobs, &key, false, |_| Ok(stale)).unwrap_err().code, 409);
    }
}
