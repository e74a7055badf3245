//! Kafka source and sink against a real Kafka-protocol broker (tansu, started by the test):
//! exactly-once through failures, idle partitions, deserialization errors, throughput.

#![cfg(feature = "kafka")]

#[path = "kafka/tagging.rs"]
mod tagging;
#[path = "kafka/timing.rs"]
mod timing;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use weir::connectors::CollectHandle;
use weir::connectors::kafka::{
    DeadLetter, DeserializationErrorPolicy, KafkaMessage, KafkaProperties, KafkaSink, KafkaSource,
    KafkaTransaction, ProducerRecord, StoppingOffsets, TransactionalKafkaSink,
    producers_left_behind,
};
use weir::prelude::*;
use weir::{CheckpointConfig, RestartStrategy};
use weir_tests::services::KafkaBroker;
use weir_tests::{config, sorted};

use tagging::{Ledger, Tagging, split_committed};
use timing::{Timed, Timings};

const TIMEOUT: Duration = Duration::from_secs(30);

fn client(broker: &KafkaBroker) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", broker.bootstrap());
    config
}

fn properties(broker: &KafkaBroker) -> KafkaProperties {
    properties_at(&broker.bootstrap())
}

fn properties_at(bootstrap: &str) -> KafkaProperties {
    KafkaProperties::new(bootstrap).set("session.timeout.ms", "6000")
}

fn create_topic(broker: &KafkaBroker, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client(broker).create().unwrap();
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let results = runtime.block_on(admin.create_topics(&[new], &AdminOptions::new())).unwrap();
    for result in results {
        result.unwrap();
    }
}

/// Writes `(partition, value)` pairs, in order, into the empty `topic` and waits until all
/// are acknowledged; returns the offsets where they end, to stop a bounded source at.
///
/// Tests stop at these explicit offsets, not at `StoppingOffsets::Latest`, because tansu
/// reports a partition's end as the last batch's first offset + 1 (its bug, seen with
/// several records in one batch).
fn produce(
    broker: &KafkaBroker,
    topic: &str,
    records: impl IntoIterator<Item = (i32, String)>,
) -> StoppingOffsets {
    let producer: BaseProducer = client(broker).create().unwrap();
    let mut ends = HashMap::new();
    for (partition, value) in records {
        *ends.entry((topic.to_string(), partition)).or_insert(0) += 1;
        let mut record = BaseRecord::<(), String>::to(topic).payload(&value).partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(TIMEOUT).unwrap();
    StoppingOffsets::Explicit(ends)
}

/// Which records a reader asks the broker for (`isolation.level`).
#[derive(Clone, Copy)]
enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

/// How long a reader waits for more once it has what it expects: duplicates would arrive
/// within it.
const QUIET: Duration = Duration::from_secs(2);

/// How long a reader waits for the records it expects.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Every value of `topic`, read at `isolation`: until at least `expected` values arrived
/// (or [`READ_TIMEOUT`] passed), then until nothing more arrives for [`QUIET`]. (tansu's
/// reported partition ends cannot be trusted; and the quiet time alone is not enough on a
/// loaded machine, where a fetch was seen to take a second.)
fn read_all(
    broker: &KafkaBroker,
    topic: &str,
    partitions: i32,
    isolation: Isolation,
    expected: usize,
) -> Vec<String> {
    let level = match isolation {
        Isolation::ReadCommitted => "read_committed",
        Isolation::ReadUncommitted => "read_uncommitted",
    };
    let consumer: BaseConsumer = client(broker)
        .set("isolation.level", level)
        .set("enable.auto.commit", "false")
        .set("group.id", "weir-test-reader")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut values = Vec::new();
    let started = Instant::now();
    let mut last = Instant::now();
    while last.elapsed() < QUIET || (values.len() < expected && started.elapsed() < READ_TIMEOUT) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.unwrap();
            values.push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
            last = Instant::now();
        }
    }
    values
}

/// `key,timestamp` records: the payload as text.
fn key_and_time(message: &KafkaMessage<'_>) -> Result<(u64, i64), String> {
    let text =
        std::str::from_utf8(message.payload.unwrap_or_default()).map_err(|e| e.to_string())?;
    let (key, time) = text.split_once(',').ok_or_else(|| format!("not key,time: {text:?}"))?;
    Ok((
        key.parse().map_err(|_| format!("bad key {key:?}"))?,
        time.parse().map_err(|_| format!("bad time {time:?}"))?,
    ))
}

fn checkpointed(parallelism: usize, interval_ms: u64, dir: &std::path::Path) -> ExecutionConfig {
    ExecutionConfig {
        checkpointing: CheckpointConfig {
            interval_ms,
            dir: dir.display().to_string(),
            ..Default::default()
        },
        restart: Some(RestartStrategy::FixedDelay { attempts: 30, delay_ms: 20 }),
        ..config(parallelism)
    }
}

