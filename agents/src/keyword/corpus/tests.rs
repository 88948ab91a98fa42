use super::*;

#[test]
fn both_formats_are_read_and_bad_lines_named() {
    let text = concat!(
        "{\"id\": \"a\", \"is_tge\": true, \"text\": \"x\"}\n",
        "\n",
        "{\"id\": \"b\", \"text\": \"y\", \"label\": 0, \"second_label\": 1, \"consensus\": false, \"kind\": \"hard_negative\", \"category\": \"glossary\", \"format\": \"docs\", \"language\": \"en\", \"project\": \"\", \"token\": \"\", \"source\": \"https://a.example/x\", \"website\": \"a.example\", \"date\": \"2024-05\", \"split\": \"train\", \"note\": \"n\"}\n",
    );
    let items = read_labelled(text.as_bytes(), "t.jsonl").unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_tge && items[0].consensus);
    assert!(!items[1].is_tge && !items[1].consensus);
    assert_eq!(items[1].project, None, "empty strings are absent");
    assert_eq!(items[1].year(2026), 2024);
    assert_eq!(items[0].year(2026), 2026);
    for (line, needle) in [
        ("{\"id\": \"c\", \"text\": \"z\"}", "missing field `is_tge`"),
        (
            "{\"id\": \"c\", \"text\": \"z\", \"label\": 2}",
            "label must be 0 or 1",
        ),
        (
            "{\"id\": \"c\", \"text\": \"z\", \"is_tge\": true, \"lable\": 1}",
            "unknown field",
        ),
        ("not json", "t.jsonl:1"),
    ] {
        let err = read_labelled(line.as_bytes(), "t.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{line} -> {err}");
    }
}

#[test]
fn bootstrap_intervals_contain_the_figures_and_are_reproducible() {
    let mut outcomes = Vec::new();
    for index in 0..200 {
        // 90 tp, 10 fp, 20 fn, 80 tn.
        let pair = match index {
            0..90 => (true, true),
            90..100 => (true, false),
            100..120 => (false, true),
            _ => (false, false),
        };
        outcomes.push(pair);
    }
    let intervals = bootstrap(&outcomes, 500, 1);
    assert!(
        intervals.precision[0] < 0.9 && intervals.precision[1] > 0.9,
        "{intervals:?}"
    );
    assert!(intervals.recall[0] < 90.0 / 110.0 && intervals.recall[1] > 90.0 / 110.0);
    assert!(intervals.precision[1] - intervals.precision[0] < 0.2);
    assert_eq!(bootstrap(&outcomes, 500, 1), intervals);
}

#[test]
fn extraction_matches_are_lenient_on_suffixes_and_dollar_signs() {
    assert!(same_project("Fhenix Protocol", "Fhenix"));
    assert!(same_project("Kelvora 12", "kelvora 12"));
    assert!(!same_project("Kelvora 12", "KV12"));
    assert!(!same_project("", "x"));
    assert!(same_token("KV12", "$kv12"));
    assert!(!same_token("KV12", "KV"));
    assert_eq!(false_alarm_kind("glossary_docs"), "glossary or explainer");
    assert_eq!(
        false_alarm_kind("later_airdrop_season"),
        "later airdrop season"
    );
    assert_eq!(false_alarm_kind("wallet_outage"), "other");
}
