//! Tests of the domain's validation and identities.

use super::*;

fn company() -> CompanyInput {
    CompanyInput {
        name: "Fhenix".into(),
        aliases: vec!["Fhenix Protocol".into()],
        tickers: vec!["FHE".into()],
        priority: Priority::High,
        status: "pre_token".into(),
        exclusions: Vec::new(),
    }
}

#[test]
fn company_lists_and_texts_are_bounded() {
    assert!(company().validate().is_ok());
    let long = "x".repeat(MAX_COMPANY_TEXT + 1);
    let cases: Vec<(CompanyInput, &str)> = vec![
        (
            CompanyInput {
                aliases: vec!["a".into(); MAX_COMPANY_LIST + 1],
                ..company()
            },
            "aliases: at most",
        ),
        (
            CompanyInput {
                aliases: vec![long.clone()],
                ..company()
            },
            "aliases[0]: must be 1 to",
        ),
        (
            CompanyInput {
                exclusions: vec![long.clone()],
                ..company()
            },
            "exclusions[0]: must be 1 to",
        ),
        (
            CompanyInput {
                status: long,
                ..company()
            },
            "status: must be at most",
        ),
        (
            CompanyInput {
                tickers: vec!["FHE".into(); MAX_COMPANY_LIST + 1],
                ..company()
            },
            "tickers: at most",
        ),
    ];
    for (input, needle) in cases {
        let err = input.validate().unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}
