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

#[test]
fn email_channels_need_plausible_addresses() {
    for good in [
        "desk@example.com",
        "a.b+tge@mail.example.co.uk",
        "x@localhost",
    ] {
        assert!(plausible_address(good), "{good}");
    }
    for bad in [
        "",
        "desk",
        "@example.com",
        "desk@",
        "desk@exa mple.com",
        "Desk <desk@example.com>",
        "a,b@example.com",
        "desk@example..com",
        "desk\r\nBcc: x@example.com@example.com",
    ] {
        assert!(!plausible_address(bad), "{bad:?}");
    }
    let channel = |to: Vec<&str>| ChannelInput::Email {
        to: to.into_iter().map(str::to_owned).collect(),
    };
    channel(vec!["desk@example.com"]).validate().unwrap();
    assert_eq!(channel(vec!["desk@example.com"]).endpoint().unwrap(), None);
    let err = channel(vec![]).validate().unwrap_err().to_string();
    assert!(err.contains("channel.to: 0 recipients"), "{err}");
    let err = channel(vec!["desk@example.com", "nope"])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("channel.to[1]"), "{err}");
    let many = vec!["desk@example.com"; MAX_EMAIL_RECIPIENTS + 1];
    assert!(channel(many).validate().is_err());
    let view = channel(vec!["desk@example.com"]).view();
    assert_eq!(view.kind, "email");
    assert_eq!(
        view.to.as_deref(),
        Some(&["desk@example.com".to_owned()][..])
    );
}