#[test]
fn kafka_to_keyed_window_to_kafka_exactly_once_through_kills() {
    const EVENTS: u64 = 3_000;
    const KEYS: u64 = 7;
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "events", 2);
    create_topic(&broker, "counts", 2);
    // Record i: key i % 7 at time 5 i ms, on partition i % 2 (times rise in each partition).
    let stop = produce(
        &broker,
        "events",
        (0..EVENTS).map(|i| ((i % 2) as i32, format!("{},{}", i % KEYS, i * 5))),
    );
    let mut expected = BTreeMap::new();
    for i in 0..EVENTS {
        *expected.entry((i % KEYS, (i * 5 / 1000) as i64)).or_insert(0u64) += 1;
    }
    let expected: Vec<String> = expected
        .into_iter()
        .map(|((key, window), count)| format!("{key},{window},{count}"))
        .collect();

    // At least 10 kills at random points: record counts over all attempts, replays included.
    let mut kill_points = HashSet::new();
    while kill_points.len() < 12 {
        kill_points.insert(fastrand::u64(100..EVENTS));
    }
    let kill_points = Arc::new(kill_points);
    let seen = Arc::new(AtomicU64::new(0));
    let kills = Arc::new(AtomicU64::new(0));

    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(&dir.path().join("committed"));
    let mut env = StreamExecutionEnvironment::new(checkpointed(2, 150, dir.path()));
    let source =
        KafkaSource::new(properties(&broker), &["events"], key_and_time).bounded(stop).watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|(_, ts), _| *ts),
            Duration::from_millis(50),
        );
    let (kill_at, seen_in_map, killed) = (kill_points.clone(), seen.clone(), kills.clone());
    let (sink_properties, sink_ledger) = (properties(&broker), ledger.clone());
    env.add_source("Kafka", false, move |_| source.clone())
        .map(move |(key, ts): (u64, i64)| {
            std::thread::sleep(Duration::from_micros(500));
            let n = seen_in_map.fetch_add(1, Ordering::SeqCst);
            if kill_at.contains(&n) {
                killed.fetch_add(1, Ordering::SeqCst);
                panic!("killed at record {n}");
            }
            (key, ts / 1000, 1u64)
        })
        .key_by(|(key, _, _): &(u64, i64, u64)| *key)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .reduce(|(key, window, a), (_, _, b)| (key, window, a + b))
        .map(|(key, window, count)| format!("{key},{window},{count}"))
        .sink_to_two_phase("Kafka", move |_| Tagging {
            sink: TransactionalKafkaSink::new(
                sink_properties.clone(),
                "weir-test-counts",
                |value: &String| ProducerRecord::new("counts", value.as_bytes()),
            ),
            ledger: sink_ledger.clone(),
        });
    env.execute().unwrap();

    let written = read_all(&broker, "counts", 2, Isolation::ReadUncommitted, expected.len());
    let (kept, dropped) = split_committed(written, &ledger.committed());
    eprintln!(
        "{} results from committed transactions, {} from aborted ones left out",
        kept.len(),
        dropped.len()
    );
    assert_eq!(sorted(kept), sorted(expected), "each window result exactly once");
    assert!(kills.load(Ordering::SeqCst) >= 10, "killed {} times", kills.load(Ordering::SeqCst));
    assert_eq!(
        producers_left_behind(&broker.bootstrap()),
        0,
        "the restored instances took the failed ones' producers and closed them at the end"
    );
}

/// Set in the child process of a process-death test: its checkpoint directory.
const DEATH_DIR: &str = "WEIR_TEST_KAFKA_DEATH_DIR";
/// Set in the child process of a process-death test: the broker.
const DEATH_BOOTSTRAP: &str = "WEIR_TEST_KAFKA_DEATH_BOOTSTRAP";
/// Records in `numbers` (half in each of its two partitions).
const NUMBERS: u64 = 800;

/// The process-death tests' job: the numbers of `numbers`, slowly, into `numbers-out`
/// through the tagging exactly-once sink (with a write-ahead copy if `write_ahead`),
/// checkpointing every 100 ms into `dir`; from the latest checkpoint there when `restore`.
fn numbers_job(
    bootstrap: &str,
    dir: &Path,
    ledger: Ledger,
    restore: bool,
    write_ahead: bool,
) -> weir::Result<()> {
    let config = checkpointed(1, 100, dir);
    let config = ExecutionConfig {
        restart: Some(RestartStrategy::None),
        checkpointing: CheckpointConfig {
            restore: restore.then(|| "latest".to_string()),
            ..config.checkpointing
        },
        ..config
    };
    let mut env = StreamExecutionEnvironment::new(config);
    env.set_job_name("numbers-to-kafka");
    let ends = (0..2).map(|partition| (("numbers".to_string(), partition), NUMBERS as i64 / 2));
    let stop = StoppingOffsets::Explicit(ends.collect());
    let props = properties_at(bootstrap);
    let source = KafkaSource::new(props.clone(), &["numbers"], key_and_time).bounded(stop);
    env.add_source("Kafka", false, move |_| source.clone())
        .map(|(i, _)| {
            std::thread::sleep(Duration::from_millis(1));
            i
        })
        .sink_to_two_phase("Kafka", move |_| {
            let sink =
                TransactionalKafkaSink::new(props.clone(), "weir-test-death", |value: &String| {
                    ProducerRecord::new("numbers-out", value.as_bytes())
                });
            let sink = if write_ahead { sink } else { sink.without_write_ahead() };
            Tagging { sink, ledger: ledger.clone() }
        });
    env.execute().map(drop)
}

