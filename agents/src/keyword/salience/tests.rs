use super::*;

#[test]
fn projects_and_tickers_named_in_the_body() {
    let salience = Salience::new().unwrap();
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
