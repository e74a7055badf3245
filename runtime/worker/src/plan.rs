//! Planning: resolves each operator's parallelism and edge partitioning, checks the graph, and
//! groups operators into chains (tasks), following Flink's rules.

use crate::graph::{ChainingStrategy, NodeFactory, NodeId, Partitioning, StreamGraph};
use crate::{Error, ExecutionConfig, Result};

/// One chain of operators that runs as a single task per subtask.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The first operator; it reads the task's network inputs (or is a source).
    pub head: NodeId,
    /// Every operator of the chain, head first, in graph order.
    pub nodes: Vec<NodeId>,
    /// Flink-style name: operator names joined by ` -> `.
    pub name: String,
    /// Parallelism shared by every operator of the chain.
    pub parallelism: usize,
}

/// The executable shape of a graph.
#[derive(Clone, Debug)]
pub struct JobPlan {
    /// Parallelism per node.
    pub parallelism: Vec<usize>,
    /// Resolved partitioning per node and input edge.
    pub partitioning: Vec<Vec<Partitioning>>,
    /// Whether each input edge of each node is chained (in-task) rather than a channel.
    pub chained: Vec<Vec<bool>>,
    /// Chain index of each node.
    pub chain_of: Vec<usize>,
    /// The chains, in graph order of their heads.
    pub chains: Vec<Chain>,
}

impl JobPlan {
    /// Plans `graph` under `config`.
    pub fn new(graph: &StreamGraph, config: &ExecutionConfig) -> Result<JobPlan> {
        if graph.nodes.is_empty() {
            return Err(Error::EmptyGraph);
        }
        config.validate().map_err(Error::InvalidConfig)?;
        let parallelism = resolve_parallelism(graph, config)?;
        let mut plan = JobPlan {
            parallelism,
            partitioning: Vec::new(),
            chained: Vec::new(),
            chain_of: Vec::new(),
            chains: Vec::new(),
        };
        for node in &graph.nodes {
            let mut partitionings = Vec::new();
            let mut chained = Vec::new();
            for edge in &node.inputs {
                let upstream = graph.node(edge.source);
                let (up, down) = (plan.parallelism[upstream.id.0], plan.parallelism[node.id.0]);
                let partitioning = match &edge.partitioning {
                    Partitioning::Default if up == down => Partitioning::Forward,
                    Partitioning::Default => Partitioning::Rebalance,
                    Partitioning::Forward if up != down => {
                        return Err(invalid(
                            &node.name,
                            format!(
                                "forward partitioning from '{}' needs equal parallelism, but it \
                                 is {up} there and {down} here; use rebalance() or the same \
                                 parallelism",
                                upstream.name
                            ),
                        ));
                    }
                    other => other.clone(),
                };
                chained.push(
                    config.chaining
                        && node.inputs.len() == 1
                        && matches!(node.factory, NodeFactory::OneInput(_))
                        && matches!(partitioning, Partitioning::Forward)
                        && node.chaining == ChainingStrategy::Always
                        && upstream.chaining != ChainingStrategy::Never,
                );
                partitionings.push(partitioning);
            }
            let chain = match chained.first() {
                Some(true) => plan.chain_of[node.inputs[0].source.0],
                _ => {
                    plan.chains.push(Chain {
                        head: node.id,
                        nodes: Vec::new(),
                        name: String::new(),
                        parallelism: plan.parallelism[node.id.0],
                    });
                    plan.chains.len() - 1
                }
            };
            plan.chain_of.push(chain);
            let entry = &mut plan.chains[chain];
            entry.nodes.push(node.id);
            entry.name = if entry.name.is_empty() {
                node.name.clone()
            } else {
                format!("{} -> {}", entry.name, node.name)
            };
            plan.partitioning.push(partitionings);
            plan.chained.push(chained);
        }
        Ok(plan)
    }

    /// One line per task (chained operator names and parallelism), as Flink's
    /// `getExecutionPlan` in text; processes of a cluster compare it to check they built the
    /// same job.
    pub fn describe(&self) -> String {
        self.chains.iter().map(|c| format!("{} x{}\n", c.name, c.parallelism)).collect()
    }

    /// The slots an attempt needs: the widest chain's parallelism (slot `i` holds subtask
    /// `i` of every chain).
    pub fn slots_needed(&self) -> usize {
        self.chains.iter().map(|c| c.parallelism).max().unwrap_or(0)
    }

    /// Whether input `edge` of `node` runs inside the task rather than over channels.
    pub fn is_chained(&self, node: NodeId, edge: usize) -> bool {
        self.chained[node.0][edge]
    }
}

fn resolve_parallelism(graph: &StreamGraph, config: &ExecutionConfig) -> Result<Vec<usize>> {
    let max = config.max_parallelism;
    if max == 0 || max > 32_768 {
        return Err(invalid("<job>", format!("max parallelism {max} must be in 1..=32768")));
    }
    graph
        .nodes
        .iter()
        .map(|node| {
            let parallelism = match (node.non_parallel, node.parallelism) {
                (true, Some(p)) if p != 1 => {
                    return Err(invalid(
                        &node.name,
                        format!(
                            "this operator is not parallel; its parallelism must be 1, not {p}"
                        ),
                    ));
                }
                (true, _) => 1,
                (false, explicit) => {
                    explicit.or(node.environment_parallelism).unwrap_or(config.parallelism)
                }
            };
            if parallelism == 0 {
                return Err(invalid(&node.name, "parallelism must be at least 1".to_string()));
            }
            if parallelism > max {
                return Err(invalid(
                    &node.name,
                    format!(
                        "parallelism {parallelism} exceeds the max parallelism {max} (the number \
                         of key groups); lower the parallelism or raise max_parallelism"
                    ),
                ));
            }
            if let NodeFactory::TwoInput(_) = node.factory {
                let slots = node.inputs.iter().map(|e| e.slot).collect::<Vec<_>>();
                if !slots.contains(&crate::InputSlot::First)
                    || !slots.contains(&crate::InputSlot::Second)
                {
                    return Err(invalid(
                        &node.name,
                        "a two-input operator needs both inputs".into(),
                    ));
                }
            }
            Ok(parallelism)
        })
        .collect()
}

fn invalid(operator: &str, reason: String) -> Error {
    Error::InvalidGraph { operator: operator.to_string(), reason }
}