/// A process that died between a checkpoint's completion and the sink's commit of the
/// transaction pre-committed for it.
struct Death {
    broker: KafkaBroker,
    dir: tempfile::TempDir,
    ledger: Ledger,
    /// The token of the transaction it died committing.
    dying: String,
    /// The tokens of the transactions it committed.
    committed: HashSet<String>,
}

/// Runs the process-death test `test` (the caller) in a child process: this test binary with
/// `DEATH_DIR` set, which runs [`numbers_job`] and aborts at its 4th commit, just before
/// it. In the child, does not return.
fn child_dying_at_commit(test: &str, write_ahead: bool) -> Death {
    if let Ok(dir) = std::env::var(DEATH_DIR) {
        let bootstrap = std::env::var(DEATH_BOOTSTRAP).unwrap();
        let ledger = Ledger::new(&Path::new(&dir).join("committed")).dying_at_commit(4);
        let result = numbers_job(&bootstrap, Path::new(&dir), ledger, false, write_ahead);
        panic!("the child process should have died at its 4th commit: {result:?}");
    }
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "numbers", 2);
    create_topic(&broker, "numbers-out", 2);
    produce(&broker, "numbers", (0..NUMBERS).map(|i| ((i % 2) as i32, format!("{i},0"))));
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(DEATH_DIR, dir.path())
        .env(DEATH_BOOTSTRAP, broker.bootstrap())
        .output()
        .unwrap();
    let ledger = Ledger::new(&dir.path().join("committed"));
    let child_output = String::from_utf8_lossy(&child.stderr);
    let dying = ledger.dying_token().unwrap_or_else(|| panic!("no death:\n{child_output}"));
    assert!(!child.status.success(), "the child died: {:?}", child.status);
    let committed = ledger.committed();
    assert_eq!(committed.len(), 3, "the child committed three transactions");
    Death { broker, dir, ledger, dying, committed }
}

/// The process dies (aborts) between a checkpoint's completion and the sink's commit of the
/// transaction pre-committed for it; the job is restored from that checkpoint in a new
/// process. librdkafka cannot commit the dead producer's transaction (see
/// `TransactionalKafkaSink`): the restored sink aborts it and writes its records again from
/// the write-ahead copy in the checkpoint. Every number arrives exactly once: the records of
/// a transaction recovered that way are in the topic twice under its token, once aborted
/// and once committed, and those of every other committed transaction once; the
/// transactions the dead process left open are aborted, what followed the checkpoint is
/// written again once.
#[test]
fn kafka_exactly_once_sink_after_process_death_writes_the_uncommitted_transaction_again() {
    let test =
        "kafka_exactly_once_sink_after_process_death_writes_the_uncommitted_transaction_again";
    let Death { broker, dir, ledger, dying, committed: committed_before } =
        child_dying_at_commit(test, true);

    numbers_job(&broker.bootstrap(), dir.path(), ledger.clone(), true, true).unwrap();

    // Recovered transactions the dead process had not committed: written twice.
    let rewritten: HashSet<String> =
        ledger.recovered().difference(&committed_before).cloned().collect();
    assert!(rewritten.contains(&dying), "the transaction the process died committing");
    let written = read_all(&broker, "numbers-out", 2, Isolation::ReadUncommitted, NUMBERS as usize);
    let committed = ledger.committed();
    let mut tokens: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for record in &written {
        let (token, value) = record.split_once('|').unwrap();
        if committed.contains(token) {
            tokens.entry(value.parse().unwrap()).or_default().push(token.to_string());
        }
    }
    for n in 0..NUMBERS {
        let tokens = tokens.get(&n).map(Vec::as_slice).unwrap_or_default();
        let once = matches!(tokens, [token] if !rewritten.contains(token));
        let rewritten_once =
            matches!(tokens, [first, second] if first == second && rewritten.contains(first));
        assert!(once || rewritten_once, "{n} committed exactly once: tokens {tokens:?}");
    }
    let recovered = tokens.values().filter(|tokens| tokens.len() == 2).count();
    assert!(recovered > 0, "the transaction the process died committing had records");
    eprintln!("{NUMBERS} numbers committed once, {recovered} of them written again on restore");
}

