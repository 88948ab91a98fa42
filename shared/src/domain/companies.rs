//! The watchlist: companies with their aliases, tickers and priority.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// Watchlist priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priority {
    /// Most watched.
    High,
    /// Watched.
    Medium,
    /// Tracked.
    Low,
}

impl Priority {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "HIGH",
            Priority::Medium => "MEDIUM",
            Priority::Low => "LOW",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Priority> {
        match text {
            "HIGH" => Some(Priority::High),
            "MEDIUM" => Some(Priority::Medium),
            "LOW" => Some(Priority::Low),
            _ => None,
        }
    }
}

/// A watchlist company as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyInput {
    /// Canonical name (unique).
    pub name: String,
    /// Other names it goes by.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Token tickers, without `$`; digits allowed (SP1).
    #[serde(default)]
    pub tickers: Vec<String>,
    /// Watch priority.
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// Token status (`pre_token`, `has_token`, ...), free text.
    #[serde(default = "default_status")]
    pub status: String,
    /// Phrases that mean the name is used in another sense (a volcanic caldera).
    #[serde(default)]
    pub exclusions: Vec<String>,
}

pub(super) fn default_priority() -> Priority {
    Priority::Medium
}

pub(super) fn default_status() -> String {
    "pre_token".to_owned()
}

/// Most aliases, tickers or exclusions a company may list.
pub const MAX_COMPANY_LIST: usize = 50;
/// Longest alias, exclusion or status, in bytes.
pub const MAX_COMPANY_TEXT: usize = 200;

impl CompanyInput {
    /// Checks the input; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(Error::Invalid("name: must be 1 to 200 characters".into()));
        }
        if self.status.len() > MAX_COMPANY_TEXT {
            return Err(Error::Invalid(format!(
                "status: must be at most {MAX_COMPANY_TEXT} bytes"
            )));
        }
        for (field, list) in [
            ("aliases", &self.aliases),
            ("tickers", &self.tickers),
            ("exclusions", &self.exclusions),
        ] {
            if list.len() > MAX_COMPANY_LIST {
                return Err(Error::Invalid(format!(
                    "{field}: at most {MAX_COMPANY_LIST} entries"
                )));
            }
        }
        for (index, alias) in self.aliases.iter().enumerate() {
            if alias.trim().is_empty() || alias.len() > MAX_COMPANY_TEXT {
                return Err(Error::Invalid(format!(
                    "aliases[{index}]: must be 1 to {MAX_COMPANY_TEXT} bytes"
                )));
            }
        }
        for (index, ticker) in self.tickers.iter().enumerate() {
            if !super::valid_ticker(ticker) {
                return Err(Error::Invalid(format!(
                    "tickers[{index}]: `{ticker}` must be 1 to 12 letters or digits"
                )));
            }
        }
        for (index, exclusion) in self.exclusions.iter().enumerate() {
            if exclusion.trim().is_empty() || exclusion.len() > MAX_COMPANY_TEXT {
                return Err(Error::Invalid(format!(
                    "exclusions[{index}]: must be 1 to {MAX_COMPANY_TEXT} bytes"
                )));
            }
        }
        Ok(())
    }
}

/// A stored watchlist company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Company {
    /// Identifier.
    pub id: i64,
    /// Canonical name.
    pub name: String,
    /// Other names.
    pub aliases: Vec<String>,
    /// Tickers.
    pub tickers: Vec<String>,
    /// Watch priority.
    pub priority: Priority,
    /// Token status.
    pub status: String,
    /// Homonym exclusions.
    pub exclusions: Vec<String>,
}

impl Company {
    /// Whether `name` is this company's name or one of its aliases, compared as
    /// [`normalise_for_hash`](super::normalise_for_hash) writes them (case, accents and
    /// punctuation aside).
    pub fn goes_by(&self, name: &str) -> bool {
        let wanted = super::normalise_for_hash(name);
        super::normalise_for_hash(&self.name) == wanted
            || self
                .aliases
                .iter()
                .any(|alias| super::normalise_for_hash(alias) == wanted)
    }
}
