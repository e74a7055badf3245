//! Window joins (Flink's `DataStream.join(...).where(...).equalTo(...).window(...)`): records
//! of two streams with equal keys in the same window are paired, every left with every right.
//!
//! Built from the public pieces, as Flink builds it from a co-group: both inputs are tagged
//! and unioned, keyed by their join key, windowed, and each firing window emits the cross
//! product of its left and right records.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_operators::Collector;
use weir_operators::builtin::window::{ProcessWindowFunction, WindowAssigner, WindowContext};
use weir_operators::function::FnResult;
use weir_types::{Data, Key};

use crate::DataStream;
use crate::job::OperatorSettings;

/// A record of either join input.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "A: Data, B: Data"))]
pub enum JoinInput<A, B> {
    /// From the first (left) stream.
    Left(A),
    /// From the second (right) stream.
    Right(B),
}

/// Two streams to be joined; name the key of each with [`Self::where_key`] and
/// [`JoinWhere::equal_to`].
pub struct JoinedStreams<A, B> {
    left: DataStream<A>,
    right: DataStream<B>,
}

impl<A: Data, B: Data> JoinedStreams<A, B> {
    pub(crate) fn new(left: DataStream<A>, right: DataStream<B>) -> Self {
        JoinedStreams { left, right }
    }

    /// The key of left records (Flink's `where`).
    pub fn where_key<K: Key, F>(self, key: F) -> JoinWhere<A, B, K>
    where
        F: Fn(&A) -> K + Send + Sync + 'static,
    {
        JoinWhere { streams: self, left_key: Arc::new(key) }
    }
}

/// A join with its left key; name the right key next.
pub struct JoinWhere<A, B, K> {
    streams: JoinedStreams<A, B>,
    left_key: Arc<dyn Fn(&A) -> K + Send + Sync>,
}

impl<A: Data, B: Data, K: Key> JoinWhere<A, B, K> {
    /// The key of right records (Flink's `equalTo`).
    pub fn equal_to<F>(self, key: F) -> JoinEqualTo<A, B, K>
    where
        F: Fn(&B) -> K + Send + Sync + 'static,
    {
        JoinEqualTo { streams: self.streams, left_key: self.left_key, right_key: Arc::new(key) }
    }
}

/// A join with both keys; choose the windows next.
pub struct JoinEqualTo<A, B, K> {
    streams: JoinedStreams<A, B>,
    left_key: Arc<dyn Fn(&A) -> K + Send + Sync>,
    right_key: Arc<dyn Fn(&B) -> K + Send + Sync>,
}

impl<A: Data, B: Data, K: Key> JoinEqualTo<A, B, K> {
    /// Joins records that fall into the same window of `assigner`.
    pub fn window<W>(self, assigner: W) -> WindowJoin<A, B, K, W>
    where
        W: WindowAssigner<JoinInput<A, B>>,
    {
        WindowJoin { keys: self, assigner, allowed_lateness: Duration::ZERO }
    }
}

/// A windowed join, ready to apply a join function.
pub struct WindowJoin<A, B, K, W> {
    keys: JoinEqualTo<A, B, K>,
    assigner: W,
    allowed_lateness: Duration,
}

impl<A: Data, B: Data, K: Key, W: WindowAssigner<JoinInput<A, B>>> WindowJoin<A, B, K, W> {
    /// Keeps windows open for `lateness` after their end, re-joining on late records.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.allowed_lateness = lateness;
        self
    }

    /// Emits `join(left, right)` for every pair of records with equal keys in a window.
    pub fn apply<O: Data, F>(&self, join: F) -> DataStream<O>
    where
        F: Fn(&A, &B) -> O + Clone + Send + Sync + 'static,
    {
        let JoinEqualTo { streams, left_key, right_key } = &self.keys;
        let left = streams.left.map(JoinInput::<A, B>::Left).name("Join: tag left");
        let right = streams.right.map(JoinInput::<A, B>::Right).name("Join: tag right");
        let (left_key, right_key) = (left_key.clone(), right_key.clone());
        left.union(&[right])
            .key_by(move |input: &JoinInput<A, B>| match input {
                JoinInput::Left(a) => left_key(a),
                JoinInput::Right(b) => right_key(b),
            })
            .window(self.assigner.clone())
            .allowed_lateness(self.allowed_lateness)
            .process(CrossProduct { join, _types: PhantomData })
            .name("Window Join")
    }
}

/// Emits the join of every left with every right record of a window.
struct CrossProduct<A, B, F> {
    join: F,
    _types: PhantomData<fn(A, B)>,
}

impl<A, B, F: Clone> Clone for CrossProduct<A, B, F> {
    fn clone(&self) -> Self {
        CrossProduct { join: self.join.clone(), _types: PhantomData }
    }
}

impl<A, B, K, W, O, F> ProcessWindowFunction<JoinInput<A, B>, O, K, W> for CrossProduct<A, B, F>
where
    A: Data,
    B: Data,
    F: Fn(&A, &B) -> O + Clone + Send + Sync + 'static,
{
    fn process(
        &mut self,
        _key: &K,
        _ctx: &WindowContext<'_, W>,
        elements: Vec<JoinInput<A, B>>,
        out: &mut Collector<O>,
    ) -> FnResult {
        let (mut lefts, mut rights) = (Vec::new(), Vec::new());
        for element in elements {
            match element {
                JoinInput::Left(a) => lefts.push(a),
                JoinInput::Right(b) => rights.push(b),
            }
        }
        for a in &lefts {
            for b in &rights {
                out.collect((self.join)(a, b));
            }
        }
        Ok(())
    }
}
