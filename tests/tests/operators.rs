//! Every DataStream operator through the real runtime, at parallelism 1 and 4.

use std::collections::BTreeMap;

use weir::prelude::*;
use weir_tests::{config, sorted};

fn words() -> Vec<String> {
    "the quick brown fox jumps over the lazy dog the end fox"
        .split(' ')
        .map(str::to_string)
        .collect()
}

/// The last (highest) count per word from a stream of rolling counts.
fn final_counts(updates: Vec<(String, u64)>) -> BTreeMap<String, u64> {
    let mut finals = BTreeMap::new();
    for (word, count) in updates {
        let entry = finals.entry(word).or_insert(0);
        *entry = count.max(*entry);
    }
    finals
}

#[test]
fn map_filter_flat_map() {
    for parallelism in [1, 4] {
        let mut env = StreamExecutionEnvironment::new(config(parallelism));
        let out = env
            .from_sequence(1, 100)
            .filter(|x| x % 10 == 0)
            .map(|x| x / 10)
            .flat_map(|x| vec![x; x as usize])
            .collect();
        env.execute().unwrap();
        let expected: Vec<i64> = (1..=10).flat_map(|x| vec![x; x as usize]).collect();
        assert_eq!(sorted(out.take()), expected, "parallelism {parallelism}");
    }
}

