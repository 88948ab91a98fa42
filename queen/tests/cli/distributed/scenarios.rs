//! The scenarios: kills, server restarts, random kills, failover to a peer.

use rand::Rng;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::*;

#[test]
pub(super) fn killed_agents_lose_nothing_and_duplicate_nothing() {
    let mut rng = seed_rng();
    // Borrowed, not moved out: the world (servers, directory) lives to the end of the test.
    let mut world = World::start(&mut rng);
    let feed_addr = world.feed_addr;
    let World {
        processes,
        redis,
        projects,
        ..
    } = &mut world;

    // The four channels exist (every process subscribes), and the work queues have groups.
    let channels = redis.cli(&["PUBSUB", "CHANNELS", "swarm:*"]);
    for channel in [
        "swarm:channels:agent-communication",
        "swarm:channels:queen-commands",
        "swarm:channels:memory-sync",
        "swarm:channels:health-checks",
    ] {
        assert!(
            channels.contains(channel),
            "{channel} missing from {channels}"
        );
    }

    // Feeds arrive in bursts while keyword and data-quality agents are killed: each at
    // least three times at a random moment when it holds work it took and has not
    // acknowledged, and a few more times at plain random moments.
    let keyword = Role::Agent("keyword");
    let quality = Role::Agent("data-quality");
    let victims = [
        (keyword, swarm_shared::channels::QUEUE_CLASSIFY, "keyword-0"),
        (
            quality,
            swarm_shared::channels::QUEUE_QUALITY,
            "data-quality-0",
        ),
    ];
    let mut held_kills = HashMap::from([(keyword, 0u32), (quality, 0u32)]);
    let mut next_feed = 0;
    let mut round = 0;
    let reserved = 6;
    while held_kills
        .values()
        .any(|kills| *kills < HELD_KILLS_PER_KIND)
        || next_feed < FEEDS - reserved
    {
        round += 1;
        assert!(
            round < 60,
            "agents never caught holding work: {held_kills:?}\n{}",
            processes.logs_tail()
        );
        let burst = rng.random_range(2..6).min(FEEDS - reserved - next_feed);
        for index in next_feed..next_feed + burst {
            processes.add_source(feed_addr, index);
        }
        next_feed += burst;
        let (role, queue, agent) = victims[round % 2];
        let recovered_before = processes.count_in_logs(RECOVERED);
        // A fast agent holds a batch only for moments (a clean CI run caught the keyword
        // agent once in 30 tries): its next batch is slowed (6 s), so the random pause lands
        // while it holds work. A fault not used yet dies with the process at its kill.
        processes.inject(&format!("{}/{agent}", role.node()), "slow", 1);
        if processes.kill_while_holding_work(
            (role, queue, agent),
            redis,
            &mut rng,
            Duration::from_secs(3),
            true,
        ) {
            *held_kills.get_mut(&role).unwrap() += 1;
            // The restarted process takes back what the killed one held before anything else
            // happens to it (otherwise the next kill could count the same entries again).
            eventually(
                Duration::from_secs(30),
                "the restarted agent took back its pending work",
                || processes.count_in_logs(RECOVERED) > recovered_before,
            );
        }
        if rng.random_bool(0.3) {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
            processes.kill_and_restart(victims[rng.random_range(0..2)].0);
        }
    }
    eprintln!(
        "kills while holding work: keyword {}, data-quality {}",
        held_kills[&keyword], held_kills[&quality]
    );

    // A consumer that dies for good: a second keyword process joins, the first is killed
    // while holding work and never comes back. Its pending entries are claimed by the peer,
    // released by the health supervisor's failover or, at the latest, once idle past the
    // visibility timeout (XAUTOCLAIM).
    let peer = Role::Peer("keyword");
    processes.spawn(peer);
    wait_for_peer_keyword(processes);
    // A fast keyword agent sharing the queue holds work only for moments: slowed down (6 s
    // over its next batches), it is caught holding work at once.
    processes.inject("keyword-node/keyword-0", "slow", 3);
    let mut killed_for_good = false;
    while next_feed < FEEDS && !killed_for_good {
        // One feed per attempt: a fast keyword agent sharing the queue with its peer holds work
        // only for moments, so the reserved feeds buy as many attempts as possible.
        let burst = 1;
        for index in next_feed..next_feed + burst {
            processes.add_source(feed_addr, index);
        }
        next_feed += burst;
        killed_for_good = processes.kill_while_holding_work(
            (keyword, swarm_shared::channels::QUEUE_CLASSIFY, "keyword-0"),
            redis,
            &mut rng,
            Duration::from_secs(3),
            false,
        );
    }
    for index in next_feed..FEEDS {
        processes.add_source(feed_addr, index);
    }
    assert!(
        killed_for_good,
        "the first keyword agent was never caught holding work"
    );

    // The dead consumer's entries are claimed once idle past the visibility timeout.
    eventually(
        Duration::from_secs(30),
        "the dead consumer's work claimed",
        || {
            let orphaned = redis.pending(
                swarm_shared::channels::QUEUE_CLASSIFY,
                "keyword-node/keyword-0",
            );
            orphaned.trim().is_empty()
        },
    );
    wait_for_all_events(processes, projects, Duration::from_secs(120));
    let recovered = processes.count_in_logs(RECOVERED);
    eprintln!("restarts that took back pending work: {recovered}");
    let held = held_kills.values().sum::<u32>() as usize;
    assert!(
        recovered >= held,
        "every kill while holding work is followed by a recovery: {held} kills, {recovered} recoveries"
    );

    let metrics_keys = redis.cli(&["KEYS", "swarm:metrics:*"]);
    assert!(
        metrics_keys.contains("swarm:metrics:keyword-peer-node/keyword-0"),
        "{metrics_keys}"
    );
    let memory_keys = redis.cli(&["KEYS", "swarm:memory:*"]);
    assert!(
        memory_keys.contains("swarm:memory:events:"),
        "{memory_keys}"
    );
    let groups = redis.cli(&["XINFO", "GROUPS", "swarm:queue:classify"]);
    assert!(groups.contains("swarm"), "stream group missing: {groups}");
    let metrics = processes.metrics_text();
    assert!(
        metrics.contains("tge_swarm_dependency_up"),
        "queen metrics served"
    );
}

