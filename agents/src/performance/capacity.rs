//! Whether more instances of a kind add capacity: what each instance count finished a second
//! under load, remembered for a while, so the autoscaler stops adding actors that would only
//! wait on the same resource (data quality's transactions on SQLite's one writer, say).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::analysis::{KindLoad, SATURATED};

/// Share of one instance's capacity that each added instance must add for more to be worth
/// having. Going from one to two, capacity must rise by a quarter; from two to three, by an
/// eighth. Below that the added actors mostly wait for each other.
pub const MIN_GAIN_SHARE: f64 = 0.25;

/// Share of the time a backlogged kind's actors must have worked for the interval to count as
/// under load: a queue that filled just before the analysis, after a quiet interval, does not.
pub const BACKLOGGED_BUSY: f64 = 0.5;

/// Whether an interval measured the kind under load at a known instance count: every actor of
/// the kind tracked now (`running`) worked through the whole interval (each has a load, each
/// measured at this analysis from a new heartbeat (`measured`), and as many ran at the
/// analysis before, so none started, restarted or stopped in it, sharing its resources for
/// part of it only), and the actors were saturated, or their queue was at the backlog
/// threshold and they worked [`BACKLOGGED_BUSY`] of the time or more. Capacity at a trickle
/// says little: a batch of one costs more per item than a full one.
pub fn under_load(
    load: &KindLoad,
    running: u32,
    measured: u32,
    running_before: Option<u32>,
    backlogged: bool,
) -> bool {
    load.instances == running
        && measured == running
        && running_before == Some(running)
        && (load.utilization >= SATURATED || (backlogged && load.utilization >= BACKLOGGED_BUSY))
}

/// A capacity measured under load.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Measured {
    /// Items a second the kind's instances finish together while all of them work.
    pub capacity_per_s: f64,
    /// When it was measured.
    pub at: DateTime<Utc>,
}

/// One kind's capacity under load by how many instances it ran, the latest measurement of
/// each count.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct Capacities(BTreeMap<u32, Measured>);

impl Capacities {
    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the kind's capacity over the last interval when it was [`under_load`].
    pub fn observe(&mut self, load: &KindLoad, under_load: bool, at: DateTime<Utc>) {
        let Some(capacity_per_s) = load.capacity_per_s else {
            return;
        };
        if under_load && load.instances > 0 && capacity_per_s.is_finite() {
            self.0
                .insert(load.instances, Measured { capacity_per_s, at });
        }
    }

    /// Forgets what was measured longer than `keep` before `now`: the mix of work changes, so a
    /// kind held back on an old measurement is tried again with one more instance (and held
    /// again if that one adds nothing).
    pub fn forget_older_than(&mut self, keep: Duration, now: DateTime<Utc>) {
        let horizon = swarm_shared::time::before(now, keep);
        self.0.retain(|_, measured| measured.at >= horizon);
    }

