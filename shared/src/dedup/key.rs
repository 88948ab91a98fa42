//! Merge keys, pure: announcements of one project merge into one event under the same key
//! (its name's letters and digits), and a document that names no project is keyed by a
//! fingerprint of its title, so a syndicated copy of the same story still merges.

use crate::domain::{Detection, fingerprint};

/// Prefix of the merge key of a document that names no project (the rest is a fingerprint of
/// its title). Near-duplicate matching treats such keys as compatible with any project.
pub const TITLE_KEY_PREFIX: &str = "title:";

/// Whether two documents' merge keys allow them to be copies of each other: the same key, or
/// one of them names no project (a [`TITLE_KEY_PREFIX`] key).
pub fn merge_keys_compatible(a: &str, b: &str) -> bool {
    a == b || a.starts_with(TITLE_KEY_PREFIX) || b.starts_with(TITLE_KEY_PREFIX)
}

/// Merge key of a project name: lowercase letters and digits only.
pub fn project_key_of(project: &str) -> String {
    project
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The key under which announcements merge into one event: the project's letters and digits,
/// or (no project named) a fingerprint of the normalised title, so a syndicated copy of the
/// same story still merges.
pub fn merge_key(detection: &Detection, title: &str) -> String {
    if let Some(project) = &detection.project {
        let key = project_key_of(project);
        if !key.is_empty() {
            return key;
        }
    }
    format!("{}{}", TITLE_KEY_PREFIX, fingerprint(title))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keys() {
        let mut detection = Detection {
            join_only: false,
            score: 0.9,
            is_tge: true,
            project: Some("Fhenix Protocol".into()),
            token: None,
            event_date: None,
            evidence: vec![],
        };
        assert_eq!(merge_key(&detection, "t"), "fhenixprotocol");
        detection.project = None;
        assert_eq!(
            merge_key(&detection, "Big  News"),
            merge_key(&detection, "big news")
        );
        assert_ne!(merge_key(&detection, "a"), merge_key(&detection, "b"));
    }

    #[test]
    fn keys_are_compatible_when_equal_or_when_one_names_no_project() {
        let cases = [
            ("somnia", "somnia", true),
            ("somnia", "caldera", false),
            ("title:abc", "somnia", true),
            ("somnia", "title:abc", true),
            ("title:abc", "title:def", true),
        ];
        for (a, b, compatible) in cases {
            assert_eq!(merge_keys_compatible(a, b), compatible, "{a} ~ {b}");
        }
        assert_eq!(project_key_of("Fhenix Protocol!"), "fhenixprotocol");
        assert_eq!(project_key_of("ÉTHER-fi 2"), "étherfi2");
        assert_eq!(project_key_of("--"), "");
    }
}