#[test]
pub(super) fn redis_and_postgres_restarts_lose_nothing() {
    let mut rng = seed_rng();
    let mut world = World::start(&mut rng);
    let feed_addr = world.feed_addr;
    let World {
        processes,
        redis,
        postgres,
        projects,
        ..
    } = &mut world;

    let third = FEEDS / 3;
    for index in 0..third {
        processes.add_source(feed_addr, index);
    }
    std::thread::sleep(Duration::from_millis(rng.random_range(200..1200)));

    // Redis goes away mid-run: the swarm degrades and says so, then catches up.
    ride_out_outage(processes, "bus", || redis.stop(), || redis.launch());
    for index in third..2 * third {
        processes.add_source(feed_addr, index);
    }
    std::thread::sleep(Duration::from_millis(rng.random_range(200..1200)));

    // Postgres goes away mid-run.
    for index in 2 * third..FEEDS {
        processes.add_source(feed_addr, index);
    }
    std::thread::sleep(Duration::from_millis(rng.random_range(100..800)));
    ride_out_outage(processes, "store", || postgres.stop(), || postgres.launch());

    wait_for_all_events(processes, projects, Duration::from_secs(120));
}

/// Fifty `kill -9`s of a random process of the pipeline (queen, scraping, keyword, data
/// quality), each restarted under its node name; half strike within 50 ms of a feed request
/// reaching the server. Every announcement still ends up exactly once.
#[test]
pub(super) fn fifty_random_kills_lose_and_duplicate_nothing() {
    const KILLS: usize = 50;
    let mut rng = seed_rng();
    let mut world = World::start(&mut rng);
    let feed_addr = world.feed_addr;
    let hits = world.hits.clone();
    let World {
        processes,
        projects,
        ..
    } = &mut world;
    let victims = [
        Role::Queen,
        Role::Agent("scraping"),
        Role::Agent("keyword"),
        Role::Agent("data-quality"),
    ];
    let mut next_feed = 0;
    let mut near_fetch = 0;
    for kill in 0..KILLS {
        eventually(Duration::from_secs(30), "the queen's API", || {
            processes.get("/healthz").is_some()
        });
        if next_feed < FEEDS {
            processes.add_source(feed_addr, next_feed);
            next_feed += 1;
        }
        near_fetch += usize::from(wait_for_kill_moment(kill, &hits, &mut rng, 1500));
        processes.kill_and_restart(victims[rng.random_range(0..victims.len())]);
    }
    eprintln!("{KILLS} kills, {near_fetch} within 50 ms of a fetch");
    assert!(
        near_fetch >= KILLS / 2 - 2,
        "too few kills near a fetch: {near_fetch}"
    );
    eventually(Duration::from_secs(30), "the queen's API", || {
        processes.get("/healthz").is_some()
    });
    while next_feed < FEEDS {
        processes.add_source(feed_addr, next_feed);
        next_feed += 1;
    }
    wait_for_all_events(processes, projects, Duration::from_secs(180));
}

