//! Which opt-out files to index and which to let go (sync.md §4.4), as a pure function of the
//! files the OptOut service lists, the files already indexed and the current time.
//!
//! The rules, with [`OptOutFilePolicy`] holding the reference's intervals:
//! - **Partitions**: at most one per UTC day, the earliest written that day, and none for a day
//!   that already has an indexed partition. A partition older than the lifespan
//!   (`partition_interval × max_partitions`, 30 days) is not indexed, and an indexed one that
//!   ages past it is dropped — except the newest partition, which is always kept.
//! - **Deltas**: those not older than the newest partition minus the grace period
//!   (`3 × delta_rotate_interval`, 900 s); with no partition at all, every delta. Indexed
//!   deltas older than that are dropped: the partition has their entries.
//! - **Synthetic files** (replica 999): always indexed, never dropped, and ignored when picking
//!   partitions and computing the grace window.
//!
//! Invariants of the result: `add` holds only listed, not-yet-indexed names, sorted by time;
//! `drop` holds only indexed names; the two are disjoint. A file that disappears from the
//! listing is not dropped (opt-outs are permanent; an empty listing is what the reference sees
//! when the OptOut service is unreachable).

use std::collections::{BTreeMap, BTreeSet};

use super::{OptOutFileKind, OptOutFileName};

const SECONDS_PER_DAY: i64 = 86_400;

/// The opt-out intervals of the operator config, in seconds, with the reference's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptOutFilePolicy {
    /// `optout_delta_rotate_interval` (300): how often OptOut closes a delta.
    pub delta_rotate_interval: i64,
    /// `optout_partition_interval` (86400): how often OptOut writes a partition.
    pub partition_interval: i64,
    /// `optout_max_partitions` (30): partitions kept, so the lifespan is this many intervals.
    pub max_partitions: i64,
}

impl Default for OptOutFilePolicy {
    fn default() -> Self {
        Self {
            delta_rotate_interval: 300,
            partition_interval: 86_400,
            max_partitions: 30,
        }
    }
}

impl OptOutFilePolicy {
    /// How far before a partition's time deltas are still indexed: three delta intervals, so
    /// a delta closed late around the partition is not lost.
    pub fn grace_period(&self) -> i64 {
        self.delta_rotate_interval.saturating_mul(3)
    }

    /// How old a partition may get before it is dropped.
    pub fn lifespan(&self) -> i64 {
        self.partition_interval.saturating_mul(self.max_partitions)
    }
}

/// The outcome of [`select_files`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSelection {
    /// Files to index, sorted by time.
    pub add: Vec<OptOutFileName>,
    /// Indexed files to remove, sorted by time.
    pub drop: Vec<OptOutFileName>,
}

impl FileSelection {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.drop.is_empty()
    }

    /// Whether applying this needs a new base (a partition arrives or files leave) rather than
    /// just a new overlay; see `OptOutIndex::apply`.
    pub fn needs_rebuild(&self) -> bool {
        !self.drop.is_empty() || self.add.iter().any(|name| name.kind == OptOutFileKind::Partition)
    }
}

fn is_regular_partition(name: &OptOutFileName) -> bool {
    name.kind == OptOutFileKind::Partition && !name.is_synthetic()
}

fn is_regular_delta(name: &OptOutFileName) -> bool {
    name.kind == OptOutFileKind::Delta && !name.is_synthetic()
}

fn utc_day(name: &OptOutFileName) -> i64 {
    name.timestamp.div_euclid(SECONDS_PER_DAY)
}

