//! The error type of the shared crate. Variants say which part failed; messages are lowercase.

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors raised by the ports, adapters and configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; `field` names the offending key.
    #[error("invalid config at `{field}`: {message}")]
    Config {
        /// Dotted path of the field, e.g. `sources[3].interval`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A record was not found.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Kind of record.
        entity: &'static str,
        /// Its identifier.
        id: String,
    },
    /// A record conflicts with an existing one (e.g. a duplicate unique name).
    #[error("{0}")]
    Conflict(String),
    /// Input failed validation; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A payload could not be encoded or decoded.
    #[error("codec error: {0}")]
    Codec(#[from] serde_json::Error),
    /// A server the swarm depends on (Redis, Consul) failed or cannot be reached.
    #[error("{service} unavailable: {message}")]
    Unavailable {
        /// Which server (`redis`, `consul`).
        service: &'static str,
        /// What failed.
        message: String,
    },
    /// The bus or a queue is closed (the process is shutting down).
    #[error("{0} is closed")]
    Closed(&'static str),
    /// An I/O error, with the path or operation it concerns.
    #[error("{context}: {source}")]
    Io {
        /// Path or operation.
        context: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::Config`].
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Unavailable`].
    pub fn unavailable(service: &'static str, message: impl ToString) -> Self {
        Error::Unavailable {
            service,
            message: message.to_string(),
        }
    }

    /// Whether the error is a dependency being down (worth retrying), not bad input.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable { .. } | Error::Closed(_) => true,
            Error::Store(err) => matches!(
                err,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
            ),
            _ => false,
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}