    /// Why more than `instances` would not help, if so. Either `instances` were measured at
    /// less than the largest smaller count's capacity plus [`MIN_GAIN_SHARE`] of one of its
    /// instances' for each added (the last step up added nothing), or the smallest larger count
    /// measured fell short of `instances`' the same way (the kind came back down, and the step
    /// up from here was already shown to add nothing).
    pub fn no_gain(&self, instances: u32) -> Option<String> {
        let here = self.0.get(&instances)?;
        let below = self
            .0
            .range(..instances)
            .next_back()
            .map(|(&fewer, before)| ((fewer, before), (instances, here)));
        let above = self
            .0
            .range(instances.saturating_add(1)..)
            .next()
            .map(|(&more, after)| ((instances, here), (more, after)));
        [below, above]
            .into_iter()
            .flatten()
            .find(|((fewer, before), (more, after))| {
                let per_instance = before.capacity_per_s / f64::from(*fewer);
                let needed =
                    before.capacity_per_s + MIN_GAIN_SHARE * per_instance * f64::from(more - fewer);
                after.capacity_per_s < needed
            })
            .map(|((fewer, before), (more, after))| {
                format!(
                    "{more} instances finished {:.0} items a second under load, {fewer} \
                     finished {:.0}: more would wait on the same resource",
                    after.capacity_per_s, before.capacity_per_s
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(instances: u32, capacity_per_s: Option<f64>) -> KindLoad {
        KindLoad {
            instances,
            utilization: 0.9,
            capacity_per_s,
        }
    }

    fn second(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn more_instances_that_add_nothing_are_named() {
        let mut kind = Capacities::default();
        // Nothing measured yet, or only one count: nothing to compare.
        assert_eq!(kind.no_gain(1), None);
        kind.observe(&load(1, Some(1000.0)), true, second(0));
        assert_eq!(kind.no_gain(1), None);
        // Two instances on one writer: the same capacity.
        kind.observe(&load(2, Some(1050.0)), true, second(30));
        let why = kind.no_gain(2).expect("no gain from 1 to 2");
        assert!(
            why.contains("2 instances finished 1050") && why.contains("1 finished 1000"),
            "{why}"
        );
        // A second instance that adds a quarter of one is worth it (1,250 from 1,000).
        kind.observe(&load(2, Some(1250.0)), true, second(60));
        assert_eq!(kind.no_gain(2), None);
        // From two to three, an eighth of two's capacity is needed (1,406 from 1,250).
        kind.observe(&load(3, Some(1400.0)), true, second(90));
        assert!(kind.no_gain(3).is_some());
        kind.observe(&load(3, Some(1410.0)), true, second(120));
        assert_eq!(kind.no_gain(3), None);
        // A count never measured is not judged.
        assert_eq!(kind.no_gain(4), None);
    }

    #[test]
    fn a_step_up_shown_useless_holds_after_coming_back_down() {
        let mut kind = Capacities::default();
        kind.observe(&load(1, Some(1000.0)), true, second(0));
        kind.observe(&load(2, Some(1800.0)), true, second(30));
        kind.observe(&load(3, Some(1850.0)), true, second(60));
        assert!(kind.no_gain(3).is_some());
        // Back at two (calm, or a process lost): the step to three is still known to add
        // nothing, while the step from one to two did add.
        let why = kind.no_gain(2).expect("three were no better than two");
        assert!(why.contains("3 instances finished 1850"), "{why}");
        assert_eq!(kind.no_gain(1), None);
        // A later reading at two that three would have beaten releases it.
        kind.observe(&load(2, Some(1400.0)), true, second(90));
        assert_eq!(kind.no_gain(2), None);
    }

    #[test]
    fn only_whole_loaded_intervals_are_measurements() {
        let busy = |instances, utilization| KindLoad {
            instances,
            utilization,
            capacity_per_s: Some(1000.0),
        };
        // Saturated, two running through the interval.
        assert!(under_load(&busy(2, 0.9), 2, 2, Some(2), false));
        // Backlogged and busy half the time; backlogged but mostly idle is a burst that came
        // just before the analysis.
        assert!(under_load(&busy(2, 0.5), 2, 2, Some(2), true));
        assert!(!under_load(&busy(2, 0.4), 2, 2, Some(2), true));
        assert!(!under_load(&busy(2, 0.7), 2, 2, Some(2), false));
        // A third instance started during the interval (it has no load yet, or was not running
        // at the analysis before): the two others shared their resources with it for part of
        // the interval only.
        assert!(!under_load(&busy(2, 0.9), 3, 2, Some(2), false));
        assert!(!under_load(&busy(3, 0.9), 3, 3, Some(2), false));
        // An actor that stopped or died in the interval: still tracked, its load an old one.
        assert!(!under_load(&busy(2, 0.9), 2, 1, Some(2), false));
        // The first analysis, or a restarted actor (no load).
        assert!(!under_load(&busy(2, 0.9), 2, 2, None, false));
        assert!(!under_load(&busy(1, 0.9), 2, 1, Some(2), false));
    }

    #[test]
    fn only_loaded_intervals_count_and_old_ones_are_forgotten() {
        let mut kind = Capacities::default();
        kind.observe(&load(1, Some(1000.0)), true, second(0));
        // A trickle at two instances (small batches, a low reading) is not kept.
        kind.observe(&load(2, Some(400.0)), false, second(30));
        assert_eq!(kind.no_gain(2), None);
        // Nor an interval that finished nothing.
        kind.observe(&load(2, None), true, second(30));
        assert_eq!(kind.no_gain(2), None);
        kind.observe(&load(2, Some(900.0)), true, second(60));
        assert!(kind.no_gain(2).is_some());
        // Ten minutes on, the measurement at one instance is gone: two are tried afresh.
        kind.forget_older_than(Duration::from_secs(600), second(630));
        assert_eq!(kind.no_gain(2), None);
        kind.forget_older_than(Duration::from_secs(600), second(700));
        assert_eq!(kind, Capacities::default());
    }
}
