//! Typed handles to registered keyed state; each call works on the current key's entry.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use weir_types::{Data, Key};

use crate::descriptor::ReduceFn;
use crate::{AggregateFunction, KeyedStateAccess, Result};

/// Index of a registered table inside its [`crate::KeyedState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StateId(pub(crate) usize);

/// A single value per key.
#[derive(Debug, Clone)]
pub struct ValueState<V> {
    id: StateId,
    _value: PhantomData<fn() -> V>,
}

impl<V: Data> ValueState<V> {
    pub(crate) fn new(id: StateId) -> Self {
        ValueState { id, _value: PhantomData }
    }

    /// The current key's value, if any.
    pub fn value<S: KeyedStateAccess + ?Sized>(&self, state: &S) -> Result<Option<V>> {
        let (table, key, group) = state.keyed_state().table::<(), V>(self.id)?;
        table.get(group, key, &())
    }

    /// Sets the current key's value.
    pub fn update<S: KeyedStateAccess + ?Sized>(&self, state: &mut S, value: V) -> Result<()> {
        let (table, key, group) = state.keyed_state_mut().table_mut::<(), V>(self.id)?;
        table.put(group, key, &(), value)
    }

    /// Removes the current key's value.
    pub fn clear<S: KeyedStateAccess + ?Sized>(&self, state: &mut S) -> Result<()> {
        let (table, key, group) = state.keyed_state_mut().table_mut::<(), V>(self.id)?;
        table.remove(group, key, &()).map(drop)
    }

    /// Folds `value` into the current key's value in place with `fold(current, value)`, or
    /// stores `value` when there is none; returns a copy of the new value. One lookup, one copy.
    pub fn fold<S: KeyedStateAccess + ?Sized>(
        &self,
        state: &mut S,
        value: V,
        fold: impl Fn(&mut V, V),
    ) -> Result<V> {
        fold_into(state, self.id, value, fold, |v| v, |v: &V| v.clone())
    }
}

/// Adds `value` into the current key's entry of table `id`: `fold` changes an existing entry
/// in place, `first` makes the entry when there is none; returns `read` of the result.
fn fold_into<S, V, T, R>(
    state: &mut S,
    id: StateId,
    value: T,
    fold: impl Fn(&mut V, T),
    first: impl FnOnce(T) -> V,
    read: impl Fn(&V) -> R,
) -> Result<R>
where
    S: KeyedStateAccess + ?Sized,
    V: Data,
{
    let (table, key, group) = state.keyed_state_mut().table_mut::<(), V>(id)?;
    let mut pending = Some(value);
    let mut result = None;
    table.modify(group, key, &(), &mut |entry| {
        if let Some(value) = pending.take() {
            fold(entry, value);
            result = Some(read(entry));
        }
    })?;
    match (pending, result) {
        (_, Some(result)) => Ok(result),
        (Some(value), None) => {
            let entry = first(value);
            let result = read(&entry);
            table.put(group, key, &(), entry)?;
            Ok(result)
        }
        (None, None) => unreachable!("a value is either folded or inserted"),
    }
}

/// A list of values per key.
#[derive(Debug, Clone)]
pub struct ListState<V> {
    id: StateId,
    _value: PhantomData<fn() -> V>,
}

impl<V: Data> ListState<V> {
    pub(crate) fn new(id: StateId) -> Self {
        ListState { id, _value: PhantomData }
    }

    /// The current key's list (empty when there is none).
    pub fn get<S: KeyedStateAccess + ?Sized>(&self, state: &S) -> Result<Vec<V>> {
        let (table, key, group) = state.keyed_state().table::<(), Vec<V>>(self.id)?;
        Ok(table.get(group, key, &())?.unwrap_or_default())
    }

    /// Appends one value to the current key's list.
    pub fn add<S: KeyedStateAccess + ?Sized>(&self, state: &mut S, value: V) -> Result<()> {
        fold_into(state, self.id, value, |list: &mut Vec<V>, v| list.push(v), |v| vec![v], |_| ())
    }

