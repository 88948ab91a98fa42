//! Queen commands as desired state, and the pure planner hosts use to reconcile with it.
//!
//! A command (restart, recreate, scale, drain) is never fired and forgotten: the queen stores
//! it as desired state (see [`crate::ports::Store::put_desired`]) and announces the change on
//! `swarm:channels:queen-commands`. Every host reconciles on each heartbeat tick and when the
//! announcement arrives, so a lost pub/sub message only delays a command by one heartbeat.
//!
//! Keys: `replicas/<kind>` (`{"replicas": n}`, level-triggered), `drain/<node>`
//! (`{"drained": bool}`, level-triggered), `restart/<node>/<agent>`, `recreate/<kind>` and
//! `recreate/<node>/<agent>`
//! (edge-triggered by their generation: a host applies each generation once, and on its first
//! reconcile only records the generations it finds, so an old restart is not replayed).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{AgentKind, DesiredEntry};
use crate::error::{Error, Result};

/// Largest number of actors of one kind a process may be scaled to.
pub const MAX_REPLICAS: u32 = 64;

/// A command to the swarm, as the API accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Restart one actor: it stops and starts again with the same identity, so it takes back
    /// its pending work.
    Restart {
        /// Node (process) it runs on.
        node: String,
        /// Agent id on that node (`keyword-0`).
        agent: String,
    },
    /// Recreate every actor of a kind on every host: new actors with fresh restart budgets.
    Recreate {
        /// Kind.
        kind: AgentKind,
    },
    /// Recreate one actor: a fresh instance with a fresh restart budget, state rebuilt from the
    /// store, registered anew.
    RecreateAgent {
        /// Node (process) it runs on.
        node: String,
        /// Agent id on that node.
        agent: String,
    },
    /// Run `replicas` actors of a worker kind (scraping, keyword, data-quality) in each
    /// process that runs that kind.
    Scale {
        /// Kind.
        kind: AgentKind,
        /// Actors per process, 1 to 64.
        replicas: u32,
    },
    /// Stop (or resume) taking new work on a node: its workers stop after finishing what they
    /// hold; what they had pending is reclaimed by other consumers.
    Drain {
        /// Node.
        node: String,
        /// True to drain, false to resume.
        #[serde(default = "yes")]
        drained: bool,
    },
}

fn yes() -> bool {
    true
}

/// Kinds whose actors consume a work queue and can be scaled and drained.
pub fn is_worker(kind: AgentKind) -> bool {
    matches!(
        kind,
        AgentKind::Scraping | AgentKind::Keyword | AgentKind::DataQuality
    )
}

/// Longest node name or agent id a command may name (stored keys and `GET /commands` stay
/// small whatever a client sends).
pub const MAX_NAME_CHARS: usize = 128;

/// Checks a node name or agent id: 1 to [`MAX_NAME_CHARS`] letters, digits, `-`, `_` or `.`.
fn check_name(field: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{field}: must be 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'"
    )))
}

impl Command {
    /// Checks the command; the error names the field.
    pub fn validate(&self) -> Result<()> {
        match self {
            Command::Restart { node, agent } | Command::RecreateAgent { node, agent } => {
                check_name("node", node)?;
                check_name("agent", agent)?;
            }
            Command::Recreate { kind } => {
                if *kind == AgentKind::Queen {
                    return Err(Error::Invalid(
                        "kind: the queen cannot recreate itself; restart its process".into(),
                    ));
                }
            }
            Command::Scale { kind, replicas } => {
                if !is_worker(*kind) {
                    return Err(Error::Invalid(format!(
                        "kind: only scraping, keyword and data-quality scale, not {kind}"
                    )));
                }
                if !(1..=MAX_REPLICAS).contains(replicas) {
                    return Err(Error::Invalid(format!(
                        "replicas: must be between 1 and {MAX_REPLICAS}"
                    )));
                }
            }
            Command::Drain { node, .. } => check_name("node", node)?,
        }
        Ok(())
    }

