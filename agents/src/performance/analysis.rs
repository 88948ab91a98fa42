//! Bottleneck detection, pure: from queue depths and each kind's heartbeat counters, find the
//! stage that limits the pipeline and recommend scaling it, or scaling an idle kind down.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use swarm_shared::channels::{QUEUE_CLASSIFY, QUEUE_QUALITY, QUEUE_SCRAPE};
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::AgentStats;
use swarm_shared::ports::QueueDepth;

use super::capacity::Capacities;

/// What the performance agent recommends.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// Kind that limits throughput, if any.
    pub bottleneck: Option<AgentKind>,
    /// `scale_up`, `scale_down` or `none`.
    pub action: &'static str,
    /// Why, in words.
    pub reason: String,
    /// Kinds whose last added instances added no capacity under load (see
    /// [`Capacities::no_gain`]): more would wait on the same resource, so none is added on
    /// their backlog.
    pub no_gain: Vec<AgentKind>,
}

/// The kind that consumes a queue.
pub fn consumer_of(queue: &str) -> Option<AgentKind> {
    match queue {
        QUEUE_SCRAPE => Some(AgentKind::Scraping),
        QUEUE_CLASSIFY => Some(AgentKind::Keyword),
        QUEUE_QUALITY => Some(AgentKind::DataQuality),
        _ => None,
    }
}

/// Share of its time a kind must have spent working for a backlog to count as its limit
/// whatever the backlog's size: a kind this busy is saturated, not catching up on a burst.
pub const SATURATED: f64 = 0.8;

/// One actor's cumulative counters at one heartbeat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counters {
    /// Items processed since the actor started.
    pub processed: u64,
    /// Time spent working since the actor started, milliseconds.
    pub busy_ms: u64,
    /// When the heartbeat was sent.
    pub at: DateTime<Utc>,
}

impl Counters {
    /// The counters a heartbeat carries.
    pub fn of(stats: &AgentStats, at: DateTime<Utc>) -> Self {
        Counters {
            processed: stats.processed,
            busy_ms: stats.busy_ms,
            at,
        }
    }
}

/// How one actor worked between two heartbeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActorLoad {
    /// Items it finished.
    pub items: u64,
    /// Seconds it spent working.
    pub busy_s: f64,
    /// Seconds between the two heartbeats.
    pub wall_s: f64,
}

impl ActorLoad {
    /// The load between an earlier and a later heartbeat; none when they are not in order or
    /// the counters went back (the actor restarted in between and counts from zero again).
    pub fn between(earlier: &Counters, later: &Counters) -> Option<Self> {
        let wall_s = (later.at - earlier.at).as_seconds_f64();
        if wall_s <= 0.0 || later.processed < earlier.processed || later.busy_ms < earlier.busy_ms {
            return None;
        }
        Some(ActorLoad {
            items: later.processed - earlier.processed,
            busy_s: (later.busy_ms - earlier.busy_ms) as f64 / 1000.0,
            wall_s,
        })
    }
}

/// How a kind worked over the last analysis interval, from its actors' loads.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct KindLoad {
    /// Actors with a load.
    pub instances: u32,
    /// Mean share of wall time they spent working, 0 to 1.
    pub utilization: f64,
    /// Items a second they finish together while all work; none if they finished nothing.
    pub capacity_per_s: Option<f64>,
}

impl KindLoad {
    /// The kind's load from its actors' loads.
    pub fn of(loads: &[ActorLoad]) -> Self {
        let instances = u32::try_from(loads.len()).unwrap_or(u32::MAX);
        if loads.is_empty() {
            return KindLoad::default();
        }
        let utilization = loads
            .iter()
            .map(|load| (load.busy_s / load.wall_s).min(1.0))
            .sum::<f64>()
            / loads.len() as f64;
        let items: u64 = loads.iter().map(|load| load.items).sum();
        let busy_s: f64 = loads.iter().map(|load| load.busy_s).sum();
        let capacity_per_s =
            (items > 0 && busy_s > 0.0).then(|| items as f64 / busy_s * f64::from(instances));
        KindLoad {
            instances,
            utilization,
            capacity_per_s,
        }
    }
}