/// As above without the write-ahead copy (the sink's default): the transaction the process
/// died committing cannot be committed, so its records are lost. This pins down that
/// guarantee, and that everything else arrives exactly once (the transactions the dead
/// process left open are aborted, what followed the checkpoint is written again once).
#[test]
fn kafka_exactly_once_sink_without_write_ahead_loses_only_what_a_dead_process_could_not_commit() {
    let test = "kafka_exactly_once_sink_without_write_ahead_loses_only_what_a_dead_process_could_not_commit";
    let Death { broker, dir, ledger, dying, .. } = child_dying_at_commit(test, false);

    let restored = ledger.clone().in_a_new_process();
    numbers_job(&broker.bootstrap(), dir.path(), restored, true, false).unwrap();

    let written = read_all(&broker, "numbers-out", 2, Isolation::ReadUncommitted, 1);
    let (kept, dropped) = split_committed(written, &ledger.committed());
    let kept: Vec<u64> = sorted(kept.iter().map(|n| n.parse().unwrap()).collect());
    let mut unique = kept.clone();
    unique.dedup();
    assert_eq!(unique.len(), kept.len(), "no number committed twice");
    let lost: Vec<u64> = (dropped.iter().filter(|(token, _)| *token == dying))
        .map(|(_, n)| n.parse().unwrap())
        .collect();
    assert!(!lost.is_empty(), "the transaction the process died committing had records");
    assert!(
        lost.iter().all(|n| kept.binary_search(n).is_err()),
        "the records of the transaction the process died committing are not written again"
    );
    let uncommitted: HashSet<u64> = dropped.iter().map(|(_, n)| n.parse().unwrap()).collect();
    let missing: Vec<u64> = (0..NUMBERS).filter(|n| kept.binary_search(n).is_err()).collect();
    assert!(
        missing.iter().all(|n| uncommitted.contains(n)),
        "every number missing was written, in a transaction that did not commit"
    );
    eprintln!(
        "{} numbers committed once, {} lost ({} in the transaction the process died \
         committing)",
        kept.len(),
        missing.len(),
        lost.len()
    );
}

/// Writes `value` into `txn` of `sink`, pre-commits and commits it.
fn write_and_commit(
    sink: &mut TransactionalKafkaSink<String>,
    mut txn: KafkaTransaction,
    value: &str,
) {
    sink.write(&mut txn, value.to_string(), None).unwrap();
    sink.pre_commit(&mut txn).unwrap();
    sink.commit(txn).unwrap();
}

/// Aborting a transaction whose records are still queued in the producer (a failed task's
/// open transaction, aborted on restore) returns at once and leaves nothing committed;
/// librdkafka's abort waits for delivery reports that nothing else would serve.
#[test]
fn kafka_transaction_abort_with_queued_records_is_prompt() {
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "aborted", 1);
    let mut sink =
        TransactionalKafkaSink::new(properties(&broker), "weir-test-abort", |value: &String| {
            ProducerRecord::new("aborted", value.as_bytes())
        });
    sink.open(&SubtaskInfo::new("sink", 0, 1, 128)).unwrap();
    let mut txn = sink.begin_transaction().unwrap();
    for i in 0..1_000 {
        sink.write(&mut txn, format!("record {i}"), None).unwrap();
    }
    let started = Instant::now();
    sink.abort(txn).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "abort took {:?}", started.elapsed());
    let txn = sink.begin_transaction().unwrap();
    write_and_commit(&mut sink, txn, "kept");
    let seen = read_all(&broker, "aborted", 1, Isolation::ReadCommitted, 1);
    assert!(seen.contains(&"kept".to_string()), "the next transaction commits: {seen:?}");
}

/// Producers are pooled: a committed transaction's producer begins the next one under the
/// same id, a slot is added only while every producer holds a transaction; a restore fences
/// every slot the pool had, also those no restored transaction names.
#[test]
fn kafka_exactly_once_sink_pools_producers_and_restore_fences_every_slot() {
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "pooled", 1);
    let sink = || {
        let mut sink =
            TransactionalKafkaSink::new(properties(&broker), "weir-test-pool", |value: &String| {
                ProducerRecord::new("pooled", value.as_bytes())
            });
        sink.open(&SubtaskInfo::new("sink", 0, 1, 128)).unwrap();
        sink
    };
    let mut first = sink();
    let ids = |txns: &[&KafkaTransaction]| -> Vec<(String, usize, u64, usize)> {
        let id = |t: &KafkaTransaction| (t.transactional_id.clone(), t.slot, t.number, t.pool_size);
        txns.iter().map(|t| id(t)).collect()
    };
    let mut txns = Vec::new();
    for n in 0..3 {
        let txn = first.begin_transaction().unwrap();
        txns.push(txn.clone());
        write_and_commit(&mut first, txn, &format!("committed {n}"));
    }
    let id0 = "weir-test-pool-0-0".to_string();
    assert_eq!(
        ids(&txns.iter().collect::<Vec<_>>()),
        [(id0.clone(), 0, 0, 1), (id0.clone(), 0, 1, 1), (id0.clone(), 0, 2, 1)],
        "one producer while each transaction commits before the next begins"
    );
    // Three transactions at once (checkpoints not completed): three slots.
    let open: Vec<KafkaTransaction> = (0..3)
        .map(|n| {
            let mut txn = first.begin_transaction().unwrap();
            first.write(&mut txn, format!("open {n}"), None).unwrap();
            first.pre_commit(&mut txn).unwrap();
            txn
        })
        .collect();
    assert_eq!(
        open.iter().map(|t| (t.slot, t.pool_size)).collect::<Vec<_>>(),
        [(0, 1), (1, 2), (2, 3)]
    );

    // A restore from a checkpoint naming only the last one, while the first instance still
    // lives (a zombie): the other slots are fenced too.
    let mut restored = sink();
    restored.recover_and_abort(open[2].clone()).unwrap();
    let txn = restored.begin_transaction().unwrap();
    assert!(txn.slot < 3 && txn.pool_size == 3, "a fenced slot is reused: {txn:?}");
    for mut zombie in open[..2].iter().cloned() {
        first.write(&mut zombie, "zombie".to_string(), None).unwrap();
        let error = first.pre_commit(&mut zombie).expect_err("the zombie's producers are fenced");
        assert!(error.to_string().contains("ProducerFenced"), "{error}");
    }
    write_and_commit(&mut restored, txn, "after the restore");
    let seen = read_all(&broker, "pooled", 1, Isolation::ReadUncommitted, 1);
    assert!(seen.contains(&"after the restore".to_string()), "{seen:?}");
}