    /// The desired-state key and value the command writes.
    pub fn desired(&self) -> (String, serde_json::Value) {
        match self {
            Command::Restart { node, agent } => (
                format!("restart/{node}/{agent}"),
                serde_json::json!({ "node": node, "agent": agent }),
            ),
            Command::RecreateAgent { node, agent } => (
                format!("recreate/{node}/{agent}"),
                serde_json::json!({ "node": node, "agent": agent }),
            ),
            Command::Recreate { kind } => (
                format!("recreate/{kind}"),
                serde_json::json!({ "kind": kind }),
            ),
            Command::Scale { kind, replicas } => (
                format!("replicas/{kind}"),
                serde_json::json!({ "replicas": replicas }),
            ),
            Command::Drain { node, drained } => (
                format!("drain/{node}"),
                serde_json::json!({ "drained": drained }),
            ),
        }
    }
}

/// An actor of a host, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedActor {
    /// Agent id (`keyword-1`).
    pub id: String,
    /// Kind.
    pub kind: AgentKind,
    /// Stopped because the node is drained.
    pub drained: bool,
}

/// What a host must do to match the desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAction {
    /// Stop and start an actor, keeping its identity.
    Restart(String),
    /// Stop and start an actor with a fresh restart budget.
    Recreate(String),
    /// Start worker number `index` of a kind.
    Start(AgentKind, u32),
    /// Stop and remove an actor (scale down).
    Remove(String),
    /// Stop an actor and keep it stopped (drain).
    Drain(String),
    /// Start a drained actor again.
    Resume(String),
}

impl HostAction {
    /// The action's name in logs and in `tge_swarm_commands_applied_total{action}`.
    pub fn label(&self) -> &'static str {
        match self {
            HostAction::Restart(_) => "restart",
            HostAction::Recreate(_) => "recreate",
            HostAction::Start(..) => "scale_up",
            HostAction::Remove(_) => "scale_down",
            HostAction::Drain(_) => "drain",
            HostAction::Resume(_) => "resume",
        }
    }
}

/// Index of a worker id (`keyword-3` → 3).
fn index_of(id: &str) -> Option<u32> {
    id.rsplit('-').next()?.parse().ok()
}

/// The replica count per kind in the desired state (`replicas/<kind>`), clamped to
/// 1..=[`MAX_REPLICAS`]; kinds without an entry are absent.
pub fn desired_replicas(desired: &[DesiredEntry]) -> BTreeMap<AgentKind, u32> {
    let mut replicas = BTreeMap::new();
    for entry in desired {
        let Some(kind) = entry.key.strip_prefix("replicas/") else {
            continue;
        };
        let kind = AgentKind::parse(kind);
        let count = entry
            .value
            .get("replicas")
            .and_then(serde_json::Value::as_u64);
        if let (Some(kind), Some(count)) = (kind, count) {
            replicas.insert(kind, (count as u32).clamp(1, MAX_REPLICAS));
        }
    }
    replicas
}

