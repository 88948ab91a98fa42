//! Bottleneck detection, pure: from queue depths and each kind's heartbeat counters, find the
//! stage that limits the pipeline and recommend scaling it, or scaling an idle kind down.

use std::collections::BTreeMap;

use swarm_shared::channels::{QUEUE_CLASSIFY, QUEUE_QUALITY, QUEUE_SCRAPE};
use swarm_shared::domain::AgentKind;
use swarm_shared::messages::AgentStats;
use swarm_shared::ports::QueueDepth;

/// What the performance agent recommends.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// Kind that limits throughput, if any.
    pub bottleneck: Option<AgentKind>,
    /// `scale_up`, `scale_down` or `none`.
    pub action: &'static str,
    /// Why, in words.
    pub reason: String,
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

/// Inputs: ready depth per queue, summed stats per kind, and instances per kind.
pub fn analyse(
    depths: &BTreeMap<String, QueueDepth>,
    stats: &BTreeMap<AgentKind, AgentStats>,
    instances: &BTreeMap<AgentKind, u32>,
    backlog_threshold: u64,
) -> Recommendation {
    // The worst backlog relative to the consumer's drain rate limits the pipeline.
    let mut worst: Option<(AgentKind, u64, f64)> = None;
    for (queue, depth) in depths {
        let Some(kind) = consumer_of(queue) else {
            continue;
        };
        if depth.ready < backlog_threshold {
            continue;
        }
        let rate = stats
            .get(&kind)
            .map_or(0.0, |s| s.throughput_per_s)
            .max(0.1);
        let drain_seconds = depth.ready as f64 / rate;
        if worst.is_none_or(|(_, _, seconds)| drain_seconds > seconds) {
            worst = Some((kind, depth.ready, drain_seconds));
        }
    }
    if let Some((kind, ready, seconds)) = worst {
        return Recommendation {
            bottleneck: Some(kind),
            action: "scale_up",
            reason: format!(
                "{ready} items waiting for {kind}; about {seconds:.0}s to drain at the current rate"
            ),
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
                reason: format!("{count} {kind} instances and nothing queued"),
            };
        }
    }
    Recommendation {
        bottleneck: None,
        action: "none",
        reason: "no backlog above the threshold".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(ready: u64, pending: u64) -> QueueDepth {
        QueueDepth { ready, pending }
    }

    fn rate(throughput_per_s: f64) -> AgentStats {
        AgentStats {
            throughput_per_s,
            ..AgentStats::default()
        }
    }

    /// (queue depths, throughput per kind, instances per kind, expected bottleneck, expected action)
    type Case = (
        Vec<(&'static str, QueueDepth)>,
        Vec<(AgentKind, f64)>,
        Vec<(AgentKind, u32)>,
        Option<AgentKind>,
        &'static str,
    );

    #[test]
    fn table() {
        let cases: Vec<Case> = vec![
            (
                vec![(QUEUE_CLASSIFY, depth(10, 0))],
                vec![],
                vec![],
                None,
                "none",
            ),
            (
                vec![(QUEUE_CLASSIFY, depth(5000, 10))],
                vec![(AgentKind::Keyword, 100.0)],
                vec![],
                Some(AgentKind::Keyword),
                "scale_up",
            ),
            // the slower drain wins even with fewer items
            (
                vec![
                    (QUEUE_CLASSIFY, depth(5000, 0)),
                    (QUEUE_QUALITY, depth(2000, 0)),
                ],
                vec![(AgentKind::Keyword, 1000.0), (AgentKind::DataQuality, 10.0)],
                vec![],
                Some(AgentKind::DataQuality),
                "scale_up",
            ),
            (
                vec![(QUEUE_QUALITY, depth(0, 0))],
                vec![],
                vec![(AgentKind::DataQuality, 3)],
                None,
                "scale_down",
            ),
            (
                vec![(QUEUE_QUALITY, depth(0, 2))],
                vec![],
                vec![(AgentKind::DataQuality, 3)],
                None,
                "none",
            ),
        ];
        for (index, (depths, stats, instances, bottleneck, action)) in cases.into_iter().enumerate()
        {
            let depths = depths.into_iter().map(|(q, d)| (q.to_owned(), d)).collect();
            let stats = stats.into_iter().map(|(k, r)| (k, rate(r))).collect();
            let instances = instances.into_iter().collect();
            let got = analyse(&depths, &stats, &instances, 1000);
            assert_eq!(got.bottleneck, bottleneck, "case {index}");
            assert_eq!(got.action, action, "case {index}");
        }
    }
}
