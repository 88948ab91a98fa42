//! The analysts' web view in a real browser: headless Chromium driven through chromedriver
//! (Debian's `chromium` and `chromium-driver`; `scripts/test.sh` installs them) with the
//! fantoccini WebDriver client. The page is opened with a key typed in, an event recorded
//! afterwards arrives through the live stream, an analyst confirms it, and the API shows the
//! new status. A screenshot is saved as `target/browser/web-view.png`.
//!
//! Without chromedriver the test fails, saying what to install: it never skips.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use swarm_tests::{TestSwarm, eventually};

use crate::api::{announcement, create_event};

/// A chromedriver process, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver_path() -> String {
    let path =
        std::env::var("TGE_SWARM_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let found = Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "`{path}` did not run: the browser test needs Chromium and chromedriver \
         (Debian: apt-get install chromium chromium-driver; scripts/test.sh installs them), \
         or TGE_SWARM_TEST_CHROMEDRIVER naming the driver"
    );
    path
}

async fn start_driver() -> Driver {
    let path = chromedriver_path();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let status = format!("{}/status", driver.url);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(&status).send().await
            && response.status().is_success()
        {
            return driver;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer on {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": [
                "--headless=new",
                // Root in a container has no user namespace for the sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1400,900",
            ],
            "binary": std::env::var("TGE_SWARM_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

/// The text of `selector`'s first match, or "" when there is none yet.
async fn text_of(client: &Client, selector: &str) -> String {
    match client.find(Locator::Css(selector)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn wait_for_text(client: &Client, selector: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = text_of(client, selector).await;
        if text.contains(wanted) {
            return;
        }
        if Instant::now() > deadline {
            let page = client.source().await.unwrap_or_default();
            panic!("`{selector}` never showed `{wanted}` (it shows `{text}`); the page:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_see_events_live_and_confirm_them_in_the_browser() {
    let swarm = TestSwarm::start(|config| {
        // Reads need a key: the page must send the one kept in the tab.
        config.server.require_key_for_reads = true;
    })
    .await;
    let driver = start_driver().await;
    let client = browser(&driver).await;

    client.goto(&swarm.url("/")).await.unwrap();
    assert_eq!(client.title().await.unwrap(), "tge-swarm");
    // Without a key the page says what it needs.
    wait_for_text(&client, "#message", "needs an API key").await;
    let key = client.find(Locator::Css("#api-key")).await.unwrap();
    key.send_keys(swarm_tests::ADMIN_KEY).await.unwrap();
    client
        .find(Locator::Css("#key-use"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "#live", "live").await;
    // The key is in the tab's session storage, nowhere else.
    let stored = client
        .execute(
            "return [sessionStorage.getItem('tge-swarm-api-key'), localStorage.length, document.cookie];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(stored, json!([swarm_tests::ADMIN_KEY, 0, ""]));

    // An announcement stored now arrives through the live stream.
    let mut item = announcement(1, "Binance will list Orbiter (ORB)", "Orbiter", "ORB");
    item.detection.event_date = Some("December 10, 2031".into());
    let event_id = create_event(&swarm, &item).await;
    let row = format!("#events tbody tr[data-id=\"{event_id}\"]");
    wait_for_text(&client, &row, "Orbiter").await;
    assert!(text_of(&client, &row).await.contains("first listing"));

    // Open it, confirm it with a note.
    client
        .find(Locator::Css(&row))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "#detail-title", "Orbiter ($ORB)").await;
    wait_for_text(&client, "#detail-sources", "Binance will list Orbiter").await;
    client
        .find(Locator::Css("#note"))
        .await
        .unwrap()
        .send_keys("Checked on Binance")
        .await
        .unwrap();
    client
        .find(Locator::Css("#confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "#detail-history", "new → confirmed").await;
    wait_for_text(&client, &row, "confirmed").await;

    // The API shows what the browser did, under the key's name.
    eventually(
        Duration::from_secs(10),
        "the confirmed status in the API",
        || {
            let swarm = &swarm;
            async move {
                let response = swarm
                    .http
                    .get(swarm.url(&format!("/api/v1/events/{event_id}")))
                    .header("X-API-Key", swarm_tests::ADMIN_KEY)
                    .send()
                    .await
                    .unwrap();
                let event: serde_json::Value = response.json().await.unwrap();
                event["status"] == "confirmed" && event["status_by"] == "bootstrap-admin"
            }
        },
    )
    .await;
    let response = swarm
        .http
        .get(swarm.url(&format!("/api/v1/events/{event_id}/history")))
        .header("X-API-Key", swarm_tests::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let history: serde_json::Value = response.json().await.unwrap();
    assert_eq!(history["changes"][0]["note"], "Checked on Binance");

    // The other views load.
    for (tab, table, wanted) in [
        ("calendar", "#calendar", "2031-12-10"),
        ("sources", "#sources", "name"),
        ("agents", "#agents", "queen"),
    ] {
        client
            .find(Locator::Css(&format!("#tabs button[data-tab=\"{tab}\"]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(&client, table, wanted).await;
    }
    client
        .find(Locator::Css("#tabs button[data-tab=\"events\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let png = client.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("web-view.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");

    client.close().await.unwrap();
    swarm.stop().await;
}
