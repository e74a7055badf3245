//! The objects a StreamJob owns, built as pure functions of the job and its plan: names and
//! labels, the ConfigMap, the coordinator Service, the pods, and the pod template overlay.

pub mod config;
pub mod names;
pub mod pods;
pub mod service;
pub mod template;
