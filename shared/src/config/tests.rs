//! Tests of the configuration: defaults, errors that name the field, ranges, overrides.

use std::time::Duration;

use super::*;

#[test]
fn embedded_default_is_valid() {
    let config = Config::embedded_default().unwrap();
    config.validate().unwrap();
    assert_eq!(config.companies.len(), 15);
    assert_eq!(config.sources.len(), 68);
}

#[test]
fn errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        ("[server]\nbogus = 1\n", "bogus"),
        ("[scraping]\ntimeout = \"soon\"\n", "t.toml:2"),
        ("[detection]\nthreshold = 1.5\n", "detection.threshold"),
        (
            "[supervision.policy]\nbackoff_jitter = 2.0\n",
            "backoff_jitter",
        ),
        (
            "[supervision.kinds.keyword]\nmax_restart = 4\n",
            "supervision.kinds.keyword",
        ),
        (
            "[supervision.kinds.keyword]\nmin_replicas = 9\n",
            "min_replicas",
        ),
        ("[supervision.kinds.kewyord]\nmax_replicas = 4\n", "kewyord"),
        (
            "[supervision]\nalert_webhook = \"hooks:9000\"\n",
            "supervision.alert_webhook",
        ),
        (
            "[queues]\nvisibility_timeout = \"30s\"\n",
            "queues.visibility_timeout",
        ),
        ("[memory]\nflush_keys = 0\n", "memory.flush_keys"),
        (
            "[server]\nevents_cache_ttl = \"5m\"\n",
            "server.events_cache_ttl",
        ),
        (
            "[memory]\nsync_interval = \"1s\"\nflush_interval = \"2s\"\n",
            "memory.flush_interval",
        ),
        (
            "[[sources]]\nname = \"x\"\nkind = \"html\"\nurl = \"https://a.b\"\ninterval = \"1m\"\n",
            "sources[0]",
        ),
        (
            "[[sources]]\nname = \"x\"\nkind = \"rss\"\nurl = \"ftp://a.b\"\ninterval = \"1m\"\n",
            "sources[0]",
        ),
        (
            "[[companies]]\nname = \"A\"\ntickers = [\"$$\"]\n",
            "companies[0]",
        ),
        (
            "[detection]\ntrading_tokens = [\"ARB\", \"NOT A TICKER\"]\n",
            "`detection.trading_tokens`: tokens[1]: `NOT A TICKER`",
        ),
        (
            "[detection]\nalready_trading_shift = 2.5\n",
            "detection.already_trading_shift",
        ),
        (
            "[detection]\nalready_trading_shift = -25\n",
            "detection.already_trading_shift",
        ),
        (
            "[delivery.smtp]\nhost = \"mail.example.com\"\nfrom = \"alerts\"\n",
            "delivery.smtp.from",
        ),
        (
            "[delivery.smtp]\nhost = \"\"\nfrom = \"a@example.com\"\n",
            "delivery.smtp.host",
        ),
        (
            "[delivery.smtp]\nhost = \"mail.example.com\"\nfrom = \"a@example.com\"\npassword = \"x\"\n",
            "password",
        ),
        (
            "[delivery.smtp]\nhost = \"mail.example.com\"\nfrom = \"a@example.com\"\nsecurity = \"none\"\n",
            "t.toml:4:12`: unknown variant `none`, expected `starttls` or `tls`",
        ),
    ];
    for (text, needle) in cases {
        let result = Config::from_toml(text, "t.toml").and_then(|config| config.validate());
        let message = result.expect_err(text).to_string();
        assert!(message.contains(needle), "{text:?} -> {message}");
    }
}