/// Producers a dropped sink instance leaves for its successor are taken only by a sink
/// writing to the same brokers: two jobs in one process under the same transactional id
/// prefix but with other brokers (two tests, say) keep to their own.
#[test]
fn kafka_exactly_once_sink_takes_left_producers_only_from_its_own_brokers() {
    let (first, second) = (KafkaBroker::start().unwrap(), KafkaBroker::start().unwrap());
    for broker in [&first, &second] {
        create_topic(broker, "left", 1);
    }
    let sink = |broker: &KafkaBroker| {
        let mut sink =
            TransactionalKafkaSink::new(properties(broker), "weir-test-left", |value: &String| {
                ProducerRecord::new("left", value.as_bytes())
            });
        sink.open(&SubtaskInfo::new("sink", 0, 1, 128)).unwrap();
        sink
    };
    let mut dropped = sink(&first);
    let txn = dropped.begin_transaction().unwrap();
    write_and_commit(&mut dropped, txn, "first");
    drop(dropped);

    let mut other = sink(&second);
    let txn = other.begin_transaction().unwrap();
    write_and_commit(&mut other, txn, "second");
    assert_eq!(read_all(&second, "left", 1, Isolation::ReadUncommitted, 1), ["second"]);
    assert_eq!(read_all(&first, "left", 1, Isolation::ReadUncommitted, 1), ["first"]);
}

/// A restore that finds the producer of a pre-committed transaction gone (its process died)
/// tells from the transaction's commit marker whether it committed: one that did is left
/// alone, one that did not is written again from its write-ahead copy, with its marker.
/// Without write-ahead, transactions keep no copy and no marker.
#[test]
fn kafka_exactly_once_sink_recovers_a_dead_producers_transactions_by_their_markers() {
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "recovered", 1);
    let sink_with = |write_ahead: bool| {
        let sink = TransactionalKafkaSink::new(
            properties(&broker),
            "weir-test-recover",
            |value: &String| ProducerRecord::new("recovered", value.as_bytes()),
        );
        let mut sink = if write_ahead { sink } else { sink.without_write_ahead() };
        sink.open(&SubtaskInfo::new("sink", 0, 1, 128)).unwrap();
        sink
    };
    let sink = || sink_with(true);
    // The "dead" instance is never dropped, so it leaves no producers to its successor.
    let mut dead = sink();
    let pre_committed = |sink: &mut TransactionalKafkaSink<String>, value: &str| {
        let mut txn = sink.begin_transaction().unwrap();
        sink.write(&mut txn, value.to_string(), None).unwrap();
        sink.pre_commit(&mut txn).unwrap();
        txn
    };
    let committed = pre_committed(&mut dead, "committed");
    dead.commit(committed.clone()).unwrap();
    let uncommitted = pre_committed(&mut dead, "uncommitted");
    assert_eq!(committed.transactional_id, uncommitted.transactional_id, "one slot");
    assert_eq!(
        uncommitted.records.records().unwrap(),
        [ProducerRecord::new("recovered", "uncommitted")]
    );

    let mut restored = sink();
    restored.recover_and_commit(committed).unwrap();
    restored.recover_and_commit(uncommitted.clone()).unwrap();

    let mut seen = read_all(&broker, "recovered", 1, Isolation::ReadUncommitted, 1);
    seen.sort();
    assert_eq!(seen, ["committed", "uncommitted", "uncommitted"], "written again once");
    let marker: BaseConsumer =
        client(&broker).set("group.id", &uncommitted.transactional_id).create().unwrap();
    let mut partition = TopicPartitionList::new();
    partition.add_partition("recovered", 0);
    let offsets = marker.committed_offsets(partition, TIMEOUT).unwrap();
    assert_eq!(
        offsets.find_partition("recovered", 0).unwrap().offset(),
        Offset::Offset(uncommitted.marker.unwrap()),
        "the transaction written again committed, with its marker"
    );

    let mut plain = sink_with(false);
    let txn = pre_committed(&mut plain, "no copy");
    assert!(txn.records.is_empty() && txn.marker.is_none(), "no write-ahead copy: {txn:?}");
    plain.abort(txn).unwrap();
}

