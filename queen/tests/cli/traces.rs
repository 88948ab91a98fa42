//! Trace export and the health check of a running `tge-swarm run`: with
//! `TGE_SWARM_OTLP_ENDPOINT` set, the API's request spans arrive as OTLP/HTTP protobuf at
//! `<endpoint>/v1/traces` (a receiver in this test stands in for Jaeger), flushed at shutdown;
//! `tge-swarm healthcheck` passes while the process is ready and fails once it is gone.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};

/// What the receiver got: content type and body of each POST.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn otlp_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let content_type = headers
                    .get("content-type")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock().unwrap().push((content_type, body.to_vec()));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (endpoint, received)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn healthcheck(url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tge-swarm"))
        .args(["healthcheck", "--url", url])
        .env_remove("TGE_SWARM_CONFIG")
        .env("TGE_SWARM_LOG", "warn")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exports_its_spans_over_otlp_and_answers_the_healthcheck() {
    let (endpoint, received) = otlp_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let metrics_port = free_port();
    let config = dir.path().join("swarm.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nname = \"trace-test\"\n\n[server]\napi_addr = \"127.0.0.1:{api_port}\"\n\
             metrics_addr = \"127.0.0.1:{metrics_port}\"\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tge-swarm"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TGE_SWARM_REDIS_URL")
        .env_remove("TGE_SWARM_DATABASE_URL")
        .env_remove("TGE_SWARM_CONSUL_URL")
        .env("TGE_SWARM_LOG", "warn")
        .env("TGE_SWARM_ADMIN_KEY", "trace-test-admin-key-0123456789")
        .env("TGE_SWARM_OTLP_ENDPOINT", &endpoint)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();

    swarm_shared::install_crypto_provider();
    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{api_port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = http.get(format!("{api}/readyz")).send().await;
        if matches!(&ready, Ok(response) if response.status().is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the swarm never became ready: {}",
            log()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the swarm exited: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..3 {
        let response = http
            .get(format!("{api}/api/v1/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    let readyz = format!("http://127.0.0.1:{metrics_port}/readyz");
    let healthy = tokio::task::spawn_blocking({
        let readyz = readyz.clone();
        move || healthcheck(&readyz)
    })
    .await
    .unwrap();
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    assert!(String::from_utf8_lossy(&healthy.stdout).contains("ready:"));

    // SIGTERM: a clean stop flushes the spans still queued.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the swarm did not stop: {}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "exit {exit:?}: {}", log());

    let gone = tokio::task::spawn_blocking(move || healthcheck(&readyz))
        .await
        .unwrap();
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no swarm process answered"));

    let posts = received.lock().unwrap().clone();
    assert!(!posts.is_empty(), "no spans arrived: {}", log());
    for (content_type, _) in &posts {
        assert_eq!(content_type, "application/x-protobuf");
    }
    let bodies: Vec<u8> = posts.into_iter().flat_map(|(_, body)| body).collect();
    // Protobuf keeps strings as they are: the resource and the span names can be found.
    for expected in [
        &b"tge-swarm"[..],
        b"service.instance.id",
        b"trace-test",
        b"GET /api/v1/events",
        b"http.route",
    ] {
        assert!(
            contains(&bodies, expected),
            "{} not in the exported spans",
            String::from_utf8_lossy(expected)
        );
    }
}
