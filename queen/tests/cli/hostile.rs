//! `tge-swarm run` given hostile pages by a local server: a page nested a million levels deep
//! is refused within seconds with an error naming the limit (it used to take minutes of CPU),
//! a feed of 100,000 items is read up to `max_items`, and SIGTERM stops the process within
//! `supervision.stop_timeout` plus a few seconds while a slow page is still being parsed (the
//! parse used to hold the process until it finished).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::crash::{ADMIN_KEY, Embedded};
use crate::distributed::{api_get, eventually, serve_on_thread};

const CONFIG: &str = r#"
[scheduler]
tick = "100ms"

[scraping]
allow_hosts = ["127.0.0.1"]
timeout = "10s"
connect_timeout = "1s"
retries = 0
max_items = 50
parse_timeout = "5m"
max_html_depth = 4096
max_html_nodes = 5000000

[supervision]
heartbeat_interval = "500ms"
stop_timeout = "2s"

[queues]
visibility_timeout = "10m"
poll_wait = "50ms"
"#;

/// Serves fixed bodies by path; records when each path was first asked for.
fn serve(
    bodies: HashMap<&'static str, String>,
) -> (SocketAddr, Arc<Mutex<HashMap<String, Instant>>>) {
    let asked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let bodies = Arc::new(bodies);
    let seen = asked.clone();
    let addr = serve_on_thread(move || {
        axum::Router::new().route(
            "/{name}",
            axum::routing::get(
                move |axum::extract::Path(name): axum::extract::Path<String>| {
                    seen.lock()
                        .unwrap()
                        .entry(name.clone())
                        .or_insert_with(Instant::now);
                    let body = bodies.get(name.as_str()).cloned().unwrap_or_default();
                    async move { body }
                },
            ),
        )
    });
    (addr, asked)
}

fn add_source(api: &str, body: Value) {
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{api}/api/v1/sources"))
        .header("x-api-key", ADMIN_KEY)
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .unwrap();
    assert!(
        response.status().is_success(),
        "adding {body}: {}",
        response.status()
    );
}

fn source(api: &str, name: &str) -> Value {
    let (_, body) = api_get(api, "/api/v1/sources").expect("sources are served");
    body["sources"]
        .as_array()
        .and_then(|sources| sources.iter().find(|source| source["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

fn rss(items: usize) -> String {
    let mut feed = String::from("<rss version=\"2.0\"><channel><title>big</title>");
    for index in 0..items {
        feed.push_str(&format!(
            "<item><title>Note {index}</title><link>http://b.example/{index}</link></item>"
        ));
    }
    feed.push_str("</channel></rss>");
    feed
}

#[test]
fn hostile_pages_are_bounded_and_sigterm_stops_a_parse() {
    swarm_shared::install_crypto_provider();
    let levels = 1_000_000;
    let deep = format!("<html><body>{}", "<div>".repeat(levels));
    // Within the limits above, but slow: every <p> makes the parser search the 4,000 open
    // elements below it.
    let slow = format!(
        "<html><body>{}{}",
        "<div>".repeat(4_000),
        "<p>x</p>".repeat(300_000)
    );
    let bodies = HashMap::from([
        ("deep.html", deep),
        ("slow.html", slow),
        ("big.xml", rss(100_000)),
    ]);
    let (server, asked) = serve(bodies);
    let dir = tempfile::tempdir().unwrap();
    let mut swarm = Embedded::start(dir.path(), CONFIG);
    swarm.wait_healthy();

    let selectors = serde_json::json!({"item": "div"});
    add_source(
        &swarm.api,
        serde_json::json!({"name": "deep", "kind": "html", "url": format!("http://{server}/deep.html"), "interval": "1h", "selectors": selectors}),
    );
    add_source(
        &swarm.api,
        serde_json::json!({"name": "big", "kind": "rss", "url": format!("http://{server}/big.xml"), "interval": "1h"}),
    );
    let mut deep_error = String::new();
    eventually(
        Duration::from_secs(30),
        "the deep page's fetch is recorded",
        || {
            deep_error = source(&swarm.api, "deep")["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            !deep_error.is_empty()
        },
    );
    assert!(
        deep_error.contains("HTML nested deeper than 4096 levels")
            && deep_error.contains("scraping.max_html_depth"),
        "{deep_error}"
    );
    let mut big = Value::Null;
    eventually(
        Duration::from_secs(30),
        "the big feed's fetch is recorded",
        || {
            big = source(&swarm.api, "big");
            !big["last_fetch_at"].is_null()
        },
    );
    assert_eq!(big["last_item_count"], 50, "{big}");

    add_source(
        &swarm.api,
        serde_json::json!({"name": "slow", "kind": "html", "url": format!("http://{server}/slow.html"), "interval": "1h", "selectors": selectors}),
    );
    eventually(Duration::from_secs(30), "the slow page is fetched", || {
        asked.lock().unwrap().contains_key("slow.html")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        source(&swarm.api, "slow")["last_fetch_at"].is_null(),
        "the slow page was parsed before SIGTERM: the test needs a slower page"
    );
    let took = swarm.terminate(Duration::from_secs(7));
    eprintln!("stopped {took:?} after SIGTERM, mid-parse");
}
