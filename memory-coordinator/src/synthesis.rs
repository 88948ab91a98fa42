//! Synthesis, pure: turns the memory's contents and the events recorded since the last
//! snapshot into a summary with highlights an analyst or operator can read.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use swarm_shared::domain::MemoryEntry;

/// Events recorded since the last synthesis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventTally {
    /// Events created.
    pub created: u64,
    /// Documents merged into existing events.
    pub merged: u64,
    /// Projects of created events, in arrival order, at most 50.
    pub projects: Vec<String>,
}

/// Builds the snapshot body.
pub fn synthesise(
    now: DateTime<Utc>,
    namespaces: &std::collections::BTreeMap<String, usize>,
    breakers: &[MemoryEntry],
    performance: Option<&MemoryEntry>,
    tally: &EventTally,
) -> Value {
    let mut highlights = Vec::new();
    let open: Vec<&str> = breakers
        .iter()
        .filter(|entry| entry.value.get("state").and_then(Value::as_str) == Some("open"))
        .map(|entry| entry.key.as_str())
        .collect();
    if !open.is_empty() {
        highlights.push(format!(
            "{} host(s) with an open circuit breaker: {}",
            open.len(),
            open.join(", ")
        ));
    }
    if let Some(entry) = performance {
        let action = entry
            .value
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("none");
        if action != "none" {
            let reason = entry
                .value
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("");
            highlights.push(format!("performance recommends {action}: {reason}"));
        }
    }
    if tally.created > 0 {
        highlights.push(format!(
            "{} new TGE event(s) since the last synthesis: {}",
            tally.created,
            tally.projects.join(", ")
        ));
    }
    if tally.merged > 0 {
        highlights.push(format!(
            "{} further source(s) merged into known events",
            tally.merged
        ));
    }
    json!({
        "generated_at": now,
        "entries": namespaces.values().sum::<usize>(),
        "namespaces": namespaces,
        "open_breakers": open,
        "performance": performance.map(|entry| entry.value.clone()),
        "events": {
            "created": tally.created,
            "merged": tally.merged,
            "projects": tally.projects,
        },
        "highlights": highlights,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: Value) -> MemoryEntry {
        MemoryEntry {
            namespace: "breakers".into(),
            key: key.into(),
            value,
            version: 1,
            written_by: "t".into(),
            updated_at: Utc::now(),
            expires_at: None,
        }
    }

    #[test]
    fn highlights_name_what_matters() {
        let breakers = vec![
            entry("a.example", json!({"state": "open"})),
            entry("b.example", json!({"state": "closed"})),
        ];
        let performance = entry(
            "latest",
            json!({"action": "scale_up", "reason": "5000 items waiting for keyword"}),
        );
        let tally = EventTally {
            created: 2,
            merged: 1,
            projects: vec!["Fhenix".into(), "Caldera".into()],
        };
        let body = synthesise(
            Utc::now(),
            &Default::default(),
            &breakers,
            Some(&performance),
            &tally,
        );
        let highlights: Vec<String> = serde_json::from_value(body["highlights"].clone()).unwrap();
        assert_eq!(highlights.len(), 4, "{highlights:?}");
        assert!(highlights[0].contains("a.example") && !highlights[0].contains("b.example"));
        assert!(highlights[2].contains("Fhenix, Caldera"));
        let quiet = synthesise(
            Utc::now(),
            &Default::default(),
            &[],
            None,
            &EventTally::default(),
        );
        assert_eq!(quiet["highlights"], json!([]));
    }
}
