//! The `tge-swarm` binary: check-config, classify and migrate, with good and bad input; and
//! the distributed swarm as separate processes of it ([`distributed`]).

// Tests: a panic is how a helper reports a failed expectation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash;
mod distributed;
mod hostile;
mod traces;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn tge_swarm(args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tge-swarm"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TGE_SWARM_CONFIG")
        .env("TGE_SWARM_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_the_shipped_file_and_names_bad_fields() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/tge-swarm.toml");
    let ok = tge_swarm(&["check-config", "--config", shipped], None);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let out = text(&ok.stdout);
    assert!(
        out.contains("sources:     68") && out.contains("companies:   15"),
        "{out}"
    );

    // Built-in defaults when no file is given and none is at the default path.
    let builtin = tge_swarm(&["check-config"], None);
    assert!(builtin.status.success());
    assert!(text(&builtin.stdout).contains("built-in defaults"));

    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[scraping]\ntimout = \"5s\"\n", "unknown field `timout`"),
        ("[detection]\nthreshold = 7\n", "detection.threshold"),
        ("[server]\napi_addr = \"nowhere\"\n", ":2:"),
        (
            "[[sources]]\nname = \"x\"\nkind = \"html\"\nurl = \"https://x.example\"\ninterval = \"1m\"\n",
            "sources[0]",
        ),
        (
            "[[sources]]\nname = \"x\"\nkind = \"html\"\nurl = \"https://x.example\"\ninterval = \"1m\"\nselectors = { item = \"div >> >\" }\n",
            "invalid CSS selector",
        ),
    ];
    for (index, (body, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{index}.toml"));
        std::fs::write(&path, body).unwrap();
        let output = tge_swarm(&["check-config", "--config", path.to_str().unwrap()], None);
        assert!(!output.status.success(), "{body}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(needle), "{body}: {stderr}");
    }
    let missing = tge_swarm(&["check-config", "--config", "/nonexistent/tge.toml"], None);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("/nonexistent/tge.toml"));

    let env_bad = Command::new(env!("CARGO_BIN_EXE_tge-swarm"))
        .args(["check-config"])
        .env("TGE_SWARM_API_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert!(!env_bad.status.success());
    assert!(text(&env_bad.stderr).contains("TGE_SWARM_API_ADDR"));
}

#[test]
fn classify_scores_json_lines_and_reports_bad_lines() {
    let input = concat!(
        "{\"id\": 1, \"title\": \"Fhenix announces TGE\", \"text\": \"Fhenix confirmed its token generation event for March 5, 2026; $FHE claims open then.\"}\n",
        "{\"id\": \"b\", \"text\": \"Bitcoin traded sideways on Sunday.\"}\n",
        "\n",
        "{\"id\": 3, \"text\": \n",
        "{\"id\": 4, \"body\": \"wrong field\"}\n",
    );
    let output = tge_swarm(&["classify", "--input", "-"], Some(input));
    assert!(
        !output.status.success(),
        "bad lines make the exit status non-zero"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("-:4:") && stderr.contains("-:5:"),
        "{stderr}"
    );
    let lines: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "good lines are still scored");
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["is_tge"], true);
    assert_eq!(lines[0]["project"], "Fhenix");
    assert_eq!(lines[0]["token"], "FHE");
    assert_eq!(lines[0]["event_date"], "March 5, 2026");
    assert!(!lines[0]["evidence"].as_array().unwrap().is_empty());
    assert_eq!(lines[1]["id"], "b");
    assert_eq!(lines[1]["is_tge"], false);
    for line in &lines {
        let score = line["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score));
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docs.jsonl");
    std::fs::write(&file, "{\"id\": 1, \"title\": \"Caldera sets TGE date for CAL token\", \"text\": \"Caldera Labs confirmed the token generation event for its CAL token on March 5, 2026. The CAL airdrop claim opens at TGE for early users, and trading starts the same day.\"}\n").unwrap();
    let from_file = tge_swarm(&["classify", "--input", file.to_str().unwrap()], None);
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    assert!(text(&from_file.stdout).contains("\"is_tge\":true"));
}

/// The project's own written texts (they count in no reported figure; here they are only
/// input the commands must read).
const HELDOUT: &str = "../agents/src/keyword/corpus/own-heldout.jsonl";
const TRAIN: &str = "../agents/src/keyword/corpus/own-train.jsonl";

#[test]
fn eval_reports_figures_with_intervals_breakdowns_and_names_bad_lines() {
    let output = tge_swarm(&["eval", "--input", HELDOUT, "--year", "2026"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    for needle in [
        "precision",
        "recall",
        "f1",
        "95% [",
        "false-alarm kind (negatives)",
        "reliability",
        "extraction project",
        "neg_tgepl",
        "pos_multi",
    ] {
        assert!(table.contains(needle), "{needle} missing from:\n{table}");
    }
    let output = tge_swarm(
        &["eval", "--input", HELDOUT, "--year", "2026", "--json"],
        None,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["items"], 127);
    let precision = report["precision"].as_f64().unwrap();
    let interval = report["intervals"]["precision"].as_array().unwrap();
    assert!(
        interval[0].as_f64().unwrap() <= precision && precision <= interval[1].as_f64().unwrap(),
        "{report}"
    );
    assert_eq!(report["reliability"].as_array().unwrap().len(), 10);

    // The real-text corpus's format, with its split and consensus filters.
    let corpus = concat!(
        "{\"id\": \"p\", \"text\": \"Kelvora 12 will hold the token generation event of $KV12 on March 3, 2026; the KV12 airdrop claim opens at TGE.\", \"label\": 1, \"second_label\": 1, \"consensus\": true, \"kind\": \"positive\", \"category\": \"upcoming_tge_news\", \"format\": \"news\", \"language\": \"en\", \"project\": \"Kelvora 12\", \"token\": \"KV12\", \"source\": \"https://news.example/a\", \"website\": \"news.example\", \"date\": \"2026-02\", \"split\": \"heldout\", \"note\": \"\"}\n",
        "{\"id\": \"n\", \"text\": \"What is a TGE? A glossary entry.\", \"label\": 0, \"second_label\": 1, \"consensus\": false, \"kind\": \"hard_negative\", \"category\": \"glossary\", \"format\": \"docs\", \"language\": \"en\", \"project\": \"\", \"token\": \"\", \"source\": \"https://docs.example/b\", \"website\": \"docs.example\", \"date\": \"\", \"split\": \"heldout\", \"note\": \"\"}\n",
        "{\"id\": \"t\", \"text\": \"Another text.\", \"label\": 0, \"second_label\": 0, \"consensus\": true, \"kind\": \"easy_negative\", \"category\": \"other_meaning\", \"format\": \"other\", \"language\": \"en\", \"project\": \"\", \"token\": \"\", \"source\": \"https://o.example/c\", \"website\": \"o.example\", \"date\": \"\", \"split\": \"train\", \"note\": \"\"}\n",
    );
    let output = tge_swarm(
        &["eval", "--input", "-", "--split", "heldout", "--json"],
        Some(corpus),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["items"], 1,
        "one heldout item the labellers agreed on"
    );
    assert_eq!(report["extraction"]["projects"], 1);
    let output = tge_swarm(
        &[
            "eval",
            "--input",
            "-",
            "--split",
            "heldout",
            "--all-items",
            "--json",
        ],
        Some(corpus),
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["items"], 2);
    let output = tge_swarm(&["eval", "--input", "-", "--split", "dev"], Some(corpus));
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("no items of split `dev`"));

    let bad = "{\"id\": \"a\", \"is_tge\": true, \"text\": \"x\"}\n{\"id\": \"b\", \"text\": \"no label\"}\n";
    let output = tge_swarm(&["eval", "--input", "-"], Some(bad));
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("-:2:") && stderr.contains("is_tge"),
        "{stderr}"
    );
    let output = tge_swarm(&["eval", "--input", "/nonexistent/file.jsonl"], None);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("/nonexistent/file.jsonl"));
}