    /// Replaces the current key's list.
    pub fn update<S: KeyedStateAccess + ?Sized>(
        &self,
        state: &mut S,
        values: Vec<V>,
    ) -> Result<()> {
        let (table, key, group) = state.keyed_state_mut().table_mut::<(), Vec<V>>(self.id)?;
        if values.is_empty() {
            table.remove(group, key, &()).map(drop)
        } else {
            table.put(group, key, &(), values)
        }
    }

    /// Removes the current key's list.
    pub fn clear<S: KeyedStateAccess + ?Sized>(&self, state: &mut S) -> Result<()> {
        self.update(state, Vec::new())
    }
}

/// A map from user keys to values, per key.
#[derive(Debug, Clone)]
pub struct MapState<UK, UV> {
    id: StateId,
    _entries: PhantomData<fn() -> (UK, UV)>,
}

impl<UK: Key, UV: Data> MapState<UK, UV> {
    pub(crate) fn new(id: StateId) -> Self {
        MapState { id, _entries: PhantomData }
    }

    /// The value under `user_key` for the current key.
    pub fn get<S: KeyedStateAccess + ?Sized>(
        &self,
        state: &S,
        user_key: &UK,
    ) -> Result<Option<UV>> {
        let (table, key, group) = state.keyed_state().table::<(), HashMap<UK, UV>>(self.id)?;
        Ok(table.get(group, key, &())?.and_then(|mut map| map.remove(user_key)))
    }

    /// Stores `value` under `user_key` for the current key.
    pub fn put<S: KeyedStateAccess + ?Sized>(
        &self,
        state: &mut S,
        user_key: UK,
        value: UV,
    ) -> Result<()> {
        fold_into(
            state,
            self.id,
            (user_key, value),
            |map: &mut HashMap<UK, UV>, (k, v)| {
                map.insert(k, v);
            },
            |(k, v)| HashMap::from([(k, v)]),
            |_| (),
        )
    }

    /// Removes `user_key` from the current key's map.
    pub fn remove<S: KeyedStateAccess + ?Sized>(&self, state: &mut S, user_key: &UK) -> Result<()> {
        let (table, key, group) =
            state.keyed_state_mut().table_mut::<(), HashMap<UK, UV>>(self.id)?;
        let mut now_empty = false;
        table.modify(group, key, &(), &mut |map| {
            map.remove(user_key);
            now_empty = map.is_empty();
        })?;
        if now_empty {
            table.remove(group, key, &())?;
        }
        Ok(())
    }

    /// Every entry of the current key's map, in no particular order.
    pub fn entries<S: KeyedStateAccess + ?Sized>(&self, state: &S) -> Result<Vec<(UK, UV)>> {
        let (table, key, group) = state.keyed_state().table::<(), HashMap<UK, UV>>(self.id)?;
        Ok(table.get(group, key, &())?.map(|map| map.into_iter().collect()).unwrap_or_default())
    }

    /// Removes the current key's whole map.
    pub fn clear<S: KeyedStateAccess + ?Sized>(&self, state: &mut S) -> Result<()> {
        let (table, key, group) =
            state.keyed_state_mut().table_mut::<(), HashMap<UK, UV>>(self.id)?;
        table.remove(group, key, &()).map(drop)
    }
}

/// A value per key that `add` folds into with a reduce function.
#[derive(Clone)]
pub struct ReducingState<V> {
    id: StateId,
    reduce: ReduceFn<V>,
}

impl<V: Data> ReducingState<V> {
    pub(crate) fn new(id: StateId, reduce: ReduceFn<V>) -> Self {
        ReducingState { id, reduce }
    }

    /// The reduced value of the current key.
    pub fn get<S: KeyedStateAccess + ?Sized>(&self, state: &S) -> Result<Option<V>> {
        let (table, key, group) = state.keyed_state().table::<(), V>(self.id)?;
        table.get(group, key, &())
    }

    /// Folds `value` into the current key's value.
    pub fn add<S: KeyedStateAccess + ?Sized>(&self, state: &mut S, value: V) -> Result<()> {
        let reduce = &self.reduce;
        fold_into(state, self.id, value, |acc: &mut V, v| *acc = reduce(acc, &v), |v| v, |_| ())
    }

