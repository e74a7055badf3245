//! One value's entries encoded split by key group, for values that span key groups (a heap
//! table's namespace, a time's timers): the value is read once, its entries put in key-group
//! order by counting ([`ByGroup`]), and each group's entries appended as runs (see
//! [`crate::append_run`]) to where a [`GroupSink`] says: a checkpoint's bytes for that group
//! (see [`crate::cohorts`]), or one encoding of the whole value ([`encode_by_group`]) that a
//! savepoint keeps with the value, and in which each group's part is found at once
//! (see [`GroupLayout`]); [`GroupLayout`] lists where each group's parts are among many such
//! encodings.
//!
//! Such an encoding is the number of key groups (u32), a [`HEADER`] per group in group order,
//! then each group's entries as runs, as blocks hold them. The headers come together, so
//! laying out a snapshot reads them in one stretch.

use std::ops::Range;

use weir_types::KeyGroup;

use crate::Result;

/// A key group's header: the group (u16), the number of entries (u32) and where they start in
/// the encoding (u32), little-endian.
const HEADER: usize = 10;

/// The number of key groups (u32, little-endian) that starts an encoding.
const GROUPS: usize = 4;

/// A value's entries in key-group order: their indices, and where each key group's run of
/// them ends.
struct ByGroup {
    order: Vec<u32>,
    /// Each key group with entries, in order, with the end of its run in `order`.
    ends: Vec<(KeyGroup, u32)>,
}

impl ByGroup {
    /// Orders `len` entries, entry `i` in group `group_of(i)`: by counting when the groups
    /// span not much more than there are entries (one entry per key of a window), else by
    /// sorting.
    fn of(len: usize, group_of: impl Fn(usize) -> KeyGroup) -> Self {
        let groups = || (0..len).map(&group_of);
        let (Some(min), Some(max)) = (groups().min(), groups().max()) else {
            return ByGroup { order: Vec::new(), ends: Vec::new() };
        };
        let span = usize::from(max - min) + 1;
        let mut order: Vec<u32> = (0..to_u32(len)).collect();
        if span > 2 * len + 64 {
            order.sort_unstable_by_key(|&index| group_of(index as usize));
        } else {
            let mut next = vec![0u32; span];
            groups().for_each(|group| next[usize::from(group - min)] += 1);
            let mut end = 0;
            for slot in &mut next {
                (*slot, end) = (end, end + *slot); // where each group's run starts
            }
            for (index, group) in groups().enumerate() {
                let at = &mut next[usize::from(group - min)];
                order[*at as usize] = to_u32(index);
                *at += 1;
            }
        }
        let group_at = |at: usize| group_of(order[at] as usize);
        let ends = (0..order.len())
            .filter(|&at| at + 1 == order.len() || group_at(at + 1) != group_at(at))
            .map(|at| (group_at(at), to_u32(at + 1)))
            .collect();
        ByGroup { order, ends }
    }

    /// Each key group with entries, in order, with the indices of its entries.
    fn runs(&self) -> impl Iterator<Item = (KeyGroup, &[u32])> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&(_, end)| end));
        (self.ends.iter().zip(starts))
            .map(|(&(group, end), start)| (group, &self.order[start as usize..end as usize]))
    }
}

/// Where a value's entries go as it encodes them split by key group, one group after the
/// other in increasing order.
pub trait GroupSink {
    /// The bytes to append the entries of `group` to.
    fn group(&mut self, group: KeyGroup) -> &mut Vec<u8>;
    /// The entries of the group last asked for are appended: `count` of them.
    fn appended(&mut self, count: usize);
}

/// Encodes `len` entries split by key group (entry `i` in group `group_of(i)`) into `sink`:
/// `append` appends the entries at the indices it is given, all of one group, as runs, and
/// returns how many it wrote.
pub fn encode_split(
    len: usize,
    group_of: impl Fn(usize) -> KeyGroup,
    mut append: impl FnMut(&[u32], &mut Vec<u8>) -> Result<usize>,
    sink: &mut dyn GroupSink,
) -> Result<()> {
    for (group, run) in ByGroup::of(len, group_of).runs() {
        let count = append(run, sink.group(group))?;
        sink.appended(count);
    }
    Ok(())
}