#[test]
fn train_writes_a_model_that_classify_and_eval_accept() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.json");
    let model_arg = model.to_str().unwrap();
    let output = tge_swarm(&["train", "--input", TRAIN, "--out", model_arg], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("out-of-fold precision"));
    let trained: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(trained["format"], 2);
    assert!(
        trained["text"]["weights"]
            .as_str()
            .is_some_and(|w| !w.is_empty())
    );
    assert!(trained["first_stage"]["low"].as_f64().is_some());
    // (That the real corpus gives the shipped model is checked by the keyword agent's tests.)
    let output = tge_swarm(&["train", "--input", TRAIN, "--blocks", "everything"], None);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("--blocks must be"));
    let output = tge_swarm(
        &["classify", "--model", model_arg, "--input", "-"],
        Some(
            "{\"id\": 1, \"text\": \"Fhenix will hold its token generation event on March 5.\", \"lang\": \"en\", \"label\": 1}\n",
        ),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line: serde_json::Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
    for field in [
        "id",
        "is_tge",
        "score",
        "project",
        "token",
        "event_date",
        "evidence",
    ] {
        assert!(line.get(field).is_some(), "{field} missing: {line}");
    }
    std::fs::write(&model, "{\"format\": 1}").unwrap();
    let output = tge_swarm(&["eval", "--model", model_arg, "--input", HELDOUT], None);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("model"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn migrate_creates_the_store_under_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tge-swarm"))
        .arg("migrate")
        .env("TGE_SWARM_DATA_DIR", dir.path().join("nested"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(dir.path().join("nested/tge-swarm.sqlite").exists());
    let again = Command::new(env!("CARGO_BIN_EXE_tge-swarm"))
        .arg("migrate")
        .env("TGE_SWARM_DATA_DIR", dir.path().join("nested"))
        .output()
        .unwrap();
    assert!(again.status.success(), "migrating twice is a no-op");
}

fn tge_swarm_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tge-swarm"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TGE_SWARM_CONFIG")
        .env_remove("TGE_SWARM_REDIS_URL")
        .env_remove("TGE_SWARM_DATABASE_URL")
        .env_remove("TGE_SWARM_CONSUL_URL")
        .env("TGE_SWARM_LOG", "warn")
        .env("TGE_SWARM_METRICS_ADDR", "127.0.0.1:0")
        .env("TGE_SWARM_API_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn roles_explain_what_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();

    let unknown = tge_swarm_env(&["agent", "janitor"], &[]);
    assert!(!unknown.status.success());
    let err = text(&unknown.stderr);
    assert!(
        err.contains("unknown agent kind `janitor`") && err.contains("data-quality"),
        "{err}"
    );

    let no_redis = tge_swarm_env(&["agent", "keyword"], &[("TGE_SWARM_DATA_DIR", data)]);
    assert!(!no_redis.status.success());
    let err = text(&no_redis.stderr);
    assert!(err.contains("TGE_SWARM_REDIS_URL"), "{err}");

    let no_database = tge_swarm_env(
        &["queen"],
        &[
            ("TGE_SWARM_REDIS_URL", "redis://127.0.0.1:1/0"),
            ("TGE_SWARM_DATA_DIR", data),
        ],
    );
    assert!(!no_database.status.success());
    assert!(text(&no_database.stderr).contains("TGE_SWARM_DATABASE_URL"));

    // Unreachable Redis: the error names the server and the variable, without the password.
    let unreachable = tge_swarm_env(
        &["agent", "keyword"],
        &[
            ("TGE_SWARM_REDIS_URL", "redis://:hunter2@127.0.0.1:1/0"),
            (
                "TGE_SWARM_DATABASE_URL",
                &format!("sqlite://{data}/x.sqlite"),
            ),
        ],
    );
    assert!(!unreachable.status.success());
    let err = text(&unreachable.stderr);
    assert!(
        err.contains("TGE_SWARM_REDIS_URL") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "password leaked: {err}");

    let bad_url = tge_swarm_env(
        &["check-config"],
        &[("TGE_SWARM_DATABASE_URL", "mysql://db/x")],
    );
    assert!(!bad_url.status.success());
    assert!(text(&bad_url.stderr).contains("connections.database_url"));

    let shown = tge_swarm_env(
        &["check-config"],
        &[("TGE_SWARM_REDIS_URL", "redis://:hunter2@cache:6379/0")],
    );
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let out = text(&shown.stdout);
    assert!(
        out.contains("redis:       redis://:***@cache:6379/0"),
        "{out}"
    );
}

#[test]
fn migrate_creates_the_postgres_schema() {
    let admin = std::env::var("TGE_SWARM_TEST_DATABASE_URL").expect(
        "TGE_SWARM_TEST_DATABASE_URL is not set: run scripts/test.sh, which provides a Postgres server",
    );
    let name = format!("tge_cli_migrate_{}", std::process::id());
    let psql = |sql: &str| {
        let status = Command::new("psql")
            .env("PGOPTIONS", "--client-min-messages=warning")
            .arg(&admin)
            .args(["-qAtc", sql])
            .status()
            .unwrap();
        assert!(status.success(), "psql {sql}");
    };
    psql(&format!("DROP DATABASE IF EXISTS {name}"));
    psql(&format!("CREATE DATABASE {name}"));
    let mut url = admin.rsplit_once('/').unwrap().0.to_owned();
    url.push('/');
    url.push_str(&name);
    for _ in 0..2 {
        let out = tge_swarm_env(&["migrate"], &[("TGE_SWARM_DATABASE_URL", &url)]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("store is up to date (postgres"));
    }
    psql(&format!("DROP DATABASE {name}"));
}