/// Inputs: ready depth per queue, each kind's load over the last interval, what each kind
/// finished under load by instance count, instances per kind (for scaling down), the backlog
/// threshold and the analysis interval.
///
/// A queue at or above the threshold names its consumer the bottleneck only when the consumer
/// is short of capacity: it was busy [`SATURATED`] of the time, or the backlog would take it
/// longer than one interval to clear working flat out. A burst its actors clear in seconds,
/// idle the rest of the time, is not a reason to add one; a queue held full by a saturated
/// kind is, whatever its rate over any one heartbeat period. A kind that finished nothing
/// while its queue waited is stalled, which the supervisor's hang checks handle, not scaling.
/// Nor is a kind whose last added instances raised its capacity under load by less than
/// [`super::capacity::MIN_GAIN_SHARE`] of one instance's each: it is listed in `no_gain`.
pub fn analyse(
    depths: &BTreeMap<String, QueueDepth>,
    loads: &BTreeMap<AgentKind, KindLoad>,
    capacities: &BTreeMap<AgentKind, Capacities>,
    instances: &BTreeMap<AgentKind, u32>,
    backlog_threshold: u64,
    interval: Duration,
) -> Recommendation {
    let mut no_gain = Vec::new();
    let mut no_gain_why = Vec::new();
    for (kind, load) in loads {
        if let Some(why) = capacities
            .get(kind)
            .and_then(|measured| measured.no_gain(load.instances))
        {
            no_gain.push(*kind);
            no_gain_why.push(format!("{kind}: {why}"));
        }
    }
    // Of the kinds short of capacity, the one with the longest drain limits the pipeline.
    let mut worst: Option<(AgentKind, u64, KindLoad, f64)> = None;
    for (queue, depth) in depths {
        let Some(kind) = consumer_of(queue) else {
            continue;
        };
        if depth.ready < backlog_threshold {
            continue;
        }
        let Some(load) = loads.get(&kind).copied() else {
            continue;
        };
        let Some(capacity) = load.capacity_per_s else {
            continue;
        };
        let drain_seconds = depth.ready as f64 / capacity;
        let short = load.utilization >= SATURATED || drain_seconds > interval.as_secs_f64();
        if short
            && !no_gain.contains(&kind)
            && worst.is_none_or(|(_, _, _, seconds)| drain_seconds > seconds)
        {
            worst = Some((kind, depth.ready, load, drain_seconds));
        }
    }
    // What is held, said after whatever is recommended.
    let held: String = no_gain_why
        .iter()
        .map(|why| format!("; held: {why}"))
        .collect();
    if let Some((kind, ready, load, seconds)) = worst {
        return Recommendation {
            bottleneck: Some(kind),
            action: "scale_up",
            reason: format!(
                "{ready} items waiting for {kind}; its {} instances worked {:.0}% of the time \
                 and need about {seconds:.0}s to clear them{held}",
                load.instances,
                load.utilization * 100.0
            ),
            no_gain,
        };
    }
    // Nothing backlogged: a kind with several instances and an empty queue can shrink.
    for (queue, depth) in depths {
        let Some(kind) = consumer_of(queue) else {
            continue;
        };
        let count = instances.get(&kind).copied().unwrap_or(0);
        if count > 1 && depth.ready == 0 && depth.pending == 0 {
            return Recommendation {
                bottleneck: None,
                action: "scale_down",
                reason: format!("{count} {kind} instances and nothing queued{held}"),
                no_gain,
            };
        }
    }
    let reason = format!("no kind short of capacity for its backlog{held}");
    Recommendation {
        bottleneck: None,
        action: "none",
        reason,
        no_gain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(ready: u64, pending: u64) -> QueueDepth {
        QueueDepth { ready, pending }
    }

    fn load(instances: u32, utilization: f64, capacity_per_s: Option<f64>) -> KindLoad {
        KindLoad {
            instances,
            utilization,
            capacity_per_s,
        }
    }

    /// (queue depths, load per kind, instances per kind, expected bottleneck, expected action)
    type Case = (
        Vec<(&'static str, QueueDepth)>,
        Vec<(AgentKind, KindLoad)>,
        Vec<(AgentKind, u32)>,
        Option<AgentKind>,
        &'static str,
    );

    #[test]
    fn table() {
        let cases: Vec<Case> = vec![
            // 0: below the threshold
            (
                vec![(QUEUE_CLASSIFY, depth(10, 0))],
                vec![(AgentKind::Keyword, load(1, 1.0, Some(10.0)))],
                vec![],
                None,
                "none",
            ),
            // 1: a burst (every poll queues 2,800 documents), cleared in a second by actors
            // idle 94% of the time
            (
                vec![(QUEUE_CLASSIFY, depth(2800, 0))],
                vec![(AgentKind::Keyword, load(1, 0.06, Some(3000.0)))],
                vec![],
                None,
                "none",
            ),
            // 2: a queue held at max_backlog by a saturated kind, fast enough to clear it
            // within the interval if nothing else came in
            (
                vec![(QUEUE_QUALITY, depth(10_000, 50))],
                vec![(AgentKind::DataQuality, load(1, 0.97, Some(1100.0)))],
                vec![],
                Some(AgentKind::DataQuality),
                "scale_up",
            ),
            // 3: not saturated, but a backlog that needs longer than an interval to clear
            (
                vec![(QUEUE_CLASSIFY, depth(5000, 10))],
                vec![(AgentKind::Keyword, load(2, 0.3, Some(100.0)))],
                vec![],
                Some(AgentKind::Keyword),
                "scale_up",
            ),
            // 4: of two kinds short of capacity, the slower drain wins with fewer items
            (
                vec![
                    (QUEUE_CLASSIFY, depth(5000, 0)),
                    (QUEUE_QUALITY, depth(2000, 0)),
                ],
                vec![
                    (AgentKind::Keyword, load(1, 0.9, Some(1000.0))),
                    (AgentKind::DataQuality, load(1, 0.9, Some(10.0))),
                ],
                vec![],
                Some(AgentKind::DataQuality),
                "scale_up",
            ),
            // 5: a kind that finished nothing while its queue waited is stalled, not short
            (
                vec![(QUEUE_QUALITY, depth(5000, 100))],
                vec![(AgentKind::DataQuality, load(1, 0.0, None))],
                vec![],
                None,
                "none",
            ),
            // 6: no actor of the kind has reported twice yet
            (
                vec![(QUEUE_SCRAPE, depth(5000, 0))],
                vec![],
                vec![],
                None,
                "none",
            ),
            // 7: several instances and nothing queued
            (
                vec![(QUEUE_QUALITY, depth(0, 0))],
                vec![],
                vec![(AgentKind::DataQuality, 3)],
                None,
                "scale_down",
            ),
            // 8: items still taken
            (
                vec![(QUEUE_QUALITY, depth(0, 2))],
                vec![],
                vec![(AgentKind::DataQuality, 3)],
                None,
                "none",
            ),
        ];
        for (index, (depths, loads, instances, bottleneck, action)) in cases.into_iter().enumerate()
        {
            let depths = depths.into_iter().map(|(q, d)| (q.to_owned(), d)).collect();
            let loads = loads.into_iter().collect();
            let instances = instances.into_iter().collect();
            let got = analyse(
                &depths,
                &loads,
                &BTreeMap::new(),
                &instances,
                1000,
                Duration::from_secs(30),
            );
            assert_eq!(got.bottleneck, bottleneck, "case {index}: {}", got.reason);
            assert_eq!(got.action, action, "case {index}: {}", got.reason);
        }
    }

    #[test]
    fn a_kind_more_instances_did_not_help_is_not_named() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        // Data quality on one writer: one instance finished 1,100 a second, two finish 1,150.
        let mut quality = Capacities::default();
        quality.observe(&load(1, 0.95, Some(1100.0)), true, at);
        quality.observe(&load(2, 0.97, Some(1150.0)), true, at);
        let capacities = BTreeMap::from([(AgentKind::DataQuality, quality)]);
        let depths = BTreeMap::from([
            (QUEUE_QUALITY.to_owned(), depth(10_000, 50)),
            (QUEUE_CLASSIFY.to_owned(), depth(3000, 0)),
        ]);
        let saturated = load(2, 0.97, Some(1150.0));
        let loads = BTreeMap::from([(AgentKind::DataQuality, saturated)]);
        let run = |loads: &BTreeMap<AgentKind, KindLoad>, capacities| {
            analyse(
                &depths,
                loads,
                capacities,
                &BTreeMap::new(),
                1000,
                Duration::from_secs(30),
            )
        };
        let got = run(&loads, &capacities);
        assert_eq!(
            (got.bottleneck, got.action),
            (None, "none"),
            "{}",
            got.reason
        );
        assert_eq!(got.no_gain, vec![AgentKind::DataQuality]);
        assert!(
            got.reason.contains("2 instances finished 1150"),
            "{}",
            got.reason
        );
        // Another kind short of capacity is still named, and the list still says it.
        let loads = BTreeMap::from([
            (AgentKind::DataQuality, saturated),
            (AgentKind::Keyword, load(1, 0.9, Some(500.0))),
        ]);
        let got = run(&loads, &capacities);
        assert_eq!(
            (got.bottleneck, got.action),
            (Some(AgentKind::Keyword), "scale_up")
        );
        assert_eq!(got.no_gain, vec![AgentKind::DataQuality]);
        assert!(
            got.reason.contains("; held: data-quality: 2 instances"),
            "{}",
            got.reason
        );
        // Back at one instance (scaled down, or a process lost), the step to two is still
        // known to add nothing.
        let loads = BTreeMap::from([(AgentKind::DataQuality, load(1, 0.95, Some(1100.0)))]);
        let got = run(&loads, &capacities);
        assert_eq!(got.bottleneck, None, "{}", got.reason);
        assert_eq!(got.no_gain, vec![AgentKind::DataQuality]);
        // Without the measurements it would be named.
        let got = run(&loads, &BTreeMap::new());
        assert_eq!(
            got.bottleneck,
            Some(AgentKind::DataQuality),
            "{}",
            got.reason
        );
        assert!(got.no_gain.is_empty());
    }

    fn counters(processed: u64, busy_ms: u64, second: i64) -> Counters {
        Counters {
            processed,
            busy_ms,
            at: DateTime::from_timestamp(1_800_000_000 + second, 0).unwrap(),
        }
    }

    #[test]
    fn loads_come_from_the_cumulative_counters() {
        // Saturated for 30 s but idle during its last heartbeat period (throughput 0 in that
        // heartbeat): the counters still show 29 s of work.
        let busy =
            ActorLoad::between(&counters(1000, 4000, 0), &counters(31_000, 33_000, 30)).unwrap();
        assert_eq!(busy.items, 30_000);
        assert!((busy.busy_s - 29.0).abs() < 1e-9);
        assert!((busy.wall_s - 30.0).abs() < 1e-9);
        // Restarted in between: its counters start from zero again.
        assert_eq!(
            ActorLoad::between(&counters(1000, 4000, 0), &counters(10, 20, 30)),
            None
        );
        // The same heartbeat twice, or out of order.
        assert_eq!(
            ActorLoad::between(&counters(1000, 4000, 30), &counters(1000, 4000, 30)),
            None
        );
        assert_eq!(
            ActorLoad::between(&counters(1000, 4000, 30), &counters(2000, 5000, 0)),
            None
        );

        let idle = ActorLoad::between(&counters(0, 0, 0), &counters(600, 300, 30)).unwrap();
        let kind = KindLoad::of(&[busy, idle]);
        assert_eq!(kind.instances, 2);
        // (29/30 + 0.3/30) / 2
        assert!((kind.utilization - 0.4883).abs() < 1e-3, "{kind:?}");
        // 30,600 items in 29.3 busy seconds, twice (two instances)
        let capacity = kind.capacity_per_s.unwrap();
        assert!((capacity - 2.0 * 30_600.0 / 29.3).abs() < 1e-6, "{kind:?}");
        // Busy more than the wall time (work recorded late) reads as saturated, not more.
        let late = ActorLoad::between(&counters(0, 0, 0), &counters(10, 45_000, 30)).unwrap();
        assert!((KindLoad::of(&[late]).utilization - 1.0).abs() < 1e-9);
        assert_eq!(KindLoad::of(&[]), KindLoad::default());
        let none = ActorLoad::between(&counters(5, 5, 0), &counters(5, 5, 30)).unwrap();
        assert_eq!(KindLoad::of(&[none]).capacity_per_s, None);
    }
}