/// Every duration and count at an extreme (far too large, and zero where zero is
/// meaningless) is refused with an error naming its field, never a panic or an overflow.
#[test]
fn extreme_values_are_refused_by_name() {
    let huge = "\"300000years\"";
    let durations = [
        ("scheduler", "tick"),
        ("scraping", "timeout"),
        ("scraping", "connect_timeout"),
        ("scraping", "parse_timeout"),
        ("scraping", "retry_min_delay"),
        ("scraping", "retry_max_delay"),
        ("quality", "merge_window"),
        ("quality", "lease"),
        ("reliability", "open_for"),
        ("reliability", "max_open_for"),
        ("supervision", "heartbeat_interval"),
        ("supervision", "stop_timeout"),
        ("supervision", "interval"),
        ("queues", "visibility_timeout"),
        ("queues", "poll_wait"),
        ("memory", "sync_interval"),
        ("memory", "default_ttl"),
        ("memory", "flush_interval"),
        ("performance", "interval"),
        ("server", "events_cache_ttl"),
        ("supervision.policy", "restart_window"),
        ("supervision.policy", "backoff_base"),
        ("supervision.policy", "cooldown"),
        ("supervision.policy", "reset_after"),
        ("supervision.policy", "stuck_after"),
        ("supervision.policy", "latency"),
        ("supervision.policy", "scale_down_after"),
        ("supervision.kinds.keyword", "cpu_for"),
    ];
    let counts = [
        ("server", "max_request_bytes"),
        ("server", "rate_limit_per_address"),
        ("server", "rate_limit_per_key"),
        ("server", "rate_limit_burst"),
        ("scraping", "max_body_bytes"),
        ("scraping", "retries"),
        ("scraping", "concurrency"),
        ("scraping", "per_host_concurrency"),
        ("scraping", "max_items"),
        ("scraping", "max_html_depth"),
        ("scraping", "max_html_nodes"),
        ("scraping", "max_xml_depth"),
        ("detection", "batch"),
        ("quality", "batch"),
        ("quality", "max_text_bytes"),
        ("quality", "partitions"),
        ("reliability", "failure_threshold"),
        ("supervision", "missed_heartbeats"),
        ("queues", "bus_buffer"),
        ("queues", "max_backlog"),
        ("memory", "max_entries"),
        ("memory", "flush_keys"),
        ("performance", "backlog_threshold"),
        ("supervision.policy", "max_restarts"),
        ("supervision.policy", "max_replicas"),
        ("supervision.policy", "backlog"),
    ];
    let mut cases: Vec<(String, &str)> = Vec::new();
    for (section, key) in durations {
        cases.push((format!("[{section}]\n{key} = {huge}\n"), key));
    }
    for (section, key) in counts {
        // Within u32 (a larger number is refused by the parser, naming the line).
        cases.push((format!("[{section}]\n{key} = 4000000000\n"), key));
        cases.push((format!("[{section}]\n{key} = 0\n"), key));
    }
    cases.push((
        "[[sources]]\nname = \"x\"\nkind = \"rss\"\nurl = \"https://a.b\"\ninterval = \"300000years\"\n".into(),
        "interval",
    ));
    for (text, needle) in &cases {
        let result = Config::from_toml(text, "t.toml").and_then(|config| config.validate());
        let Err(err) = result else {
            // Zero is a valid value for some counts (retries, backlog).
            assert!(text.ends_with("= 0\n"), "{text:?} was accepted");
            continue;
        };
        let message = err.to_string();
        assert!(message.contains(needle), "{text:?} -> {message}");
    }
}

#[test]
fn policies_are_overridden_per_kind() {
    let text = "[supervision.policy]\nmax_replicas = 6\n\n[supervision.kinds.keyword]\nmax_replicas = 4\ncooldown = \"10s\"\n";
    let config = Config::from_toml(text, "t.toml").unwrap();
    config.validate().unwrap();
    let keyword = config.supervision.policy(AgentKind::Keyword);
    assert_eq!(keyword.max_replicas, 4);
    assert_eq!(keyword.cooldown, Duration::from_secs(10));
    assert_eq!(
        keyword.max_restarts, 3,
        "the rest comes from [supervision.policy]"
    );
    let scraping = config.supervision.policy(AgentKind::Scraping);
    assert_eq!(scraping.max_replicas, 6);
    assert_eq!(scraping.cooldown, Duration::from_secs(300));
    let mut env = Config::embedded_default().unwrap();
    env.apply_env(|name| match name {
        "TGE_SWARM_FAULT_INJECTION" => Some("true".into()),
        "TGE_SWARM_ALERT_WEBHOOK" => Some("http://hooks:9000/a".into()),
        _ => None,
    })
    .unwrap();
    assert!(env.supervision.fault_injection);
    assert_eq!(
        env.supervision.alert_webhook.as_deref(),
        Some("http://hooks:9000/a")
    );
    let bad =
        env.apply_env(|name| (name == "TGE_SWARM_FAULT_INJECTION").then(|| "maybe".to_owned()));
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("TGE_SWARM_FAULT_INJECTION")
    );
}