    /// Removes the current key's value.
    pub fn clear<S: KeyedStateAccess + ?Sized>(&self, state: &mut S) -> Result<()> {
        ValueState::<V>::new(self.id).clear(state)
    }
}

/// An accumulator per key that `add` folds inputs into with an aggregate function.
pub struct AggregatingState<In, Acc, Out> {
    id: StateId,
    aggregate: Arc<dyn AggregateFunction<In, Acc, Out>>,
}

impl<In, Acc, Out> Clone for AggregatingState<In, Acc, Out> {
    fn clone(&self) -> Self {
        AggregatingState { id: self.id, aggregate: self.aggregate.clone() }
    }
}

impl<In, Acc: Data, Out> AggregatingState<In, Acc, Out> {
    pub(crate) fn new(id: StateId, aggregate: Arc<dyn AggregateFunction<In, Acc, Out>>) -> Self {
        AggregatingState { id, aggregate }
    }

    /// The aggregate's result for the current key.
    pub fn get<S: KeyedStateAccess + ?Sized>(&self, state: &S) -> Result<Option<Out>> {
        let (table, key, group) = state.keyed_state().table::<(), Acc>(self.id)?;
        Ok(table.get(group, key, &())?.map(|acc| self.aggregate.get_result(&acc)))
    }

    /// Adds `value` to the current key's accumulator.
    pub fn add<S: KeyedStateAccess + ?Sized>(&self, state: &mut S, value: In) -> Result<()> {
        let aggregate = &self.aggregate;
        fold_into(
            state,
            self.id,
            value,
            |acc: &mut Acc, v| aggregate.add(v, acc),
            |v| {
                let mut acc = aggregate.create_accumulator();
                aggregate.add(v, &mut acc);
                acc
            },
            |_| (),
        )
    }

    /// Removes the current key's accumulator.
    pub fn clear<S: KeyedStateAccess + ?Sized>(&self, state: &mut S) -> Result<()> {
        ValueState::<Acc>::new(self.id).clear(state)
    }
}

/// A value per key and namespace (a window, say): for operators that keep several entries
/// per key. Every call names the namespace; the key is the current key.
#[derive(Debug, Clone)]
pub struct NamespacedValueState<N, V> {
    id: StateId,
    _entries: PhantomData<fn() -> (N, V)>,
}

impl<N: Key, V: Data> NamespacedValueState<N, V> {
    pub(crate) fn new(id: StateId) -> Self {
        NamespacedValueState { id, _entries: PhantomData }
    }

    /// A copy of the value in `namespace`.
    pub fn get<S: KeyedStateAccess + ?Sized>(&self, state: &S, namespace: &N) -> Result<Option<V>> {
        let (table, key, group) = state.keyed_state().table::<N, V>(self.id)?;
        table.get(group, key, namespace)
    }

    /// Stores `value` in `namespace`.
    pub fn put<S: KeyedStateAccess + ?Sized>(
        &self,
        state: &mut S,
        namespace: &N,
        value: V,
    ) -> Result<()> {
        let (table, key, group) = state.keyed_state_mut().table_mut::<N, V>(self.id)?;
        table.put(group, key, namespace, value)
    }

    /// Changes the value in `namespace` in place; returns whether there was one.
    pub fn modify<S: KeyedStateAccess + ?Sized>(
        &self,
        state: &mut S,
        namespace: &N,
        mut change: impl FnMut(&mut V),
    ) -> Result<bool> {
        let (table, key, group) = state.keyed_state_mut().table_mut::<N, V>(self.id)?;
        table.modify(group, key, namespace, &mut change)
    }

    /// Removes and returns the value in `namespace`.
    pub fn remove<S: KeyedStateAccess + ?Sized>(
        &self,
        state: &mut S,
        namespace: &N,
    ) -> Result<Option<V>> {
        let (table, key, group) = state.keyed_state_mut().table_mut::<N, V>(self.id)?;
        table.remove(group, key, namespace)
    }
}