/// Waits until the second keyword process's agent is healthy.
pub(super) fn wait_for_peer_keyword(processes: &Processes) {
    eventually(
        Duration::from_secs(30),
        "the peer keyword agent healthy",
        || {
            processes.get("/api/v1/agents").is_some_and(|(_, body)| {
                body["agents"].as_array().is_some_and(|agents| {
                    agents.iter().any(|agent| {
                        agent["id"] == "keyword-peer-node/keyword-0" && agent["status"] == "healthy"
                    })
                })
            })
        },
    );
}

/// A dead agent's work must move by failover, not by the visibility timeout: a long one.
pub(super) fn failover_config() -> String {
    CONFIG
        .replace(
            "visibility_timeout = \"5s\"",
            "visibility_timeout = \"120s\"",
        )
        .replace(
            "missed_heartbeats = 3",
            "missed_heartbeats = 3\ninterval = \"300ms\"",
        )
}

#[test]
pub(super) fn a_dead_agents_pending_work_fails_over_to_its_peer() {
    let mut rng = seed_rng();
    let mut world = World::start_with(&mut rng, &failover_config());
    let feed_addr = world.feed_addr;
    let World {
        processes,
        redis,
        projects,
        ..
    } = &mut world;
    let keyword = Role::Agent("keyword");
    let peer = Role::Peer("keyword");
    processes.spawn(peer);
    wait_for_peer_keyword(processes);
    // Slowed down (6 s over its next batches), the first keyword process is caught holding
    // work after a feed or two; then it is killed for good.
    processes.inject("keyword-node/keyword-0", "slow", 3);
    let mut next_feed = 0;
    let mut killed = false;
    while !killed {
        assert!(
            next_feed < FEEDS,
            "the keyword agent was never caught holding work\n{}",
            processes.logs_tail()
        );
        processes.add_source(feed_addr, next_feed);
        next_feed += 1;
        killed = processes.kill_while_holding_work(
            (keyword, swarm_shared::channels::QUEUE_CLASSIFY, "keyword-0"),
            redis,
            &mut rng,
            Duration::from_secs(3),
            false,
        );
    }
    let killed_at = Instant::now();
    for index in next_feed..FEEDS {
        processes.add_source(feed_addr, index);
    }
    // Heartbeats stop and /healthz does not answer: after three probes the supervisor releases
    // the dead consumer's entries, and the peer takes them.
    let mut failover = Value::Null;
    eventually(Duration::from_secs(60), "the failover recorded", || {
        let Some((200, body)) =
            processes.get("/api/v1/supervisor/actions?component=keyword-node%2Fkeyword-0")
        else {
            return false;
        };
        let found = body["actions"].as_array().and_then(|actions| {
            actions
                .iter()
                .find(|action| action["action"] == "failover")
                .cloned()
        });
        match found {
            Some(action) => {
                failover = action;
                true
            }
            None => false,
        }
    });
    // Measured, not asserted: the closing note quotes it.
    eprintln!("failover recorded {:?} after the kill", killed_at.elapsed());
    assert_eq!(failover["outcome"], "succeeded", "{failover}");
    assert_eq!(failover["observation"], "unreachable", "{failover}");
    assert_eq!(failover["kind"], "keyword", "{failover}");
    let reason = failover["reason"].as_str().unwrap();
    let released: u64 = reason
        .split(" pending item(s) released")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no count in {reason}"));
    assert!(released >= 1, "the held work was released: {reason}");
    assert!(reason.contains("1 healthy peer"), "{reason}");
    let orphaned = redis.pending(
        swarm_shared::channels::QUEUE_CLASSIFY,
        "keyword-node/keyword-0",
    );
    assert!(
        orphaned.trim().is_empty(),
        "nothing left with the dead consumer: {orphaned}"
    );
    // With a 120 s visibility timeout, only the failover can have moved that work this soon.
    wait_for_all_events(processes, projects, Duration::from_secs(90));
    verify_exactly_once(processes, projects);
}