/// Plans the actions that bring a host's actors to the desired state. `applied` holds the
/// generations of edge-triggered keys already acted on and is updated; with `first` set the
/// generations are only recorded. Replicas apply only to kinds the host already runs, so a
/// host of other kinds (the queen's, the memory coordinator's) never grows workers.
pub fn plan(
    desired: &[DesiredEntry],
    node: &str,
    actors: &[HostedActor],
    applied: &mut HashMap<String, i64>,
    first: bool,
) -> Vec<HostAction> {
    let mut actions = Vec::new();
    let mut drained = false;
    let replicas = desired_replicas(desired);
    for entry in desired {
        let mut parts = entry.key.splitn(2, '/');
        let (Some(prefix), Some(rest)) = (parts.next(), parts.next()) else {
            continue;
        };
        match prefix {
            "drain" if rest == node => {
                drained = entry
                    .value
                    .get("drained")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false);
            }

            "restart" | "recreate" => {
                let seen = applied.insert(entry.key.clone(), entry.generation);
                let fresh = !first && seen.is_none_or(|generation| generation < entry.generation);
                if !fresh {
                    continue;
                }
                for actor in actors {
                    if actor.drained {
                        continue;
                    }
                    let this_actor = rest == format!("{node}/{}", actor.id);
                    let matches = if prefix == "restart" {
                        this_actor
                    } else {
                        this_actor || rest == actor.kind.as_str()
                    };
                    if matches && prefix == "restart" {
                        actions.push(HostAction::Restart(actor.id.clone()));
                    } else if matches {
                        actions.push(HostAction::Recreate(actor.id.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    for (kind, wanted) in replicas {
        let mut indexes: Vec<(u32, &HostedActor)> = actors
            .iter()
            .filter(|actor| actor.kind == kind)
            .filter_map(|actor| index_of(&actor.id).map(|index| (index, actor)))
            .collect();
        if indexes.is_empty() {
            // This host does not run the kind.
            continue;
        }
        indexes.sort_by_key(|(index, _)| *index);
        for (index, actor) in &indexes {
            if *index >= wanted {
                actions.push(HostAction::Remove(actor.id.clone()));
            }
        }
        for index in 0..wanted {
            if !indexes.iter().any(|(existing, _)| *existing == index) {
                actions.push(HostAction::Start(kind, index));
            }
        }
    }
    for actor in actors {
        if !is_worker(actor.kind) {
            continue;
        }
        if drained && !actor.drained {
            actions.push(HostAction::Drain(actor.id.clone()));
        } else if !drained && actor.drained {
            actions.push(HostAction::Resume(actor.id.clone()));
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn entry(key: &str, value: serde_json::Value, generation: i64) -> DesiredEntry {
        DesiredEntry {
            key: key.into(),
            value,
            generation,
            updated_at: Utc::now(),
        }
    }

    fn actor(id: &str, kind: AgentKind) -> HostedActor {
        HostedActor {
            id: id.into(),
            kind,
            drained: false,
        }
    }

    #[test]
    fn commands_validate_and_map_to_keys() {
        let scale = Command::Scale {
            kind: AgentKind::Keyword,
            replicas: 3,
        };
        assert!(scale.validate().is_ok());
        assert_eq!(scale.desired().0, "replicas/keyword");
        let bad = Command::Scale {
            kind: AgentKind::Queen,
            replicas: 3,
        };
        assert!(bad.validate().unwrap_err().to_string().contains("kind"));
        let zero = Command::Scale {
            kind: AgentKind::Keyword,
            replicas: 0,
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("replicas")
        );
        let parsed: Command = serde_json::from_str(r#"{"action":"drain","node":"n1"}"#).unwrap();
        assert_eq!(
            parsed,
            Command::Drain {
                node: "n1".into(),
                drained: true
            }
        );
        assert!(serde_json::from_str::<Command>(r#"{"action":"explode"}"#).is_err());
    }

    #[test]
    fn restarts_apply_once_per_generation_and_not_on_first_look() {
        let actors = vec![
            actor("keyword-0", AgentKind::Keyword),
            actor("keyword-1", AgentKind::Keyword),
        ];
        let desired = vec![entry("restart/n1/keyword-1", serde_json::json!({}), 1)];
        let mut applied = HashMap::new();
        assert!(plan(&desired, "n1", &actors, &mut applied, true).is_empty());
        assert!(plan(&desired, "n1", &actors, &mut applied, false).is_empty());
        let desired = vec![entry("restart/n1/keyword-1", serde_json::json!({}), 2)];
        assert_eq!(
            plan(&desired, "n1", &actors, &mut applied, false),
            vec![HostAction::Restart("keyword-1".into())]
        );
        assert!(plan(&desired, "n1", &actors, &mut applied, false).is_empty());
        // Another node's restart is not ours.
        let desired = vec![entry("restart/n2/keyword-1", serde_json::json!({}), 1)];
        assert!(plan(&desired, "n1", &actors, &mut applied, false).is_empty());
    }

    #[test]
    fn node_and_agent_names_are_bounded() {
        let long = "n".repeat(MAX_NAME_CHARS + 1);
        let cases = [
            Command::Drain {
                node: long.clone(),
                drained: true,
            },
            Command::Restart {
                node: "n1".into(),
                agent: long.clone(),
            },
            Command::RecreateAgent {
                node: "n1/../x".into(),
                agent: "keyword-0".into(),
            },
            Command::Restart {
                node: String::new(),
                agent: "keyword-0".into(),
            },
        ];
        for command in cases {
            let err = command.validate().unwrap_err().to_string();
            assert!(err.contains("must be 1 to 128"), "{err}");
        }
        let fine = Command::Restart {
            node: "n".repeat(MAX_NAME_CHARS),
            agent: "keyword-0".into(),
        };
        assert!(fine.validate().is_ok());
    }

    #[test]
    fn recreate_hits_every_actor_of_the_kind() {
        let actors = vec![
            actor("keyword-0", AgentKind::Keyword),
            actor("data-quality-0", AgentKind::DataQuality),
        ];
        let desired = vec![entry("recreate/keyword", serde_json::json!({}), 1)];
        let mut applied = HashMap::new();
        assert_eq!(
            plan(&desired, "n1", &actors, &mut applied, false),
            vec![HostAction::Recreate("keyword-0".into())]
        );
        // One actor by node and id; another node's key is not this host's business.
        let actors = vec![
            actor("keyword-0", AgentKind::Keyword),
            actor("keyword-1", AgentKind::Keyword),
        ];
        let one = Command::RecreateAgent {
            node: "n1".into(),
            agent: "keyword-1".into(),
        };
        assert!(one.validate().is_ok());
        let (key, value) = one.desired();
        assert_eq!(key, "recreate/n1/keyword-1");
        let desired = vec![
            entry(&key, value, 1),
            entry("recreate/n2/keyword-0", serde_json::json!({}), 1),
        ];
        assert_eq!(
            plan(&desired, "n1", &actors, &mut HashMap::new(), false),
            vec![HostAction::Recreate("keyword-1".into())]
        );
    }

    #[test]
    fn scaling_starts_and_removes_by_index() {
        let actors = vec![
            actor("keyword-0", AgentKind::Keyword),
            actor("scraping-0", AgentKind::Scraping),
        ];
        let up = vec![entry(
            "replicas/keyword",
            serde_json::json!({"replicas": 3}),
            1,
        )];
        let mut applied = HashMap::new();
        assert_eq!(
            plan(&up, "n1", &actors, &mut applied, false),
            vec![
                HostAction::Start(AgentKind::Keyword, 1),
                HostAction::Start(AgentKind::Keyword, 2)
            ]
        );
        let three = vec![
            actor("keyword-0", AgentKind::Keyword),
            actor("keyword-1", AgentKind::Keyword),
            actor("keyword-2", AgentKind::Keyword),
        ];
        let down = vec![entry(
            "replicas/keyword",
            serde_json::json!({"replicas": 1}),
            2,
        )];
        assert_eq!(
            plan(&down, "n1", &three, &mut applied, false),
            vec![
                HostAction::Remove("keyword-1".into()),
                HostAction::Remove("keyword-2".into())
            ]
        );
        // A host that does not run the kind (a scraping host, the queen's host) does nothing.
        let other = vec![actor("scraping-0", AgentKind::Scraping)];
        assert!(plan(&up, "n1", &other, &mut applied, false).is_empty());
        let queen = vec![actor("queen", AgentKind::Queen)];
        assert!(plan(&up, "n1", &queen, &mut applied, false).is_empty());
    }

    #[test]
    fn drain_is_level_triggered_for_workers_only() {
        let actors = vec![
            actor("keyword-0", AgentKind::Keyword),
            actor("performance-0", AgentKind::Performance),
        ];
        let drain = vec![entry("drain/n1", serde_json::json!({"drained": true}), 1)];
        let mut applied = HashMap::new();
        assert_eq!(
            plan(&drain, "n1", &actors, &mut applied, true),
            vec![HostAction::Drain("keyword-0".into())]
        );
        let mut drained = actors.clone();
        drained[0].drained = true;
        assert!(plan(&drain, "n1", &drained, &mut applied, false).is_empty());
        let resume = vec![entry("drain/n1", serde_json::json!({"drained": false}), 2)];
        assert_eq!(
            plan(&resume, "n1", &drained, &mut applied, false),
            vec![HostAction::Resume("keyword-0".into())]
        );
        assert!(plan(&drain, "n2", &actors, &mut applied, false).is_empty());
    }
}
