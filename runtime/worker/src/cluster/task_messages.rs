//! Checkpoint traffic between the coordinator and remote tasks, as protocol messages:
//! commands to tasks, and the tasks' acknowledgements with handles of the state files their
//! worker wrote.

use std::time::Duration;

use weir_rpc::v1::{self, task_command::Command};
use weir_types::{CheckpointBarrier, SavepointFormat, SnapshotType};

use crate::checkpoint::{Acknowledgement, StoredState, TaskCommand};
use crate::{Error, Result};

/// `command` for task `task_id` of `attempt`.
pub(crate) fn command_message(attempt: u64, task_id: u32, command: TaskCommand) -> v1::TaskCommand {
    let command = match command {
        TaskCommand::Trigger(barrier) => Command::Trigger(barrier_message(barrier)),
        TaskCommand::StopAfter(barrier) => Command::StopAfter(barrier_message(barrier)),
        TaskCommand::Complete(id) => Command::Complete(id),
        TaskCommand::Abort(id) => Command::Abort(id),
    };
    v1::TaskCommand { attempt, task_id, command: Some(command) }
}

/// The command in `message`, if it carries one.
pub(crate) fn command_of(message: &v1::TaskCommand) -> Option<TaskCommand> {
    Some(match message.command.as_ref()? {
        Command::Trigger(barrier) => TaskCommand::Trigger(barrier_of(barrier)),
        Command::StopAfter(barrier) => TaskCommand::StopAfter(barrier_of(barrier)),
        Command::Complete(id) => TaskCommand::Complete(*id),
        Command::Abort(id) => TaskCommand::Abort(*id),
    })
}

fn barrier_message(barrier: CheckpointBarrier) -> v1::Barrier {
    v1::Barrier {
        id: barrier.id,
        timestamp: barrier.timestamp,
        savepoint: barrier.kind.is_savepoint(),
        native: barrier.kind == SnapshotType::Savepoint(SavepointFormat::Native),
    }
}

fn barrier_of(barrier: &v1::Barrier) -> CheckpointBarrier {
    let kind = match (barrier.savepoint, barrier.native) {
        (false, _) => SnapshotType::Checkpoint,
        (true, false) => SnapshotType::Savepoint(SavepointFormat::Canonical),
        (true, true) => SnapshotType::Savepoint(SavepointFormat::Native),
    };
    CheckpointBarrier { id: barrier.id, timestamp: barrier.timestamp, kind }
}

/// `acknowledgement` of task `task_id` of `attempt`, ready to send: handles of the files the
/// worker wrote, never their bytes.
pub(crate) fn acknowledged_message(
    attempt: u64,
    task_id: u32,
    acknowledgement: Acknowledgement,
) -> Result<v1::Acknowledged> {
    let states = acknowledgement
        .states
        .into_iter()
        .map(|stored| {
            let state = serde_json::to_string(&stored.state)
                .map_err(|e| Error::Cluster(format!("cannot encode a state entry: {e}")))?;
            Ok(v1::StoredState {
                operator_id: stored.operator_id,
                operator_name: stored.operator_name,
                parallelism: u32::try_from(stored.parallelism).unwrap_or(u32::MAX),
                state,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(v1::Acknowledged {
        attempt,
        task_id,
        checkpoint: acknowledgement.checkpoint,
        states,
        alignment_us: u64::try_from(acknowledgement.alignment.as_micros()).unwrap_or(u64::MAX),
        finished: acknowledgement.finished,
        unaligned: acknowledgement.unaligned,
        written: acknowledgement.written,
    })
}

/// The acknowledgement in `message`, for the coordinator's task `task`.
pub(crate) fn acknowledgement_of(
    message: v1::Acknowledged,
    task: usize,
) -> Result<Acknowledgement> {
    let states = message
        .states
        .into_iter()
        .map(|stored| {
            let state = serde_json::from_str(&stored.state).map_err(|e| {
                Error::Cluster(format!("a worker sent a state entry that does not parse: {e}"))
            })?;
            Ok(StoredState {
                operator_id: stored.operator_id,
                operator_name: stored.operator_name,
                parallelism: stored.parallelism as usize,
                state,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Acknowledgement {
        task,
        checkpoint: message.checkpoint,
        states,
        written: message.written,
        alignment: Duration::from_micros(message.alignment_us),
        finished: message.finished,
        unaligned: message.unaligned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_survive_the_wire() {
        let savepoint = |format| SnapshotType::Savepoint(format);
        let barrier = CheckpointBarrier {
            id: 7,
            timestamp: 1_000,
            kind: savepoint(SavepointFormat::Canonical),
        };
        let native = CheckpointBarrier { kind: savepoint(SavepointFormat::Native), ..barrier };
        let checkpoint = CheckpointBarrier::checkpoint(8, 2_000);
        for command in [
            TaskCommand::Trigger(barrier),
            TaskCommand::Trigger(native),
            TaskCommand::Trigger(checkpoint),
            TaskCommand::StopAfter(barrier),
            TaskCommand::Complete(3),
            TaskCommand::Abort(4),
        ] {
            let message = command_message(2, 5, command);
            assert_eq!((message.attempt, message.task_id), (2, 5));
            assert_eq!(command_of(&message), Some(command));
        }
    }

    #[test]
    fn acknowledgements_carry_handles_and_survive_the_wire() {
        let state = weir_checkpoint::SubtaskState {
            subtask: 1,
            file: "count-1".into(),
            key_group_range: weir_types::KeyGroupRange::for_subtask(128, 2, 1),
            key_groups: Vec::new(),
            operator_lists: Vec::new(),
            in_flight: None,
            shared_files: vec!["abc-000012.sst".into()],
            native: None,
        };
        let stored = StoredState {
            operator_id: "count".into(),
            operator_name: "Count".into(),
            parallelism: 2,
            state,
        };
        let acknowledgement = Acknowledgement {
            task: 0,
            checkpoint: 4,
            states: vec![stored.clone()],
            written: 1 << 30,
            alignment: Duration::from_millis(3),
            finished: true,
            unaligned: false,
        };
        let message = acknowledged_message(1, 7, acknowledgement).unwrap();
        let size = weir_rpc::prost::Message::encoded_len(&message);
        assert!(size < 1024, "a gibibyte of state acknowledged in {size} bytes");
        let back = acknowledgement_of(message, 7).unwrap();
        assert_eq!((back.task, back.checkpoint, back.written), (7, 4, 1 << 30));
        assert_eq!(back.states, [stored]);
        assert!(back.finished && back.alignment == Duration::from_millis(3));
    }
}