/// One encoding, with a header per group (see the module's documentation), of what `split`
/// encodes split by key group into the sink it is given.
pub fn encode_by_group(split: impl FnOnce(&mut dyn GroupSink) -> Result<()>) -> Result<Vec<u8>> {
    let mut sink = HeaderedSink { bytes: Vec::new(), headers: Vec::new() };
    split(&mut sink)?;
    let HeaderedSink { bytes, headers } = sink;
    let start = GROUPS + headers.len() * HEADER;
    let mut out = Vec::with_capacity(start + bytes.len());
    out.extend_from_slice(&to_u32(headers.len()).to_le_bytes());
    for (group, count, at) in headers {
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&to_u32(count).to_le_bytes());
        out.extend_from_slice(&to_u32(start + at).to_le_bytes());
    }
    out.extend_from_slice(&bytes);
    Ok(out)
}

/// Gathers [`encode_by_group`]'s entries and headers: each group's (group, count, where its
/// entries start in `bytes`).
struct HeaderedSink {
    bytes: Vec<u8>,
    headers: Vec<(KeyGroup, usize, usize)>,
}

impl GroupSink for HeaderedSink {
    fn group(&mut self, group: KeyGroup) -> &mut Vec<u8> {
        self.headers.push((group, 0, self.bytes.len()));
        &mut self.bytes
    }

    fn appended(&mut self, count: usize) {
        if let Some(header) = self.headers.last_mut() {
            header.1 = count;
        }
    }
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).expect("one value's entries of one key group encode to under 4 GiB")
}

/// The key groups of an [`encode_by_group`] encoding: (group, number of entries, entries).
fn group_parts(encoded: &[u8]) -> impl Iterator<Item = (KeyGroup, usize, &[u8])> {
    (0..group_count(encoded)).map(|part| group_part(encoded, part))
}

/// The number of key groups in an [`encode_by_group`] encoding.
fn group_count(encoded: &[u8]) -> usize {
    let groups = encoded.first_chunk::<GROUPS>().expect("an encoding split by key group");
    u32::from_le_bytes(*groups) as usize
}

/// Key group `part` of an [`encode_by_group`] encoding: (group, number of entries, entries).
fn group_part(encoded: &[u8], part: usize) -> (KeyGroup, usize, &[u8]) {
    let field = |header: &[u8], at: usize| {
        u32::from_le_bytes(header[at..at + 4].try_into().expect("four bytes")) as usize
    };
    let header = &encoded[GROUPS + part * HEADER..GROUPS + (part + 1) * HEADER];
    let start = field(header, 6);
    let end = match part + 1 < group_count(encoded) {
        true => field(&encoded[GROUPS + (part + 1) * HEADER..], 6),
        false => encoded.len(),
    };
    (KeyGroup::from_le_bytes([header[0], header[1]]), field(header, 2), &encoded[start..end])
}

/// Where each key group's entries are among the [`encode_by_group`] encodings of many values
/// (a snapshot's every namespace, or every time), by group.
#[derive(Default)]
pub struct GroupLayout {
    groups: Vec<GroupParts>,
}

/// One key group's entries: how many, and its parts of the values' encodings.
#[derive(Default)]
struct GroupParts {
    count: usize,
    parts: Vec<(usize, Range<usize>)>,
}