/// The transaction timeout is checked against the job's own checkpoint interval.
#[test]
fn kafka_transaction_timeout_must_exceed_the_jobs_checkpoint_interval() {
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "timeout", 1);
    let run = |interval_ms: u64| {
        let dir = tempfile::tempdir().unwrap();
        let config = checkpointed(1, interval_ms, dir.path());
        let mut env = StreamExecutionEnvironment::new(ExecutionConfig {
            restart: Some(RestartStrategy::None),
            ..config
        });
        let props = properties(&broker).set("transaction.timeout.ms", "2000");
        env.from_collection(vec!["a".to_string()]).sink_to_two_phase("Kafka", move |_| {
            TransactionalKafkaSink::new(props.clone(), "weir-test-timeout", |value: &String| {
                ProducerRecord::new("timeout", value.as_bytes())
            })
        });
        env.execute().map(drop)
    };
    let error = run(5_000).unwrap_err().to_string();
    assert!(
        error.contains(
            "transaction.timeout.ms (2000 ms) must exceed the job's checkpoint interval (5000 ms)"
        ),
        "{error}"
    );
    run(1_000).expect("a transaction timeout above the job's interval passes");
    let written = read_all(&broker, "timeout", 1, Isolation::ReadUncommitted, 1);
    assert_eq!(written, ["a"]);
}

/// Runs a job reading `topic` (4 partitions, parallelism 4) until `enough` results arrived
/// or `wait` passed; returns the window results `(key, window)` seen.
fn windows_within(
    broker: &KafkaBroker,
    topic: &str,
    idleness: Option<Duration>,
    wait: Duration,
) -> Vec<(u64, i64)> {
    let mut env = StreamExecutionEnvironment::new(config(4));
    let strategy = WatermarkStrategy::for_monotonous_timestamps()
        .with_timestamp_assigner(|(_, ts): &(u64, i64), _| *ts);
    let strategy = match idleness {
        Some(idleness) => strategy.with_idleness(idleness),
        None => strategy,
    };
    let source = KafkaSource::new(properties(broker), &[topic], key_and_time)
        .watermarks(strategy, Duration::from_millis(50));
    let output = env
        .add_source("Kafka", false, move |_| source.clone())
        .map(|(key, ts)| (key, ts / 1000))
        .key_by(|(key, _): &(u64, i64)| *key)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .reduce(|a, _| a)
        .collect();
    let client = env.execute_async().unwrap();
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    while Instant::now() < deadline && seen.len() < 4 {
        std::thread::sleep(Duration::from_millis(100));
        seen.extend(output.take());
    }
    client.cancel();
    let _ = client.wait();
    sorted(seen)
}

#[test]
fn kafka_empty_partition_does_not_stall_windows_with_idleness() {
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "sparse", 4);
    // Partitions 0..3 get records of key 0 at 0..5000 ms; partition 3 stays empty.
    produce(&broker, "sparse", (0..300).map(|i| (i % 3, format!("0,{}", i * 50 / 3))));
    // Without idleness the empty partition holds its subtask's watermark at the minimum.
    let stalled = windows_within(&broker, "sparse", None, Duration::from_secs(3));
    assert!(stalled.is_empty(), "no window can fire without idleness: {stalled:?}");
    let fired = windows_within(&broker, "sparse", Some(Duration::from_millis(300)), TIMEOUT);
    assert_eq!(
        fired,
        [(0, 0), (0, 1), (0, 2), (0, 3)],
        "windows fire once the empty partition is idle"
    );
}

