//! What a fresh store is given at start: the configured sources and watchlist, and the
//! bootstrap admin key; and the check of the config's CSS selectors.

use crate::error::{Doing as _, StartError};
use crate::keys::{ADMIN_SCOPE, hash_key};
use swarm_shared::config::Config;
use swarm_shared::ports::Store;

/// Checks the CSS selectors of the config's sources (the shared config crate cannot parse
/// CSS); the error names the source.
pub fn validate_config_selectors(config: &Config) -> Result<(), StartError> {
    for (index, source) in config.sources.iter().enumerate() {
        if let Some(selectors) = &source.selectors
            && let Err(err) = swarm_agents::scraping::parse::validate_selectors(selectors)
        {
            return Err(StartError::Config(format!(
                "invalid config at `sources[{index}]` ({}): {err}",
                source.name
            )));
        }
    }
    Ok(())
}

/// Seeds the config's sources and watchlist into the store, once per store.
pub(super) async fn seed(store: &dyn Store, config: &Config) -> Result<(), StartError> {
    if !store.claim_once("seeded:config").await? {
        return Ok(());
    }
    let x_token = config.scraping.x_bearer_token.is_some();
    for source in &config.sources {
        // X sources are seeded disabled until a bearer token is configured (enable them
        // through the API once it is).
        let mut source = source.clone();
        if source.kind == swarm_shared::domain::SourceKind::X && !x_token {
            source.enabled = false;
        }
        match store.create_source(&source).await {
            Ok(_) | Err(swarm_shared::Error::Conflict(_)) => {}
            Err(err) => return Err(err).doing(|| format!("seeding source {}", source.name)),
        }
    }
    for company in &config.companies {
        match store.create_company(company).await {
            Ok(_) | Err(swarm_shared::Error::Conflict(_)) => {}
            Err(err) => {
                return Err(err).doing(|| format!("seeding company {}", company.name));
            }
        }
    }
    tracing::info!(
        sources = config.sources.len(),
        companies = config.companies.len(),
        "seeded store from config"
    );
    Ok(())
}

/// Stores the bootstrap admin key: `admin_key` if given, else a generated one when the store
/// has no key yet. Returns the generated key (to print once).
pub(super) async fn bootstrap_admin_key(
    store: &dyn Store,
    admin_key: Option<&str>,
) -> Result<Option<String>, StartError> {
    let scopes = vec![ADMIN_SCOPE.to_owned()];
    if let Some(key) = admin_key {
        if key.len() < 16 {
            return Err(StartError::Config(
                "TGE_SWARM_ADMIN_KEY must be at least 16 characters".into(),
            ));
        }
        // The key from the environment replaces the bootstrap key before it (generated or
        // set), so rotating TGE_SWARM_ADMIN_KEY revokes the old one.
        store
            .replace_api_key(crate::keys::BOOTSTRAP_NAME, &hash_key(key), &scopes)
            .await?;
        return Ok(None);
    }
    if store.count_api_keys().await? > 0 {
        return Ok(None);
    }
    let key = crate::keys::new_secret();
    store
        .insert_api_key(crate::keys::BOOTSTRAP_NAME, &hash_key(&key), &scopes)
        .await?;
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use swarm_shared::config::{Config, Secret};
    use swarm_shared::domain::SourceKind;
    use swarm_shared::ports::Store;
    use swarm_shared::ports::sqlite::SqliteStore;

    use super::seed;

    async fn seeded(token: Option<&str>) -> Vec<(SourceKind, bool)> {
        let store = SqliteStore::in_memory().await.unwrap();
        let mut config = Config::embedded_default().unwrap();
        config.scraping.x_bearer_token = token.map(Secret::new);
        seed(&store, &config).await.unwrap();
        let sources = store.list_sources().await.unwrap();
        assert_eq!(sources.len(), config.sources.len());
        sources
            .into_iter()
            .map(|source| (source.kind, source.enabled))
            .collect()
    }

    /// X sources wait for a token; every other shipped source starts enabled.
    #[tokio::test]
    async fn x_sources_are_seeded_disabled_until_a_token_is_set() {
        let without = seeded(None).await;
        assert!(without.iter().any(|(kind, _)| *kind == SourceKind::X));
        for (kind, enabled) in &without {
            assert_eq!(*enabled, *kind != SourceKind::X, "{kind:?}");
        }
        let with = seeded(Some("AAAAbearer")).await;
        assert!(with.iter().all(|(_, enabled)| *enabled));
    }
}
