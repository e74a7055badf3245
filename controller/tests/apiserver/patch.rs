//! The patch types: JSON patch, JSON merge patch, and server-side apply, which merges the
//! applied fields into the object and removes the fields its manager applied before but
//! no longer applies (unless another applier owns them), recording each applier's fields in
//! `metadata.managedFields` (`FieldsV1`). Lists are atomic: an applier owns a whole list.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::apiserver::errors::ApiError;

/// A field path (`["spec", "containers"]`).
type Path = Vec<String>;

/// The patch types, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/apply-patch+yaml`.
    Apply,
}

impl PatchType {
    /// The patch type of `content_type`; strategic merge patch is not supported.
    pub fn of(content_type: &str) -> Result<PatchType, ApiError> {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/apply-patch+yaml" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// `current` with the JSON patch `body` applied. As in the API server (evanphx/json-patch),
/// a `test` for `null` passes when the path does not exist.
pub fn json_patch(current: &Value, body: &[u8], kind: &str, name: &str) -> Result<Value, ApiError> {
    let patch: json_patch::Patch = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    let mut next = current.clone();
    for operation in patch.0 {
        if let json_patch::PatchOperation::Test(test) = &operation
            && test.value.is_null()
            && next.pointer(test.path.as_str()).is_none()
        {
            continue;
        }
        json_patch::patch(&mut next, &[operation])
            .map_err(|e| ApiError::invalid(kind, name, e.to_string()))?;
    }
    Ok(next)
}

/// `current` with the JSON merge patch `body` applied.
pub fn merge_patch(current: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid merge patch: {e}")))?;
    let mut next = current.clone();
    json_patch::merge(&mut next, &patch);
    Ok(next)
}

/// One server-side apply.
pub struct Apply<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// `Some("status")` through the status subresource.
    pub subresource: Option<&'a str>,
    /// The API version the applier used.
    pub api_version: String,
}

impl Apply<'_> {
    /// `current` (or `base` for a new object) with the applied configuration `body` merged.
    pub fn apply(&self, current: &Value, body: &[u8]) -> Result<Value, ApiError> {
        let applied: Value = serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid apply configuration: {e}")))?;
        if !applied.is_object() || applied["apiVersion"].is_null() || applied["kind"].is_null() {
            return Err(ApiError::bad_request("apply configuration needs apiVersion and kind"));
        }
        let owned = self.owned_part(&applied);
        let fields = field_set(&owned);
        let mut entries: Vec<Value> =
            current["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
        let ours = |e: &Value| {
            e["manager"] == self.manager
                && e["operation"] == "Apply"
                && e["subresource"].as_str() == self.subresource
        };
        let previous = entries.iter().find(|e| ours(e)).map(|e| from_fields_v1(&e["fieldsV1"]));
        let others: BTreeSet<Path> =
            (entries.iter().filter(|e| !ours(e) && e["operation"] == "Apply"))
                .flat_map(|e| from_fields_v1(&e["fieldsV1"]))
                .collect();
        let mut next = current.clone();
        for path in previous.unwrap_or_default().difference(&fields) {
            if !others.contains(path) {
                remove(&mut next, path);
            }
        }
        merge(&mut next, owned);
        entries.retain(|e| !ours(e));
        let mut entry = json!({
            "manager": self.manager,
            "operation": "Apply",
            "apiVersion": self.api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(&fields),
        });
        if let Some(subresource) = self.subresource {
            entry["subresource"] = subresource.into();
        }
        entries.push(entry);
        next["metadata"]["managedFields"] = Value::Array(entries);
        Ok(next)
    }

    /// The part of `applied` this apply owns: `status` through the status subresource,
    /// everything else through the main resource; never the object's identity.
    fn owned_part(&self, applied: &Value) -> Value {
        let mut owned = applied.clone();
        let fields = owned.as_object_mut().expect("checked to be an object");
        match self.subresource {
            Some(_) => fields.retain(|k, _| k == "status"),
            None => {
                fields.remove("status");
            }
        }
        fields.remove("apiVersion");
        fields.remove("kind");
        if let Some(meta) = fields.get_mut("metadata").and_then(Value::as_object_mut) {
            for identity in ["name", "namespace", "resourceVersion", "uid", "managedFields"] {
                meta.remove(identity);
            }
        }
        owned
    }
}

/// Every path in `value`: each object field, recursing into objects (lists are leaves).
fn field_set(value: &Value) -> BTreeSet<Path> {
    paths(value, |key| Some(key))
}

/// The paths of the object fields of `value` whose keys `field` names (`None` skips a key
/// and what is below it), recursing into objects.
fn paths(value: &Value, field: fn(&str) -> Option<&str>) -> BTreeSet<Path> {
    fn walk(
        value: &Value,
        field: fn(&str) -> Option<&str>,
        path: &mut Path,
        out: &mut BTreeSet<Path>,
    ) {
        for (key, child) in value.as_object().into_iter().flatten() {
            if let Some(name) = field(key) {
                path.push(name.to_string());
                out.insert(path.clone());
                walk(child, field, path, out);
                path.pop();
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(value, field, &mut Vec::new(), &mut out);
    out
}

/// `FieldsV1` of a field set: `{"f:spec": {".": {}, "f:image": {}}}`.
fn to_fields_v1(fields: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut node = &mut root;
        for key in path {
            let child = node.entry(format!("f:{key}")).or_insert_with(|| json!({}));
            node = child.as_object_mut().expect("FieldsV1 nodes are objects");
        }
        if fields.iter().any(|other| other.len() > path.len() && other.starts_with(path)) {
            node.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

/// The field set of a `FieldsV1` value.
fn from_fields_v1(value: &Value) -> BTreeSet<Path> {
    paths(value, |key| key.strip_prefix("f:"))
}

/// Removes the field at `path`, if there.
fn remove(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut node = value;
    for key in parents {
        match node.get_mut(key) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(fields) = node.as_object_mut() {
        fields.remove(last);
    }
}

/// Merges `applied` into `target`: objects field by field, anything else replaced.
fn merge(target: &mut Value, applied: Value) {
    match (target, applied) {
        (Value::Object(target), Value::Object(applied)) => {
            for (key, value) in applied {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, applied) => *target = applied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(manager: &str, current: &Value, body: Value) -> Value {
        let apply = Apply { manager, subresource: None, api_version: "v1".into() };
        apply.apply(current, &serde_json::to_vec(&body).unwrap()).unwrap()
    }

    #[test]
    fn apply_merges_and_removes_what_its_manager_dropped_but_not_what_others_own() {
        let first = json!({ "apiVersion": "v1", "kind": "ConfigMap",
            "data": { "a": "1", "b": "2", "c": "3" } });
        let object = apply("op", &json!({ "metadata": { "name": "x" } }), first);
        let other = json!({ "apiVersion": "v1", "kind": "ConfigMap", "data": { "c": "3" } });
        let object = apply("kubectl", &object, other);
        let second = json!({ "apiVersion": "v1", "kind": "ConfigMap", "data": { "a": "9" } });
        let object = apply("op", &object, second);
        assert_eq!(object["data"], json!({ "a": "9", "c": "3" }));
        assert_eq!(object["metadata"]["name"], "x");
        let entries = object["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1]["fieldsV1"], json!({ "f:data": { ".": {}, "f:a": {} } }));
    }

    #[test]
    fn a_null_test_passes_for_a_missing_path_and_a_failed_test_is_invalid() {
        let object = json!({ "metadata": { "name": "x" } });
        let add = br#"[{"op":"test","path":"/metadata/finalizers","value":null},
            {"op":"add","path":"/metadata/finalizers","value":["f"]}]"#;
        let added = json_patch(&object, add, "X", "x").unwrap();
        assert_eq!(added["metadata"]["finalizers"], json!(["f"]));
        assert_eq!(json_patch(&added, add, "X", "x").unwrap_err().code, 422);
    }

    #[test]
    fn a_dropped_object_goes_whole() {
        let body = |status: Value| json!({ "apiVersion": "v1", "kind": "X", "status": status });
        let apply = Apply { manager: "op", subresource: Some("status"), api_version: "v1".into() };
        let bytes = |v: Value| serde_json::to_vec(&v).unwrap();
        let object = apply
            .apply(
                &json!({}),
                &bytes(body(json!({ "upgrade": { "step": "Stopping" }, "phase": "A" }))),
            )
            .unwrap();
        let object = apply.apply(&object, &bytes(body(json!({ "phase": "B" })))).unwrap();
        assert_eq!(object["status"], json!({ "phase": "B" }));
    }
}