#[test]
fn the_x_token_comes_from_env_and_is_never_printed() {
    let mut config = Config::embedded_default().unwrap();
    assert!(config.scraping.x_bearer_token.is_none());
    config
        .apply_env(|name| (name == "TGE_SWARM_X_BEARER_TOKEN").then(|| " AAAAbearer ".into()))
        .unwrap();
    let token = config.scraping.x_bearer_token.clone().unwrap();
    assert_eq!(token.expose(), "AAAAbearer");
    assert!(!format!("{:?}", config.scraping).contains("AAAAbearer"));
    config
        .apply_env(|name| (name == "TGE_SWARM_X_BEARER_TOKEN").then(String::new))
        .unwrap();
    assert!(config.scraping.x_bearer_token.is_none(), "empty unsets it");
}

#[test]
fn the_binance_key_and_secret_come_from_env_together() {
    let mut config = Config::embedded_default().unwrap();
    assert!(config.scraping.binance_api.is_none());
    config
        .apply_env(|name| match name {
            "TGE_SWARM_BINANCE_API_KEY" => Some(" key-1 ".into()),
            "TGE_SWARM_BINANCE_API_SECRET" => Some("secret-1".into()),
            _ => None,
        })
        .unwrap();
    let (key, secret) = config.scraping.binance_api.clone().unwrap();
    assert_eq!((key.expose(), secret.expose()), ("key-1", "secret-1"));
    assert!(!format!("{:?}", config.scraping).contains("secret-1"));
    for (set, missing) in [
        ("TGE_SWARM_BINANCE_API_KEY", "TGE_SWARM_BINANCE_API_SECRET"),
        ("TGE_SWARM_BINANCE_API_SECRET", "TGE_SWARM_BINANCE_API_KEY"),
    ] {
        let err = Config::embedded_default()
            .unwrap()
            .apply_env(|name| (name == set).then(|| "x".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(missing) && err.contains("both"), "{err}");
    }
}

#[test]
fn the_smtp_relay_is_configured_with_its_password_from_env() {
    let text = "[delivery.smtp]\nhost = \"mail.example.com\"\nfrom = \"TGE alerts <alerts@example.com>\"\nusername = \"alerts\"\n";
    let mut config = Config::from_toml(text, "t.toml").unwrap();
    config
        .apply_env(|name| (name == "TGE_SWARM_SMTP_PASSWORD").then(|| "hunter2".into()))
        .unwrap();
    config.validate().unwrap();
    let smtp = config.delivery.smtp.clone().unwrap();
    assert_eq!(smtp.port, 587);
    assert_eq!(smtp.security, SmtpSecurity::Starttls);
    assert_eq!(smtp.password.as_deref(), Some("hunter2"));
    assert!(
        !format!("{smtp:?}").contains("hunter2"),
        "a password is never logged"
    );
    // A password without a relay, or without a user, is a mistake worth naming.
    let err = Config::embedded_default()
        .unwrap()
        .apply_env(|name| (name == "TGE_SWARM_SMTP_PASSWORD").then(|| "x".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[delivery.smtp]"), "{err}");
    let mut anonymous = Config::from_toml(
        "[delivery.smtp]\nhost = \"mail.example.com\"\nport = 465\nsecurity = \"tls\"\nfrom = \"a@example.com\"\n",
        "t.toml",
    )
    .unwrap();
    anonymous.validate().unwrap();
    anonymous
        .apply_env(|name| (name == "TGE_SWARM_SMTP_PASSWORD").then(|| "x".into()))
        .unwrap();
    let err = anonymous.validate().unwrap_err().to_string();
    assert!(err.contains("delivery.smtp.username"), "{err}");
}

#[test]
fn connection_settings_come_from_env_and_are_checked() {
    let mut config = Config::embedded_default().unwrap();
    config
        .apply_env(|name| match name {
            "TGE_SWARM_REDIS_URL" => Some("redis://cache:6379/0".into()),
            "TGE_SWARM_DATABASE_URL" => Some("postgres://u@db/tge".into()),
            "TGE_SWARM_CONSUL_URL" => Some("".into()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        config.connections.redis_url.as_deref(),
        Some("redis://cache:6379/0")
    );
    assert_eq!(config.connections.consul_url, None, "empty unsets");
    config.validate().unwrap();
    config.connections.database_url = Some("mysql://db/tge".into());
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("connections.database_url") && err.contains("TGE_SWARM_DATABASE_URL"),
        "{err}"
    );
    config.connections.database_url = None;
    config.connections.redis_url =
        Some("redis-cluster://:pw@redis-1:7001?node=redis-2:7002&node=redis-3:7003".into());
    config.validate().unwrap();
    config.connections.redis_url = Some("http://cache:6379".into());
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("connections.redis_url") && err.contains("redis-cluster://"),
        "{err}"
    );
    let mut roles = Config::embedded_default().unwrap();
    roles.use_role_metrics_port(8011);
    assert_eq!(roles.server.metrics_addr.port(), 8011);
    roles.server.metrics_addr = "127.0.0.1:9000".parse().unwrap();
    roles.use_role_metrics_port(8011);
    assert_eq!(
        roles.server.metrics_addr.port(),
        9000,
        "an explicit address wins"
    );
}

#[test]
fn tracing_settings_come_from_env_and_are_checked() {
    let mut config = Config::embedded_default().unwrap();
    assert_eq!(config.tracing.otlp_endpoint, None, "off by default");
    config
        .apply_env(|name| match name {
            "TGE_SWARM_OTLP_ENDPOINT" => Some("http://jaeger:4318".into()),
            "TGE_SWARM_TRACE_SAMPLE_RATIO" => Some("0.25".into()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        config.tracing.otlp_endpoint.as_deref(),
        Some("http://jaeger:4318")
    );
    assert!((config.tracing.sample_ratio - 0.25).abs() < f64::EPSILON);
    config.validate().unwrap();
    config.tracing.sample_ratio = 1.5;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("tracing.sample_ratio"), "{err}");
    config.tracing.sample_ratio = 1.0;
    config.tracing.otlp_endpoint = Some("jaeger:4318".into());
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("tracing.otlp_endpoint"), "{err}");
    let err = config
        .apply_env(|name| (name == "TGE_SWARM_TRACE_SAMPLE_RATIO").then(|| "half".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("TGE_SWARM_TRACE_SAMPLE_RATIO"), "{err}");
}

#[test]
fn env_overrides_apply_and_are_checked() {
    let mut config = Config::embedded_default().unwrap();
    config
        .apply_env(|name| match name {
            "TGE_SWARM_API_ADDR" => Some("127.0.0.1:9999".into()),
            "TGE_SWARM_REQUIRE_KEY_FOR_READS" => Some("true".into()),
            "TGE_SWARM_DATA_DIR" => Some("/tmp/x".into()),
            _ => None,
        })
        .unwrap();
    assert_eq!(config.server.api_addr.port(), 9999);
    assert!(config.server.require_key_for_reads);
    assert_eq!(config.server.data_dir, PathBuf::from("/tmp/x"));
    let err = config
        .apply_env(|name| (name == "TGE_SWARM_METRICS_ADDR").then(|| "nope".into()))
        .unwrap_err();
    assert!(err.to_string().contains("TGE_SWARM_METRICS_ADDR"));
}

#[test]
fn retention_is_checked_against_the_merge_window() {
    let config = Config::embedded_default().unwrap();
    assert_eq!(
        config.retention.documents,
        Duration::from_secs(90 * 24 * 3600)
    );
    let refused = [
        (
            "[retention]\nfingerprints = \"7days\"\n",
            "retention.fingerprints",
        ),
        ("[retention]\ndocuments = \"9m\"\n", "retention.documents"),
        ("[retention]\nbatch = 0\n", "retention.batch"),
        ("[retention]\ninterval = \"0s\"\n", "retention.interval"),
        ("[retention]\nmax_per_pass = 0\n", "retention.max_per_pass"),
        ("[retention]\nkeep = \"1d\"\n", "keep"),
    ];
    for (text, field) in refused {
        let err = Config::from_toml(text, "t.toml")
            .and_then(|config| config.validate().map(|()| config))
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{text}: {err}");
    }
    let err = Config::from_toml("[retention]\nfingerprints = \"7days\"\n", "t.toml")
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("quality.merge_window (30days)"), "{err}");
    // "0s" keeps a table whole; a shorter merge window allows shorter fingerprints.
    for text in [
        "[retention]\ndocuments = \"0s\"\nfingerprints = \"0s\"\n",
        "[quality]\nmerge_window = \"2days\"\n[retention]\nfingerprints = \"3days\"\n",
        // The floor, as the soak runs it.
        "[quality]\nmerge_window = \"10m\"\n[retention]\ndocuments = \"10m\"\nfingerprints = \"10m\"\n",
    ] {
        Config::from_toml(text, "t.toml")
            .unwrap()
            .validate()
            .unwrap();
    }
}
