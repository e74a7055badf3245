//! The resource types the emulator serves, and what the API server does differently for each.

/// One served resource type.
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// The plural in URLs.
    pub plural: &'static str,
    /// The object kind.
    pub kind: &'static str,
    /// Whether `status` is a subresource: the main endpoint ignores status changes and
    /// `/status` ignores everything else.
    pub status: bool,
    /// Whether `metadata.generation` counts changes outside metadata and status.
    pub generation: bool,
}

impl Resource {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        match self.group {
            "" => self.version.to_string(),
            group => format!("{group}/{}", self.version),
        }
    }
}

const fn resource(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    (status, generation): (bool, bool),
) -> Resource {
    Resource { group, version, plural, kind, status, generation }
}

/// Every served resource type; all are namespaced.
pub static RESOURCES: &[Resource] = &[
    resource("weir.dev", "v1alpha1", "streamjobs", "StreamJob", (true, true)),
    resource("", "v1", "pods", "Pod", (true, false)),
    resource("", "v1", "services", "Service", (true, false)),
    resource("", "v1", "configmaps", "ConfigMap", (false, false)),
    resource("", "v1", "secrets", "Secret", (false, false)),
    resource("", "v1", "events", "Event", (false, false)),
    resource("events.k8s.io", "v1", "events", "Event", (false, false)),
    resource("coordination.k8s.io", "v1", "leases", "Lease", (false, false)),
];

/// The resource at `group`/`version`/`plural`, if served.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}