impl GroupLayout {
    /// The layout of the encodings of `values`, `encoding(i)` giving value `i`'s.
    pub fn of<'a>(
        values: impl IntoIterator<Item = usize>,
        encoding: impl Fn(usize) -> Result<&'a [u8]>,
    ) -> Result<GroupLayout> {
        let mut groups: Vec<GroupParts> = Vec::new();
        for value in values {
            let encoded = encoding(value)?;
            for (group, count, entries) in group_parts(encoded) {
                let start = entries.as_ptr() as usize - encoded.as_ptr() as usize;
                let group = usize::from(group);
                if groups.len() <= group {
                    groups.resize_with(group + 1, GroupParts::default);
                }
                groups[group].count += count;
                groups[group].parts.push((value, start..start + entries.len()));
            }
        }
        Ok(GroupLayout { groups })
    }

    /// How many entries `group` has in the values.
    pub fn count(&self, group: KeyGroup) -> usize {
        self.groups.get(usize::from(group)).map_or(0, |parts| parts.count)
    }

    /// Appends each value's part of `group`'s entries (runs, without their header),
    /// `encoding(i)` giving value `i`'s encoding.
    pub fn append_group<'a>(
        &self,
        group: KeyGroup,
        encoding: impl Fn(usize) -> Result<&'a [u8]>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        for (value, range) in self.groups.get(usize::from(group)).into_iter().flat_map(|g| &g.parts)
        {
            out.extend_from_slice(&encoding(*value)?[range.clone()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{append_run, append_runs_header, decode_entries};

    /// Checks that `by_group` lists every entry of `groups` once, in runs of one key group
    /// each, in group order.
    fn check(groups: &[KeyGroup], by_group: &ByGroup) {
        let mut seen = vec![false; groups.len()];
        let mut last = None;
        for (group, run) in by_group.runs() {
            assert!(!run.is_empty() && last < Some(group), "runs in group order");
            last = Some(group);
            for &index in run {
                assert_eq!(groups[index as usize], group);
                assert!(!std::mem::replace(&mut seen[index as usize], true), "listed once");
            }
        }
        assert!(seen.into_iter().all(|seen| seen), "every entry listed");
    }

    #[test]
    fn entries_are_put_in_key_group_order_by_counting_or_by_sorting() {
        assert_eq!(ByGroup::of(0, |_| 0).runs().count(), 0);
        let mut groups: Vec<KeyGroup> =
            (0..500).map(|key| (key * 7 % 64) as KeyGroup + 10).collect();
        let by_group = ByGroup::of(groups.len(), |i| groups[i]); // counted
        assert_eq!(by_group.runs().count(), 64);
        check(&groups, &by_group);
        groups.extend((500..520).map(|key| 30_000 - key as KeyGroup)); // a wide span: sorted
        let by_group = ByGroup::of(groups.len(), |i| groups[i]);
        assert_eq!(by_group.runs().count(), 84);
        check(&groups, &by_group);
    }

    /// Two values' entries `(key, group)` under namespaces 1 and 2, encoded split by group.
    fn encodings(values: &[Vec<(u64, KeyGroup)>]) -> Vec<Vec<u8>> {
        (values.iter().zip(1u32..))
            .map(|(entries, namespace)| {
                let append = |run: &[u32], out: &mut Vec<u8>| {
                    let keys = run.iter().map(|&i| (&entries[i as usize].0, &()));
                    append_run(&namespace, keys, out)
                };
                let split = |sink: &mut dyn GroupSink| {
                    encode_split(entries.len(), |i| entries[i].1, append, sink)
                };
                encode_by_group(split).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_layout_gives_each_group_its_entries_of_every_value() {
        let values = vec![
            (0..100u64).map(|key| (key, (key % 5) as KeyGroup)).collect::<Vec<_>>(),
            vec![(7, 3), (8, 9)],
        ];
        let encoded = encodings(&values);
        let parts: Vec<_> = group_parts(&encoded[0]).map(|(g, n, _)| (g, n)).collect();
        assert_eq!(parts, [(0, 20), (1, 20), (2, 20), (3, 20), (4, 20)]);
        let layout = GroupLayout::of(0..2, |i| Ok(&encoded[i][..])).unwrap();
        for group in 0..12 {
            let mut block = Vec::new();
            let count = layout.count(group);
            append_runs_header(&mut block, count).unwrap();
            layout.append_group(group, |i| Ok(&encoded[i][..]), &mut block).unwrap();
            let mut decoded = Vec::new();
            if count > 0 {
                decode_entries(&block, |key: u64, namespace: u32, (): ()| {
                    decoded.push((namespace, key));
                })
                .unwrap();
            }
            let mut expected: Vec<(u32, u64)> = (values.iter().zip(1u32..))
                .flat_map(|(entries, ns)| entries.iter().map(move |&(key, g)| (ns, key, g)))
                .filter(|&(_, _, g)| g == group)
                .map(|(ns, key, _)| (ns, key))
                .collect();
            decoded.sort();
            expected.sort();
            assert_eq!(decoded, expected, "group {group}");
        }
    }
}