#[test]
fn kafka_deserialization_errors_fail_naming_the_record_are_skipped_or_dead_lettered() {
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "mixed", 2);
    let records = [(0, "1,10"), (0, "garbage"), (1, "2,20"), (1, "3,x"), (0, "4,40")];
    let stop = produce(&broker, "mixed", records.map(|(p, v)| (p, v.to_string())));
    let dead_letters = OutputTag::<DeadLetter>::new("dead-letters");
    let run = |policy| {
        let mut env = StreamExecutionEnvironment::new(config(2));
        let source = KafkaSource::new(properties(&broker), &["mixed"], key_and_time)
            .bounded(stop.clone())
            .on_deserialization_error(policy);
        let stream = env.add_source("Kafka", false, move |_| source.clone());
        let rejected = stream.get_side_output(&dead_letters).collect();
        let output = stream.collect();
        env.execute().map(|_| (sorted(output.take()), rejected.take()))
    };
    let error = run(DeserializationErrorPolicy::Fail).unwrap_err().to_string();
    assert!(
        error.contains("mixed[0] at offset 1") && error.contains("garbage")
            || error.contains("mixed[1] at offset 1") && error.contains("bad time"),
        "{error}"
    );
    let expected = [(1, 10), (2, 20), (4, 40)];
    let (output, rejected) = run(DeserializationErrorPolicy::Skip).unwrap();
    assert_eq!(output, expected);
    assert!(rejected.is_empty(), "skipped records go nowhere: {rejected:?}");

    let (output, rejected) =
        run(DeserializationErrorPolicy::DeadLetter(dead_letters.clone())).unwrap();
    assert_eq!(output, expected, "the good records are read as before");
    let mut rejected = rejected;
    rejected.sort_by_key(|letter| letter.partition);
    assert!(rejected.iter().all(|d| d.timestamp.is_some()), "Kafka timestamps kept: {rejected:?}");
    let letter = |partition, value: &str, error: &str, timestamp| DeadLetter {
        topic: "mixed".into(),
        partition,
        offset: 1,
        key: None,
        value: Some(value.as_bytes().to_vec()),
        timestamp,
        error: error.into(),
    };
    assert_eq!(
        rejected,
        [
            letter(
                0,
                "garbage",
                "not key,time: \"garbage\"",
                rejected.first().and_then(|d| d.timestamp)
            ),
            letter(1, "3,x", "bad time \"x\"", rejected.get(1).and_then(|d| d.timestamp)),
        ],
        "each rejected record once, with its bytes, position and error"
    );
}

/// Reads the job's output until `expected` values arrived or the timeout passed.
fn collect_until(output: &CollectHandle<String>, expected: usize) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    while Instant::now() < deadline && seen.len() < expected {
        std::thread::sleep(Duration::from_millis(100));
        seen.extend(output.take());
    }
    sorted(seen)
}

/// Partitions added to an existing topic are found the same way (a partition no subtask
/// reads yet), but tansu cannot add partitions (CreatePartitions: UnsupportedFeature), so
/// the test discovers the partitions of a new topic.
#[test]
fn kafka_topic_pattern_discovers_new_topics_and_partitions_from_earliest() {
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "metrics-a", 2);
    create_topic(&broker, "other", 1);
    produce(&broker, "metrics-a", [(0, "a0".to_string()), (1, "a1".to_string())]);
    produce(&broker, "other", [(0, "not matched".to_string())]);
    let mut env = StreamExecutionEnvironment::new(config(3));
    let payload = |message: &KafkaMessage<'_>| {
        Ok(String::from_utf8_lossy(message.payload.unwrap_or_default()).into_owned())
    };
    let source = KafkaSource::with_topic_pattern(properties(&broker), "metrics-.*", payload)
        .unwrap()
        .partition_discovery(Some(Duration::from_millis(300)));
    let output = env.add_source("Kafka", false, move |_| source.clone()).collect();
    let client = env.execute_async().unwrap();
    assert_eq!(collect_until(&output, 2), ["a0", "a1"], "the matching topic at the start");

    // Written before the source finds them: discovered partitions start at the earliest.
    create_topic(&broker, "metrics-b", 3);
    produce(&broker, "metrics-b", (0..3).map(|p| (p, format!("b{p}"))));
    create_topic(&broker, "metricsx", 1);
    produce(&broker, "metricsx", [(0, "not matched either".to_string())]);
    assert_eq!(collect_until(&output, 3), ["b0", "b1", "b2"], "the new topic's partitions");
    produce(&broker, "metrics-a", [(1, "a1 again".to_string())]);
    assert_eq!(collect_until(&output, 1), ["a1 again"], "old partitions keep being read");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(output.take(), Vec::<String>::new(), "nothing else, nothing twice");
    client.cancel();
    let _ = client.wait();
}

#[test]
fn kafka_source_offsets_restore_at_another_parallelism_and_commit_to_the_group() {
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "numbers", 3);
    let stop = produce(&broker, "numbers", (0..600u64).map(|i| ((i % 3) as i32, format!("{i},0"))));
    let dir = tempfile::tempdir().unwrap();
    let props = properties(&broker).set("group.id", "weir-numbers");
    let run = |parallelism: usize, stop_after: Option<u64>| {
        let config = checkpointed(parallelism, 50, dir.path());
        let config = ExecutionConfig {
            restart: Some(RestartStrategy::None),
            checkpointing: CheckpointConfig {
                restore: stop_after.is_none().then(|| "latest".to_string()),
                ..config.checkpointing
            },
            ..config
        };
        let mut env = StreamExecutionEnvironment::new(config);
        env.set_job_name("numbers");
        let source =
            KafkaSource::new(props.clone(), &["numbers"], key_and_time).bounded(stop.clone());
        let output = env
            .add_source("Kafka", false, move |_| source.clone())
            .uid("kafka")
            .map(move |(i, _)| {
                if stop_after.is_some_and(|stop| i == stop) {
                    panic!("stop at {i}");
                }
                std::thread::sleep(Duration::from_millis(2));
                i
            })
            .collect();
        let result = env.execute();
        (result, output.take())
    };
    // The first run fails on record 500 after some checkpoints; the second, at another
    // parallelism, restores the latest and reads only what follows it.
    let (result, first) = run(2, Some(500));
    assert!(result.is_err());
    let (result, second) = run(3, None);
    result.unwrap();
    let mut all: Vec<u64> = first.into_iter().chain(second.iter().copied()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all, (0..600).collect::<Vec<_>>(), "nothing lost");
    assert!(second.len() < 600, "the restore resumed from checkpointed offsets");

    let consumer: BaseConsumer = client(&broker).set("group.id", "weir-numbers").create().unwrap();
    let mut list = TopicPartitionList::new();
    for partition in 0..3 {
        list.add_partition("numbers", partition);
    }
    let committed = consumer.committed_offsets(list, TIMEOUT).unwrap();
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum();
    assert!(total > 0, "offsets committed to the group on checkpoints: {committed:?}");
}