/// Decides which of the `listed` files to index and which `indexed` files to drop at `now`
/// (epoch seconds); see the module documentation for the rules.
pub fn select_files<'a, I>(
    policy: &OptOutFilePolicy,
    listed: I,
    indexed: &BTreeSet<OptOutFileName>,
    now: i64,
) -> FileSelection
where
    I: IntoIterator<Item = &'a OptOutFileName>,
{
    let new: BTreeSet<&OptOutFileName> = listed.into_iter().filter(|name| !indexed.contains(*name)).collect();

    // One partition per UTC day: the earliest (the set iterates by time, so the first one
    // seen), and none for a day already covered.
    let covered_days: BTreeSet<i64> = indexed
        .iter()
        .filter(|n| is_regular_partition(n))
        .map(utc_day)
        .collect();
    let mut per_day: BTreeMap<i64, &OptOutFileName> = BTreeMap::new();
    for name in new.iter().copied().filter(|n| is_regular_partition(n)) {
        let day = utc_day(name);
        if !covered_days.contains(&day) {
            per_day.entry(day).or_insert(name);
        }
    }

    // The newest partition, indexed or new, is never expired: an OptOut service that stopped
    // writing partitions must not leave the index with none.
    let newest_partition = indexed
        .iter()
        .filter(|n| is_regular_partition(n))
        .chain(per_day.values().copied())
        .max();
    let expiry = now.saturating_sub(policy.lifespan());
    let expired = |name: &OptOutFileName| name.timestamp < expiry && Some(name) != newest_partition;

    let delta_floor = newest_partition.map(|p| p.timestamp.saturating_sub(policy.grace_period()));
    let recent = |name: &OptOutFileName| delta_floor.is_none_or(|floor| name.timestamp >= floor);

    let mut add: Vec<OptOutFileName> = per_day.values().copied().filter(|n| !expired(n)).cloned().collect();
    add.extend(
        new.iter()
            .copied()
            .filter(|n| is_regular_delta(n) && recent(n))
            .cloned(),
    );
    add.extend(new.iter().copied().filter(|n| n.is_synthetic()).cloned());
    add.sort();

    let drop = indexed
        .iter()
        .filter(|n| (is_regular_partition(n) && expired(n)) || (is_regular_delta(n) && !recent(n)))
        .cloned()
        .collect();

    FileSelection { add, drop }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = SECONDS_PER_DAY;
    /// 2023-12-08T00:00:00Z.
    const T0: i64 = 1_701_993_600;

    fn name(kind: OptOutFileKind, replica: u16, timestamp: i64, suffix: &str) -> OptOutFileName {
        OptOutFileName {
            kind,
            replica,
            timestamp,
            suffix: suffix.to_owned(),
        }
    }

    fn partition(timestamp: i64) -> OptOutFileName {
        name(OptOutFileKind::Partition, 0, timestamp, "00000000")
    }

    fn delta(timestamp: i64) -> OptOutFileName {
        name(OptOutFileKind::Delta, 1, timestamp, "11111111")
    }

    fn select(listed: &[OptOutFileName], indexed: &[OptOutFileName], now: i64) -> FileSelection {
        let indexed: BTreeSet<OptOutFileName> = indexed.iter().cloned().collect();
        select_files(&OptOutFilePolicy::default(), listed, &indexed, now)
    }

    #[test]
    fn defaults_are_the_reference_config() {
        let policy = OptOutFilePolicy::default();
        assert_eq!(policy.grace_period(), 900);
        assert_eq!(policy.lifespan(), 30 * DAY);
    }

    #[test]
    fn without_a_partition_every_delta_is_taken() {
        let listed = [delta(T0 - 5 * DAY), delta(T0), delta(T0 + 300)];
        let got = select(&listed, &[], T0 + 600);
        assert_eq!(got.add, listed.to_vec());
        assert!(got.drop.is_empty());
        assert!(!got.needs_rebuild());
    }

    #[test]
    fn one_partition_per_utc_day_the_earliest() {
        let early = name(OptOutFileKind::Partition, 3, T0 + 60, "aaaaaaaa");
        let late = name(OptOutFileKind::Partition, 0, T0 + 3600, "bbbbbbbb");
        let next_day = partition(T0 + DAY + 10);
        let got = select(&[late.clone(), next_day.clone(), early.clone()], &[], T0 + DAY + 20);
        assert_eq!(got.add, vec![early.clone(), next_day.clone()]);
        assert!(got.needs_rebuild());

        // A day that already has an indexed partition takes no other, even an earlier one.
        let got = select(
            &[early.clone(), late.clone(), next_day.clone()],
            &[late, next_day],
            T0 + DAY + 20,
        );
        assert!(got.add.is_empty());
        assert!(got.is_empty());
    }

    #[test]
    fn deltas_inside_the_grace_window_of_the_newest_partition_are_kept() {
        let p = partition(T0 + DAY);
        let inside = delta(T0 + DAY - 900);
        let outside = delta(T0 + DAY - 901);
        let after = delta(T0 + DAY + 300);
        let got = select(
            &[outside.clone(), inside.clone(), after.clone(), p.clone()],
            &[],
            T0 + DAY + 400,
        );
        assert_eq!(got.add, vec![inside.clone(), p.clone(), after.clone()]);

        // With the partition already indexed, a late-listed old delta is still not taken.
        let got = select(
            std::slice::from_ref(&outside),
            &[p.clone(), inside.clone(), after.clone()],
            T0 + DAY + 400,
        );
        assert!(got.is_empty());
    }

    #[test]
    fn a_new_partition_drops_the_deltas_it_covers() {
        let old_partition = partition(T0);
        let d1 = delta(T0 + 1000);
        let d2 = delta(T0 + DAY - 600);
        let d3 = delta(T0 + DAY + 100);
        let indexed = [old_partition.clone(), d1.clone(), d2.clone(), d3.clone()];
        let new_partition = partition(T0 + DAY);
        let d4 = delta(T0 + DAY + 400);
        let got = select(&[new_partition.clone(), d4.clone()], &indexed, T0 + DAY + 500);
        assert_eq!(got.add, vec![new_partition, d4]);
        assert_eq!(got.drop, vec![d1]);
        assert!(got.needs_rebuild());
    }

    #[test]
    fn synthetic_files_are_always_taken_and_never_dropped() {
        let synthetic_partition = name(OptOutFileKind::Partition, 999, T0 - 400 * DAY, "99999999");
        let synthetic_delta = name(OptOutFileKind::Delta, 999, T0 - 400 * DAY, "99999998");
        let p = partition(T0 + DAY);
        let got = select(
            &[synthetic_partition.clone(), synthetic_delta.clone(), p.clone()],
            &[],
            T0 + DAY,
        );
        assert_eq!(
            got.add,
            vec![synthetic_delta.clone(), synthetic_partition.clone(), p.clone()]
        );

        // Not a partition for the day rule or the grace window, and never expired.
        let indexed = [synthetic_partition.clone(), synthetic_delta.clone(), p.clone()];
        let got = select(&[partition(T0 + 2 * DAY)], &indexed, T0 + 100 * DAY);
        assert!(got.drop.iter().all(|n| !n.is_synthetic()));
        assert_eq!(got.drop, vec![p]);
    }

    #[test]
    fn partitions_past_the_lifespan_are_dropped_but_never_the_newest() {
        let old = partition(T0);
        let mid = partition(T0 + 10 * DAY);
        let now = T0 + 35 * DAY;
        let got = select(&[], &[old.clone(), mid.clone()], now);
        assert_eq!(got.drop, vec![old.clone()]);

        // Everything aged out: the newest stays.
        let got = select(&[], &[old.clone(), mid.clone()], T0 + 100 * DAY);
        assert_eq!(got.drop, vec![old.clone()]);

        // A newly listed partition that is already expired is not indexed, unless it is the
        // newest there is.
        let got = select(&[old.clone(), mid.clone()], &[], now);
        assert_eq!(got.add, vec![mid]);
        let got = select(std::slice::from_ref(&old), &[], now);
        assert_eq!(got.add, vec![old]);
    }

    #[test]
    fn indexed_and_duplicate_listings_are_not_selected_again() {
        let p = partition(T0);
        let d = delta(T0 + 300);
        let got = select(
            &[p.clone(), p.clone(), d.clone(), d.clone()],
            std::slice::from_ref(&p),
            T0 + 600,
        );
        assert_eq!(got.add, vec![d.clone()]);
        let got = select(&[p.clone(), d.clone()], &[p, d], T0 + 600);
        assert!(got.is_empty());
    }

    #[test]
    fn an_empty_listing_changes_nothing_but_expiry() {
        let p = partition(T0);
        let d = delta(T0 + 300);
        let got = select(&[], &[p, d], T0 + 600);
        assert!(got.is_empty());
    }
}
