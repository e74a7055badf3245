//! Checkpoint traffic between the coordinator and remote tasks, as protocol messages:
//! commands to tasks, and the tasks' acknowledgements with their state files.

use std::time::Duration;

use weir_rpc::v1::{self, task_command::Command};
use weir_types::{CheckpointBarrier, SnapshotType};

use crate::checkpoint::{Acknowledgement, StateFile, TaskCommand};
use crate::{Error, Result};

/// `command` for task `task_id` of `attempt`.
pub(crate) fn command_message(attempt: u64, task_id: u32, command: TaskCommand) -> v1::TaskCommand {
    let command = match command {
        TaskCommand::Trigger(barrier) => Command::Trigger(v1::Barrier {
            id: barrier.id,
            timestamp: barrier.timestamp,
            savepoint: barrier.kind == SnapshotType::Savepoint,
        }),
        TaskCommand::Complete(id) => Command::Complete(id),
        TaskCommand::Abort(id) => Command::Abort(id),
    };
    v1::TaskCommand { attempt, task_id, command: Some(command) }
}

/// The command in `message`, if it carries one.
pub(crate) fn command_of(message: &v1::TaskCommand) -> Option<TaskCommand> {
    Some(match message.command.as_ref()? {
        Command::Trigger(barrier) => TaskCommand::Trigger(CheckpointBarrier {
            id: barrier.id,
            timestamp: barrier.timestamp,
            kind: if barrier.savepoint {
                SnapshotType::Savepoint
            } else {
                SnapshotType::Checkpoint
            },
        }),
        Command::Complete(id) => TaskCommand::Complete(*id),
        Command::Abort(id) => TaskCommand::Abort(*id),
    })
}

/// `acknowledgement` of task `task_id` of `attempt`, ready to send. State in a backend's
/// own files cannot travel: the coordinator asks workers for self-contained snapshots.
pub(crate) fn acknowledged_message(
    attempt: u64,
    task_id: u32,
    acknowledgement: Acknowledgement,
) -> Result<v1::Acknowledged> {
    let files = acknowledgement
        .files
        .into_iter()
        .map(|file| {
            if file.native.is_some() {
                return Err(Error::Cluster(format!(
                    "operator '{}' took a native (incremental) checkpoint, which cannot be sent \
                     to the coordinator",
                    file.operator_name
                )));
            }
            let state = serde_json::to_string(&file.state)
                .map_err(|e| Error::Cluster(format!("cannot encode a state entry: {e}")))?;
            Ok(v1::StateFile {
                operator_id: file.operator_id,
                operator_name: file.operator_name,
                parallelism: u32::try_from(file.parallelism).unwrap_or(u32::MAX),
                name: file.name,
                bytes: file.bytes.to_vec(),
                state,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(v1::Acknowledged {
        attempt,
        task_id,
        checkpoint: acknowledgement.checkpoint,
        files,
        alignment_us: u64::try_from(acknowledgement.alignment.as_micros()).unwrap_or(u64::MAX),
        finished: acknowledgement.finished,
        unaligned: acknowledgement.unaligned,
    })
}

/// The acknowledgement in `message`, for the coordinator's task `task`.
pub(crate) fn acknowledgement_of(
    message: v1::Acknowledged,
    task: usize,
) -> Result<Acknowledgement> {
    let files = message
        .files
        .into_iter()
        .map(|file| {
            let state = serde_json::from_str(&file.state).map_err(|e| {
                Error::Cluster(format!("a worker sent a state entry that does not parse: {e}"))
            })?;
            Ok(StateFile {
                operator_id: file.operator_id,
                operator_name: file.operator_name,
                parallelism: file.parallelism as usize,
                name: file.name,
                bytes: file.bytes.into(),
                state,
                native: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Acknowledgement {
        task,
        checkpoint: message.checkpoint,
        files,
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
        let barrier = CheckpointBarrier { id: 7, timestamp: 1_000, kind: SnapshotType::Savepoint };
        for command in
            [TaskCommand::Trigger(barrier), TaskCommand::Complete(3), TaskCommand::Abort(4)]
        {
            let message = command_message(2, 5, command);
            assert_eq!((message.attempt, message.task_id), (2, 5));
            assert_eq!(command_of(&message), Some(command));
        }
    }
}