/// How the throughput test writes.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    AtLeastOnce,
    /// With checkpoints every second; with or without the sink's write-ahead copy.
    ExactlyOnce {
        write_ahead: bool,
    },
}

/// Reads `events` records from a topic, maps them and writes them to another with
/// `delivery`, both topics of 2 partitions, at parallelism 2; prints the events per second
/// and, for exactly-once, the time of the sink's calls at checkpoints.
fn map_to_kafka_throughput(events: u64, delivery: Delivery) {
    let broker = KafkaBroker::start().unwrap();
    create_topic(&broker, "in", 2);
    create_topic(&broker, "out", 2);
    let stop =
        produce(&broker, "in", (0..events).map(|i| ((i % 2) as i32, format!("{},{i}", i % 100))));
    let dir = tempfile::tempdir().unwrap();
    let config = match delivery {
        Delivery::AtLeastOnce => config(2),
        Delivery::ExactlyOnce { .. } => checkpointed(2, 1_000, dir.path()),
    };
    let mut env = StreamExecutionEnvironment::new(config);
    let source = KafkaSource::new(properties(&broker), &["in"], key_and_time).bounded(stop);
    let sink_properties = properties(&broker).set("linger.ms", "5");
    let serializer = |(key, ts): &(u64, i64)| {
        ProducerRecord::new("out", format!("{key},{ts}")).with_key(key.to_string())
    };
    let mapped =
        env.add_source("Kafka", false, move |_| source.clone()).map(|(key, ts)| (key * 2, ts));
    let timings = Arc::new(Mutex::new(Timings::default()));
    match delivery {
        Delivery::AtLeastOnce => {
            let sink = KafkaSink::new(sink_properties, serializer);
            mapped.sink_to("Kafka", move |_| sink.clone());
        }
        Delivery::ExactlyOnce { write_ahead } => {
            let timings = timings.clone();
            mapped.sink_to_two_phase("Kafka", move |_| {
                let sink = TransactionalKafkaSink::new(
                    sink_properties.clone(),
                    "weir-test-throughput",
                    serializer,
                );
                let sink = if write_ahead { sink } else { sink.without_write_ahead() };
                Timed { sink, timings: timings.clone() }
            });
        }
    }
    let start = Instant::now();
    let result = env.execute().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(result.restarts, 0, "the job ran without failures");
    assert_eq!(producers_left_behind(&broker.bootstrap()), 0, "the sinks closed their producers");
    let written = read_all(&broker, "out", 2, Isolation::ReadCommitted, events as usize);
    assert_eq!(written.len() as u64, events, "every record written once (no failure)");
    eprintln!(
        "Kafka -> map -> Kafka ({delivery:?}): {events} events in {elapsed:.2?} = {:.0} events/s",
        events as f64 / elapsed.as_secs_f64()
    );
    if let Delivery::ExactlyOnce { .. } = delivery {
        let timings = timings.lock().unwrap();
        assert!(timings.commit.count() > 0, "transactions committed: {timings:?}");
        eprintln!(
            "  sink calls over both subtasks: begin transaction {}; pre-commit {}; commit {}",
            timings.begin, timings.pre_commit, timings.commit
        );
    }
}

/// The throughput tests' events: `WEIR_KAFKA_THROUGHPUT_EVENTS`, 200 000 by default.
fn throughput_events() -> u64 {
    std::env::var("WEIR_KAFKA_THROUGHPUT_EVENTS").map_or(200_000, |n| n.parse().unwrap())
}

#[test]
fn kafka_map_to_kafka_throughput() {
    map_to_kafka_throughput(throughput_events(), Delivery::AtLeastOnce);
}

#[test]
fn kafka_map_to_kafka_exactly_once_throughput() {
    map_to_kafka_throughput(throughput_events(), Delivery::ExactlyOnce { write_ahead: false });
}

#[test]
fn kafka_map_to_kafka_exactly_once_write_ahead_throughput() {
    map_to_kafka_throughput(throughput_events(), Delivery::ExactlyOnce { write_ahead: true });
}
