use super::*;

#[test]
fn projects_and_tickers_named_in_the_body() {
    let salience =
        Salience::new(crate::keyword::model::Model::shipped().unwrap().extraction).unwrap();
    let cases = [
        (
            "Binance distributes 30M SOMI through HODLer Airdrops and lists Somnia on Sept 2. SOMI fuels the Somnia chain.",
            Some("Somnia"),
            Some("SOMI"),
        ),
        (
            "Kelvora 12 announces the TGE of $KV12 on March 3. Kelvora 12 users can claim KV12 tokens.",
            Some("Kelvora 12"),
            Some("KV12"),
        ),
        (
            "On Tuesday the Axelar Foundation published a post on the AXL token. The AXL token launches in September.",
            Some("Axelar"),
            Some("AXL"),
        ),
        (
            "Hello KuCoin community, Tokoin (TOKO) is the project for the fifth Spotlight round.",
            Some("Tokoin"),
            Some("TOKO"),
        ),
        ("The weather was fine and nothing launched.", None, None),
        // Times, periods and descriptions are not names.
        (
            "Trading opens at 10:00 AM UTC for Vantor (VNT). Vantor users can deposit now.",
            Some("Vantor"),
            Some("VNT"),
        ),
        (
            "The Q3 2024 roadmap of Lumeo brings the LUMO token. Lumeo opens claims in Q3 2024.",
            Some("Lumeo"),
            Some("LUMO"),
        ),
        (
            "A Solana-based wallet, Pyxa, will launch the PYX token. Pyxa holders receive PYX.",
            Some("Pyxa"),
            Some("PYX"),
        ),
        // A name written in lower case first.
        (
            "Zentra lists dropX (DRPX) today. Traders: dropX deposits open at noon.",
            Some("dropX"),
            Some("DRPX"),
        ),
        // The ticker in capitals is not the project when the headline names it otherwise.
        (
            "Daltiq announces TGE: DTX token generation event and airdrop claim on March 3, 2027\nDaltiq will hold the token generation event of its DTX token on March 3, 2027. Eligible users can claim the DTX airdrop from 10:00 UTC that day.",
            Some("Daltiq"),
            Some("DTX"),
        ),
        (
            "DTX airdrop: Daltiq opens the claim\nThe DTX token of Daltiq is claimable from today.",
            Some("Daltiq"),
            Some("DTX"),
        ),
        // A word seen only where sentences open loses to a name in running text.
        (
            "Eligibility is set. Eligibility covers early users of Quorin, whose airdrop opens Monday.",
            Some("Quorin"),
            None,
        ),
    ];
    for (text, project, ticker) in cases {
        let (found_project, found_ticker) = salience.find(text);
        assert_eq!(found_ticker.as_deref(), ticker, "{text}");
        assert_eq!(found_project.as_deref(), project, "{text}");
    }
}

#[test]
fn abbreviations() {
    assert!(abbreviates("SOMI", "Somnia"));
    assert!(abbreviates("AXL", "Axelar"));
    assert!(abbreviates("ZETA", "ZetaChain"));
    assert!(!abbreviates("GLMR", "Moonbeam"));
    assert!(!abbreviates("X", "Xterio"));
}

fn value(candidates: &[Candidate], name: &str, names: &[&str], feature: &str) -> f64 {
    let candidate = candidates
        .iter()
        .find(|candidate| candidate.name == name)
        .unwrap_or_else(|| panic!("no candidate {name} in {candidates:?}"));
    let index = names.iter().position(|known| *known == feature).unwrap();
    candidate.values[index]
}

#[test]
fn candidate_features_read_the_headline_after_an_empty_title() {
    let salience = Salience::new(None).unwrap();
    // The scorer joins an empty title and the text with a line break.
    let text = "\nNorvane (NRV) opens its claim today\nNRV trades against USDT on Zentra. Visit norvane.xyz or @norvane_fi.\nThe claim runs until May.";
    let tickers = salience.ticker_candidates(text);
    assert_eq!(value(&tickers, "NRV", TICKER_FEATURES, "in_headline"), 1.0);
    assert_eq!(
        value(&tickers, "NRV", TICKER_FEATURES, "parenthesised"),
        1f64.ln_1p()
    );
    assert_eq!(
        value(&tickers, "NRV", TICKER_FEATURES, "count"),
        2f64.ln_1p()
    );
    assert_eq!(
        value(&tickers, "USDT", TICKER_FEATURES, "word_of_the_trade"),
        1.0
    );
    assert_eq!(value(&tickers, "USDT", TICKER_FEATURES, "in_headline"), 0.0);
    let projects = salience.project_candidates(text, Some("NRV"));
    for (feature, expected) in [
        ("in_headline", 1.0),
        ("in_first_sentence", 1.0),
        ("ticker_in_parentheses_after", 1f64.ln_1p()),
        ("ticker_abbreviates", 1.0),
        ("domain_or_handle", 1.0),
    ] {
        assert_eq!(
            value(&projects, "Norvane", PROJECT_FEATURES, feature),
            expected,
            "{feature}"
        );
    }
    assert_eq!(
        value(&projects, "Zentra", PROJECT_FEATURES, "in_headline"),
        0.0
    );
    assert_eq!(
        value(&projects, "Zentra", PROJECT_FEATURES, "domain_or_handle"),
        0.0
    );
    // Every candidate has one value per feature, all finite.
    for candidate in &tickers {
        assert_eq!(candidate.values.len(), TICKER_FEATURES.len());
        assert!(candidate.values.iter().all(|v| v.is_finite()));
    }
    for candidate in &projects {
        assert_eq!(candidate.values.len(), PROJECT_FEATURES.len());
        assert!(candidate.values.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn a_text_with_only_symbols_of_the_trade_names_no_ticker() {
    let salience = Salience::new(None).unwrap();
    assert_eq!(salience.find("Deposit USDT before 10:00 UTC.").1, None);
}
