//! A state table in a RocksDB column family: typed entries encoded per access.

use std::marker::PhantomData;
use std::sync::Arc;

use rocksdb::{BoundColumnFamily, WriteBatch};
use weir_types::{Data, Key, KeyGroup};

use super::instance::{Instance, column_family_name};
use super::keys::{decode_value, encode_key, encode_value};
use crate::{Result, StateTable, decode_entries};

/// One registered state: a column family of the subtask's instance.
pub(crate) struct RocksDbTable<K, N, V> {
    instance: Arc<Instance>,
    state: String,
    family: String,
    _entries: PhantomData<fn(K, N) -> V>,
}

impl<K: Key, N: Key, V: Data> RocksDbTable<K, N, V> {
    /// The table of state `name`, creating its column family unless it exists.
    pub(crate) fn new(instance: Arc<Instance>, name: &str) -> Result<Self> {
        instance.ensure_state(name)?;
        Ok(RocksDbTable {
            instance,
            state: name.to_string(),
            family: column_family_name(name),
            _entries: PhantomData,
        })
    }

    fn family(&self) -> Arc<BoundColumnFamily<'_>> {
        self.instance.column_family(&self.family)
    }

    fn key(&self, group: KeyGroup, key: &K, namespace: &N) -> Result<Vec<u8>> {
        encode_key(&self.state, group, key, namespace)
    }

    fn read(&self, key: &[u8]) -> Result<Option<V>> {
        let stored = self
            .instance
            .db()
            .get_pinned_cf(&self.family(), key)
            .map_err(self.instance.state_error(&self.state, "read"))?;
        stored.map(|bytes| decode_value(&self.state, &bytes)).transpose()
    }

    fn write(&self, key: &[u8], value: &V) -> Result<()> {
        let value = encode_value(&self.state, value)?;
        self.instance
            .db()
            .put_cf_opt(&self.family(), key, value, self.instance.write_options())
            .map_err(self.instance.state_error(&self.state, "write"))
    }
}

impl<K: Key, N: Key, V: Data> StateTable<K, N, V> for RocksDbTable<K, N, V> {
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>> {
        self.read(&self.key(group, key, namespace)?)
    }

    /// Reads, changes and writes back the value (RocksDB holds bytes, not objects).
    fn modify(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        change: &mut dyn FnMut(&mut V),
    ) -> Result<bool> {
        let key = self.key(group, key, namespace)?;
        let Some(mut value) = self.read(&key)? else { return Ok(false) };
        change(&mut value);
        self.write(&key, &value)?;
        Ok(true)
    }

    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) -> Result<()> {
        self.write(&self.key(group, key, namespace)?, &value)
    }

    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Result<Option<V>> {
        let key = self.key(group, key, namespace)?;
        let removed = self.read(&key)?;
        if removed.is_some() {
            self.instance
                .db()
                .delete_cf_opt(&self.family(), &key, self.instance.write_options())
                .map_err(self.instance.state_error(&self.state, "delete from"))?;
        }
        Ok(removed)
    }

    /// Copies the group's stored bytes into the canonical encoding, without decoding them.
    fn snapshot_group(&self, group: KeyGroup, out: &mut Vec<u8>) -> Result<bool> {
        self.instance.snapshot_group(&self.state, group, out)
    }

    /// Decodes the block's entries and writes them in one batch.
    fn restore_group(&mut self, group: KeyGroup, entries: &[u8]) -> Result<()> {
        let family = self.family();
        let mut batch = WriteBatch::default();
        let mut failure = None;
        decode_entries(entries, |key: K, namespace: N, value: V| {
            let encoded = self
                .key(group, &key, &namespace)
                .and_then(|stored_key| Ok((stored_key, encode_value(&self.state, &value)?)));
            match encoded {
                Ok((stored_key, stored_value)) => batch.put_cf(&family, stored_key, stored_value),
                Err(error) => failure = failure.take().or(Some(error)),
            }
        })?;
        match failure {
            Some(error) => Err(error),
            None => self.instance.write(&self.state, batch),
        }
    }

    /// Scans the whole column family: O(entries), for tests and diagnostics. A RocksDB error
    /// is logged and counts as empty.
    fn len(&self) -> usize {
        self.instance.count(&self.state).unwrap_or_else(|error| {
            tracing::error!(state = self.state, %error, "could not count RocksDB state entries");
            0
        })
    }
}
