//! Registry names of a node's singleton actors, which the API looks up by name. A leaf: it
//! imports nothing of the crate.

/// Registry name of a node's queen actor (the API finds the current instance by name).
pub fn queen_name(node: &str) -> String {
    format!("{node}:queen")
}

/// Registry name of a node's memory coordinator actor.
pub fn memory_name(node: &str) -> String {
    format!("{node}:memory-coordinator")
}
