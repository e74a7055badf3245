//! The deployment plan of a StreamJob: worker count, each pod's memory by the memory model,
//! and the hash that tells whether running pods match the spec. Invalid settings stop here,
//! before any pod exists.

use weir_memory::{MemoryBreakdown, MemoryConfig};

use crate::crd::{PodMemory, StreamJob, StreamJobSpec};
use crate::{Error, Result};

/// What the pods of a spec look like.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Worker pods: ceil(parallelism / slotsPerWorker).
    pub workers: u32,
    /// The coordinator's memory (one slot: it runs no tasks).
    pub coordinator: MemoryBreakdown,
    /// Each worker's memory, with `slotsPerWorker` slots.
    pub worker: MemoryBreakdown,
    /// Hash of the spec fields that shape the pods (all but `state`, the upgrade mode and the
    /// savepoint nonce, which act on a deployment without replacing it).
    pub spec_hash: String,
}

impl Plan {
    /// The plan of `job`, or why its settings cannot work.
    pub fn of(job: &StreamJob) -> Result<Plan> {
        let spec = &job.spec;
        let coordinator = memory("coordinator", &spec.coordinator.memory, 1)?;
        let worker = memory("worker", &spec.worker.memory, spec.slots_per_worker)?;
        Ok(Plan {
            workers: spec.parallelism.div_ceil(spec.slots_per_worker),
            coordinator,
            worker,
            spec_hash: spec_hash(spec)?,
        })
    }

    /// The breakdowns for the status.
    pub fn memory_status(&self) -> PodMemory {
        PodMemory { coordinator: (&self.coordinator).into(), worker: (&self.worker).into() }
    }
}

/// The memory model's breakdown of one pod with `slots` slots.
fn memory(role: &str, config: &MemoryConfig, slots: u32) -> Result<MemoryBreakdown> {
    let config = MemoryConfig { slots: Some(slots), ..config.clone() };
    weir_memory::breakdown(&config).map_err(|e| Error::InvalidSpec(format!("{role} memory: {e}")))
}

/// A stable hash (murmur3 of the JSON) of the spec without the fields that do not shape pods.
fn spec_hash(spec: &StreamJobSpec) -> Result<String> {
    let shaping = StreamJobSpec {
        state: Default::default(),
        upgrade_mode: Default::default(),
        savepoint_trigger_nonce: None,
        ..spec.clone()
    };
    let json = serde_json::to_vec(&shaping)
        .map_err(|e| Error::Serialize { what: "the spec", message: e.to_string() })?;
    Ok(format!("{:08x}", mur3::murmurhash3_x86_32(&json, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::stream_job;

    #[test]
    fn workers_round_up_and_memory_follows_the_model() {
        let mut job = stream_job();
        job.spec.parallelism = 5;
        job.spec.slots_per_worker = 2;
        let plan = Plan::of(&job).unwrap();
        assert_eq!(plan.workers, 3);
        assert_eq!(plan.worker.slots, 2);
        assert_eq!(plan.coordinator.slots, 1);
        assert_eq!(plan.memory_status().worker.process, "1 GiB");
    }

    #[test]
    fn impossible_memory_is_an_invalid_spec_naming_the_pod_and_the_fix() {
        let mut job = stream_job();
        job.spec.worker.memory.process_size = weir_memory::ByteSize::mib(128);
        let error = Plan::of(&job).unwrap_err().to_string();
        assert!(error.starts_with("invalid spec: worker memory:"), "{error}");
        assert!(error.contains("fix:"), "{error}");
    }

    #[test]
    fn only_pod_shaping_fields_change_the_hash() {
        let job = stream_job();
        let hash = Plan::of(&job).unwrap().spec_hash;
        let mut suspended = job.clone();
        suspended.spec.state = crate::crd::DesiredState::Suspended;
        suspended.spec.savepoint_trigger_nonce = Some(3);
        assert_eq!(Plan::of(&suspended).unwrap().spec_hash, hash);
        let mut rescaled = job;
        rescaled.spec.parallelism = 3;
        assert_ne!(Plan::of(&rescaled).unwrap().spec_hash, hash);
    }
}
