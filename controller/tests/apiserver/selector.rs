//! Label and field selectors as the `labelSelector` and `fieldSelector` query parameters
//! spell them: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` and `!k`, joined by
//! commas (all must hold).

use serde_json::Value;

use crate::apiserver::errors::ApiError;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Parses a label selector.
    pub fn labels(text: &str) -> Result<Selector, ApiError> {
        split(text).into_iter().map(requirement).collect::<Result<_, _>>().map(Selector)
    }

    /// Parses a field selector; only `metadata.name` and `metadata.namespace` are supported,
    /// with `=`, `==` and `!=`.
    pub fn fields(text: &str) -> Result<Selector, ApiError> {
        let selector = Selector::labels(text)?;
        for requirement in &selector.0 {
            let key = match requirement {
                Requirement::In(key, values) | Requirement::NotIn(key, values)
                    if values.len() == 1 =>
                {
                    key
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unsupported field selector {text:?}"
                    )));
                }
            };
            if key != "metadata.name" && key != "metadata.namespace" {
                return Err(ApiError::bad_request(format!("field label not supported: {key}")));
            }
        }
        Ok(selector)
    }

    /// Whether the labels of `object` match.
    pub fn matches_labels(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.matches(|key| labels[key].as_str())
    }

    /// Whether the fields of `object` match.
    pub fn matches_fields(&self, object: &Value) -> bool {
        self.matches(|key| match key {
            "metadata.name" => object["metadata"]["name"].as_str(),
            "metadata.namespace" => object["metadata"]["namespace"].as_str(),
            _ => None,
        })
    }

    fn matches<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::In(key, values) => {
                lookup(key).is_some_and(|v| values.iter().any(|w| w == v))
            }
            Requirement::NotIn(key, values) => {
                !lookup(key).is_some_and(|v| values.iter().any(|w| w == v))
            }
            Requirement::Exists(key) => lookup(key).is_some(),
            Requirement::NotExists(key) => lookup(key).is_none(),
        })
    }
}

/// The comma-separated parts of `text`, keeping commas inside parentheses.
fn split(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

fn requirement(part: &str) -> Result<Requirement, ApiError> {
    let invalid = || ApiError::bad_request(format!("unable to parse requirement {part:?}"));
    let key = |k: &str| {
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            Err(invalid())
        } else {
            Ok(k.to_string())
        }
    };
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotIn(key(k)?, vec![v.trim().to_string()]));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::In(key(k)?, vec![v.trim().to_string()]));
    }
    for (word, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((k, values)) = part.split_once(word) {
            let values = values.trim().strip_prefix('(').and_then(|v| v.strip_suffix(')'));
            let values =
                values.ok_or_else(invalid)?.split(',').map(|v| v.trim().to_string()).collect();
            let k = key(k)?;
            return Ok(if negated {
                Requirement::NotIn(k, values)
            } else {
                Requirement::In(k, values)
            });
        }
    }
    match part.strip_prefix('!') {
        Some(k) => Ok(Requirement::NotExists(key(k)?)),
        None => Ok(Requirement::Exists(key(part)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_based_and_equality_requirements_combine() {
        let pod = json!({ "metadata": { "labels": { "app": "wc", "role": "worker" } } });
        let yes = ["app=wc", "app==wc,role", "role in (worker, coordinator)", "!gone,app!=x", ""];
        for text in yes {
            assert!(Selector::labels(text).unwrap().matches_labels(&pod), "{text}");
        }
        for text in ["app=x", "role notin (worker)", "!role", "gone"] {
            assert!(!Selector::labels(text).unwrap().matches_labels(&pod), "{text}");
        }
        assert!(Selector::fields("spec.nodeName=a").is_err());
    }
}
