//! The queen crate's error at its boundary: why a swarm, or one of its ports, could not
//! start. A leaf: it imports nothing of the crate. Its message says what was being done and
//! the cause follows as its source, so `main.rs` prints the whole chain
//! ("binding the API to 127.0.0.1:8080 (server.api_addr): Address already in use").

/// Why a swarm (or its store, ports, metrics or tracing) could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A store, bus, queue or registry call failed while doing something named.
    #[error("{doing}")]
    Port {
        /// What was being done, with the setting that names the server.
        doing: String,
        /// Why it failed.
        #[source]
        source: swarm_shared::Error,
    },
    /// A store, bus, queue or registry call failed.
    #[error(transparent)]
    Shared(#[from] swarm_shared::Error),
    /// A socket could not be bound or read while doing something named.
    #[error("{doing}")]
    Io {
        /// What was being done, with the setting that names the address.
        doing: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A socket could not be read.
    #[error(transparent)]
    Socket(#[from] std::io::Error),
    /// An actor did not start.
    #[error("{doing}")]
    Spawn {
        /// Which actor.
        doing: String,
        /// Why it did not start.
        #[source]
        source: ractor::SpawnErr,
    },
    /// The configuration cannot run as it is; the message names the setting.
    #[error("{0}")]
    Config(String),
    /// A process-wide facility (the metrics recorder, the tracing subscriber or exporter)
    /// could not be installed.
    #[error("{0}")]
    Install(String),
}

/// Names what was being done when a call failed, the way `anyhow::Context` does, into a
/// [`StartError`].
pub trait Doing<T> {
    /// Attaches `doing` (built only on failure) to the error.
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, StartError>;
}

impl<T> Doing<T> for Result<T, swarm_shared::Error> {
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, StartError> {
        self.map_err(|source| StartError::Port {
            doing: doing(),
            source,
        })
    }
}

impl<T> Doing<T> for Result<T, std::io::Error> {
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, StartError> {
        self.map_err(|source| StartError::Io {
            doing: doing(),
            source,
        })
    }
}

impl<T> Doing<T> for Result<T, ractor::SpawnErr> {
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, StartError> {
        self.map_err(|source| StartError::Spawn {
            doing: doing(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn the_message_names_the_step_and_the_source_carries_the_cause() {
        let failed: Result<(), std::io::Error> = Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "Address already in use",
        ));
        let err = failed
            .doing(|| "binding the API to 127.0.0.1:8080 (server.api_addr)".into())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "binding the API to 127.0.0.1:8080 (server.api_addr)"
        );
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("Address already in use")
        );
        let store: Result<(), swarm_shared::Error> =
            Err(swarm_shared::Error::Conflict("source `a`".into()));
        let err = store.doing(|| "seeding source a".into()).unwrap_err();
        assert_eq!(err.to_string(), "seeding source a");
        assert!(err.source().is_some());
        // Without a named step, the cause's own message.
        let bare = StartError::from(swarm_shared::Error::Conflict("x".into()));
        assert_eq!(
            bare.to_string(),
            swarm_shared::Error::Conflict("x".into()).to_string()
        );
    }
}