#[test]
fn rolling_sum_emits_every_update_and_parallel_equals_sequential() {
    let run = |parallelism| {
        let mut env = StreamExecutionEnvironment::new(config(parallelism));
        let out = env
            .from_collection(words())
            .map(|w| (w, 1u64))
            .key_by(|(w, _)| w.clone())
            .sum(|(_, c)| c)
            .collect();
        env.execute().unwrap();
        sorted(out.take())
    };
    let sequential = run(1);
    assert_eq!(sequential.len(), words().len(), "one update per record");
    assert_eq!(final_counts(sequential.clone())["the"], 3);
    assert_eq!(
        sequential.iter().filter(|(w, _)| w == "the").map(|(_, c)| *c).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(run(4), sequential);
}

#[test]
fn min_max_and_by_variants_follow_flink() {
    // (key, value, tag): min/max update only the field; min_by/max_by keep whole records.
    let input = vec![("a", 5, "first"), ("a", 3, "second"), ("a", 9, "third"), ("a", 3, "fourth")];
    let input: Vec<(String, i32, String)> =
        input.into_iter().map(|(k, v, t)| (k.into(), v, t.into())).collect();
    let mut env = StreamExecutionEnvironment::new(config(2));
    let source = env.from_collection(input);
    let keyed = source.key_by(|(k, _, _)| k.clone());
    let min = keyed.min(|(_, v, _)| v).collect();
    let max = keyed.max(|(_, v, _)| v).collect();
    let min_by = keyed.min_by(|(_, v, _)| *v).collect();
    let max_by = keyed.max_by(|(_, v, _)| *v).collect();
    let reduce = keyed.reduce(|a, b| (a.0, a.1 + b.1, format!("{}+{}", a.2, b.2))).collect();
    env.execute().unwrap();
    let last = |h: weir::connectors::CollectHandle<(String, i32, String)>| {
        let all = h.take();
        assert_eq!(all.len(), 4);
        let last = all.last().unwrap();
        (last.1, last.2.clone())
    };
    assert_eq!(last(min), (3, "first".to_string()));
    assert_eq!(last(max), (9, "first".to_string()));
    assert_eq!(last(min_by), (3, "second".to_string()), "ties keep the earlier record");
    assert_eq!(last(max_by), (9, "third".to_string()));
    assert_eq!(last(reduce), (20, "first+second+third+fourth".to_string()));
}

/// Counts records per key in value state and routes records of odd keys to a side output.
#[derive(Clone, Default)]
struct CountAndSplit {
    count: Option<ValueState<u64>>,
}

fn odd_tag() -> OutputTag<String> {
    OutputTag::new("odd")
}

impl KeyedProcessFunction<u64, u64, (u64, u64)> for CountAndSplit {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, u64>) -> FnResult {
        self.count = Some(ctx.value_state(&ValueStateDescriptor::new("count"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        value: u64,
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut Collector<(u64, u64)>,
    ) -> FnResult {
        let state = self.count.as_ref().unwrap();
        let count = state.value(ctx)?.unwrap_or(0) + 1;
        state.update(ctx, count)?;
        assert_eq!(*ctx.key(), value % 5);
        if ctx.key() % 2 == 1 {
            out.output(&odd_tag(), format!("odd:{value}"));
        } else {
            out.collect((*ctx.key(), count));
        }
        Ok(())
    }
}

#[test]
fn keyed_process_with_value_state_and_side_output() {
    for parallelism in [1, 4] {
        let mut env = StreamExecutionEnvironment::new(config(parallelism));
        let main = env
            .from_sequence(0, 99)
            .map(|x| x as u64)
            .key_by(|x| x % 5)
            .process(CountAndSplit::default());
        let odd = main.get_side_output(&odd_tag()).collect();
        let counts = main.collect();
        env.execute().unwrap();
        let finals = counts.take().into_iter().fold(BTreeMap::new(), |mut m, (k, c)| {
            let e = m.entry(k).or_insert(0);
            *e = c.max(*e);
            m
        });
        assert_eq!(
            finals,
            BTreeMap::from([(0, 20), (2, 20), (4, 20)]),
            "parallelism {parallelism}"
        );
        let odd = odd.take();
        assert_eq!(odd.len(), 40);
        assert!(odd.iter().all(|s| s.starts_with("odd:")));
    }
}

#[derive(Clone, Default)]
struct ListMapReducing {
    list: Option<ListState<u64>>,
    map: Option<MapState<u64, u64>>,
    reducing: Option<ReducingState<u64>>,
}

impl KeyedProcessFunction<u64, u64, (u64, usize, usize, u64)> for ListMapReducing {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, u64>) -> FnResult {
        self.list = Some(ctx.list_state(&ListStateDescriptor::new("seen"))?);
        self.map = Some(ctx.map_state(&MapStateDescriptor::new("by-residue"))?);
        self.reducing = Some(
            ctx.reducing_state(&ReducingStateDescriptor::new("max", |a: &u64, b: &u64| *a.max(b)))?,
        );
        Ok(())
    }

    fn process_element(
        &mut self,
        value: u64,
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut Collector<(u64, usize, usize, u64)>,
    ) -> FnResult {
        let (list, map, reducing) = (
            self.list.as_ref().unwrap(),
            self.map.as_ref().unwrap(),
            self.reducing.as_ref().unwrap(),
        );
        list.add(ctx, value)?;
        map.put(ctx, value % 3, value)?;
        reducing.add(ctx, value)?;
        let key = *ctx.key();
        out.collect((
            key,
            list.get(ctx)?.len(),
            map.entries(ctx)?.len(),
            reducing.get(ctx)?.unwrap(),
        ));
        Ok(())
    }
}

#[test]
fn list_map_and_reducing_state_per_key() {
    let mut env = StreamExecutionEnvironment::new(config(3));
    let out = env
        .from_sequence(0, 59)
        .map(|x| x as u64)
        .key_by(|x| x % 2)
        .process(ListMapReducing::default())
        .collect();
    env.execute().unwrap();
    let all = out.take();
    let last_even = all.iter().filter(|r| r.0 == 0).max_by_key(|r| r.1).unwrap();
    let last_odd = all.iter().filter(|r| r.0 == 1).max_by_key(|r| r.1).unwrap();
    assert_eq!(*last_even, (0, 30, 3, 58));
    assert_eq!(*last_odd, (1, 30, 3, 59));
}

#[test]
fn union_and_co_map() {
    let mut env = StreamExecutionEnvironment::new(config(2));
    let a = env.from_collection(vec![1, 2, 3]);
    let b = env.from_collection(vec![10, 20]);
    let c = env.from_sequence(100, 101).map(|x| x as i32);
    let union = a.union(&[b.clone(), c]).map(|x| x + 1).collect();
    let names = env.from_collection(vec!["x".to_string()]);
    let co = a.connect(&names).map(|n| format!("n{n}"), |s| format!("s{s}")).collect();
    env.execute().unwrap();
    assert_eq!(sorted(union.take()), vec![2, 3, 4, 11, 21, 101, 102]);
    assert_eq!(sorted(co.take()), vec!["n1", "n2", "n3", "sx"]);
}

/// Joins orders with the latest price per product, whichever arrives first.
#[derive(Clone, Default)]
struct PriceJoin {
    price: Option<ValueState<u64>>,
    pending: Option<ListState<u64>>,
}

impl KeyedCoProcessFunction<String, (String, u64), (String, u64), (String, u64)> for PriceJoin {
    fn open(&mut self, ctx: &mut KeyedRuntimeContext<'_, String>) -> FnResult {
        self.price = Some(ctx.value_state(&ValueStateDescriptor::new("price"))?);
        self.pending = Some(ctx.list_state(&ListStateDescriptor::new("pending"))?);
        Ok(())
    }

    fn process_element1(
        &mut self,
        (product, quantity): (String, u64),
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<(String, u64)>,
    ) -> FnResult {
        match self.price.as_ref().unwrap().value(ctx)? {
            Some(price) => out.collect((product, quantity * price)),
            None => self.pending.as_ref().unwrap().add(ctx, quantity)?,
        }
        Ok(())
    }

    fn process_element2(
        &mut self,
        (product, price): (String, u64),
        ctx: &mut KeyedContext<'_, String>,
        out: &mut Collector<(String, u64)>,
    ) -> FnResult {
        self.price.as_ref().unwrap().update(ctx, price)?;
        let pending = self.pending.as_ref().unwrap();
        for quantity in pending.get(ctx)? {
            out.collect((product.clone(), quantity * price));
        }
        pending.clear(ctx).map_err(Into::into)
    }
}

#[test]
fn keyed_co_process_shares_state_between_inputs() {
    let orders: Vec<(String, u64)> =
        vec![("apple".into(), 2), ("pear".into(), 1), ("apple".into(), 3), ("fig".into(), 4)];
    let prices: Vec<(String, u64)> = vec![("apple".into(), 10), ("pear".into(), 7)];
    let mut env = StreamExecutionEnvironment::new(config(4));
    let out = env
        .from_collection(orders)
        .key_by(|(p, _)| p.clone())
        .connect(&env.from_collection(prices).key_by(|(p, _)| p.clone()))
        .process(PriceJoin::default())
        .collect();
    env.execute().unwrap();
    let expected: Vec<(String, u64)> =
        vec![("apple".into(), 20), ("apple".into(), 30), ("pear".into(), 7)];
    assert_eq!(sorted(out.take()), expected, "fig has no price and is never emitted");
}

/// Emits `(subtask index, value)` to show where records went.
#[derive(Clone)]
struct WhereAmI;

impl ProcessFunction<i64, (usize, i64)> for WhereAmI {
    fn process_element(
        &mut self,
        value: i64,
        ctx: &mut ProcessContext<'_>,
        out: &mut Collector<(usize, i64)>,
    ) -> FnResult {
        out.collect((ctx.subtask().index, value));
        Ok(())
    }
}

#[test]
fn partitioning_strategies() {
    let mut env = StreamExecutionEnvironment::new(config(4));
    let source = env.from_sequence(0, 399);
    let forward = source.forward().process(WhereAmI).collect();
    let rebalance = source.rebalance().process(WhereAmI).collect();
    let shuffle = source.shuffle().process(WhereAmI).collect();
    let broadcast = source.broadcast().process(WhereAmI).collect();
    env.execute().unwrap();

    let per_subtask = |records: &[(usize, i64)]| {
        (0..4).map(|s| records.iter().filter(|(i, _)| *i == s).count()).collect::<Vec<_>>()
    };
    assert_eq!(per_subtask(&forward.take()), vec![100, 100, 100, 100], "sequence splits evenly");
    assert_eq!(per_subtask(&rebalance.take()), vec![100, 100, 100, 100]);
    let shuffled = shuffle.take();
    assert_eq!(shuffled.len(), 400);
    assert!(per_subtask(&shuffled).iter().all(|n| *n > 40), "{:?}", per_subtask(&shuffled));
    let broadcast = broadcast.take();
    assert_eq!(broadcast.len(), 1600);
    assert_eq!(per_subtask(&broadcast), vec![400, 400, 400, 400]);
}

#[test]
fn parallelism_precedence_operator_over_environment_over_config() {
    let mut env = StreamExecutionEnvironment::new(config(3)); // the command line said 3
    env.set_parallelism(2); // code overrides the command line
    let source = env.from_sequence(1, 10);
    let mapped = source.map(|x| x).set_parallelism(4);
    env.set_parallelism(1); // applies to operators created from here on, as in Flink
    mapped.filter(|_| true).discard();
    let plan = env.execution_plan().unwrap();
    assert_eq!(plan, "Sequence Source x2\nMap x4\nFilter -> Discard x1\n");
}

#[test]
fn chaining_controls() {
    let build = |chaining: bool, tweak: fn(DataStream<i64>) -> DataStream<i64>| {
        let mut env = StreamExecutionEnvironment::new(config(2));
        if !chaining {
            env.disable_operator_chaining();
        }
        let mapped = tweak(env.from_sequence(1, 10).map(|x| x + 1));
        mapped.filter(|_| true).discard();
        env.execution_plan().unwrap()
    };
    assert_eq!(build(true, |s| s), "Sequence Source -> Map -> Filter -> Discard x2\n");
    assert_eq!(build(false, |s| s), "Sequence Source x2\nMap x2\nFilter x2\nDiscard x2\n");
    assert_eq!(
        build(true, |s| s.start_new_chain()),
        "Sequence Source x2\nMap -> Filter -> Discard x2\n"
    );
    assert_eq!(
        build(true, |s| s.disable_chaining()),
        "Sequence Source x2\nMap x2\nFilter -> Discard x2\n"
    );
}

#[test]
fn chained_and_unchained_runs_agree() {
    // Rolling sums per key: intermediate values depend on how upstream subtasks interleave,
    // the final value per key (the maximum, all inputs being positive) and the number of
    // updates do not.
    let run = |chaining: bool| {
        let mut env = StreamExecutionEnvironment::new(config(3));
        if !chaining {
            env.disable_operator_chaining();
        }
        let out = env
            .from_sequence(0, 999)
            .map(|x| x * 3)
            .filter(|x| x % 2 == 0)
            .map(|x| (x % 10, x))
            .key_by(|(key, _)| *key)
            .reduce(|a, b| (a.0, a.1 + b.1))
            .collect();
        env.execute().unwrap();
        let updates = out.take();
        let mut finals = BTreeMap::new();
        for (key, sum) in &updates {
            let entry = finals.entry(*key).or_insert(0);
            *entry = (*sum).max(*entry);
        }
        (updates.len(), finals)
    };
    let chained = run(true);
    assert_eq!(chained.0, 500);
    assert_eq!(
        chained.1.values().sum::<i64>(),
        (0..1000).map(|x| x * 3).filter(|x| x % 2 == 0).sum::<i64>()
    );
    assert_eq!(chained, run(false));
}

#[test]
fn stream_methods_on_a_keyed_stream_see_records_partitioned_by_key() {
    let mut env = StreamExecutionEnvironment::new(config(3));
    let out = env.from_sequence(0, 299).key_by(|x| x % 7).map(|x| x).process(WhereAmI).collect();
    env.execute().unwrap();
    let mut subtask_of_key = BTreeMap::new();
    for (subtask, value) in out.take() {
        let owner = *subtask_of_key.entry(value % 7).or_insert(subtask);
        assert_eq!(owner, subtask, "key {} seen on two subtasks", value % 7);
    }
    assert_eq!(subtask_of_key.len(), 7);
}
