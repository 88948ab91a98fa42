//! The scan: one pass of the phrase automaton, the cues around the event phrases (dates,
//! tickers, project names), the opening cues and code density, into a document's features,
//! spans, project, token and date.

use aho_corasick::{AhoCorasick, Anchored, Input as Haystack};

use crate::keyword::lexicon::Cue;

use super::*;

/// A whole-word match: pattern index and byte range.
pub(super) type WordMatch = (usize, usize, usize);

/// The leftmost-longest *whole-word* matches of an automaton, without overlaps. When the
/// longest phrase at a position is only part of a longer word ("token debut" in "token
/// debuted"), anchored searches inside it look for the shorter phrases at the same start
/// ("token"), so a failed long phrase never hides a valid short one. Failures are rare, so the
/// scan stays on the automaton's fast unanchored search.
pub(super) fn whole_words(matcher: &AhoCorasick, text: &str, out: &mut Vec<WordMatch>) {
    out.clear();
    let mut at = 0;
    while at < text.len() {
        let Some(found) = matcher.find(Haystack::new(text).range(at..)) else {
            break;
        };
        let (start, end) = (found.start(), found.end());
        if at_word_boundary(text, start, end) {
            out.push((found.pattern().as_usize(), start, end));
            at = end;
            continue;
        }
        let mut shorter_end = end;
        let mut accepted = None;
        while shorter_end > start + 1 {
            let anchored = Haystack::new(text)
                .range(start..shorter_end - 1)
                .anchored(Anchored::Yes);
            let Some(shorter) = matcher.find(anchored) else {
                break;
            };
            if at_word_boundary(text, shorter.start(), shorter.end()) {
                accepted = Some(shorter);
                break;
            }
            shorter_end = shorter.end();
        }
        match accepted {
            Some(shorter) => {
                out.push((shorter.pattern().as_usize(), shorter.start(), shorter.end()));
                at = shorter.end();
            }
            None => {
                let width = text[start..].chars().next().map_or(1, char::len_utf8);
                at = start + width;
            }
        }
    }
}

/// Whether `text[start..end]` stands as a whole word (or words).
pub(super) fn at_word_boundary(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    !before.is_some_and(is_word) && !after.is_some_and(is_word)
}

pub(super) const NOT_PROJECT_NAMES: &[&str] = &[
    "the",
    "a",
    "an",
    "this",
    "that",
    "its",
    "their",
    "our",
    "today",
    "breaking",
    "new",
    "crypto",
    "token",
    "tokens",
    "tge",
    "airdrop",
    "why",
    "how",
    "what",
    "when",
    "after",
    "before",
    "in",
    "on",
    "and",
    "but",
    "as",
    "it",
    "we",
    "they",
    "binance",
    "coinbase",
    "okx",
    "bybit",
    "kucoin",
    "upbit",
    "exclusive",
    "report",
    "update",
    "news",
    "week",
    "daily",
    "listing",
    "trading",
    "claims",
    "heads",
    "big",
    "tomorrow",
];

/// Upper-case words that precede "token" or "airdrop" without being tickers.
pub(crate) const NOT_TICKERS: &[&str] = &[
    "NFT", "DAO", "ERC", "API", "AI", "USD", "TGE", "IDO", "ICO", "IEO", "DEX", "CEX", "L1", "L2",
    "ETF", "DEFI", "WEB", "THE", "NEW", "BEP", "SPL", "OFT", "JWT", "LLM", "ID", "UTC", "KRW",
];

pub(crate) const MONTHS: &str = "(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)";

/// How far around an event phrase dates, tickers and project names are looked for.
pub(super) const EVENT_WINDOW: usize = 240;
/// How close a launch verb must be to the word "token".
pub(super) const VERB_TOKEN_DISTANCE: usize = 48;

pub(super) fn is_plausible_project(name: &str) -> bool {
    let first = name.split_whitespace().next().unwrap_or("");
    !NOT_PROJECT_NAMES.contains(&first.to_lowercase().as_str()) && name.len() >= 2
}

/// Bytes that are code punctuation: braces, semicolons, `=`, `_`, parentheses, `<>`, `#`.
pub(super) const CODE_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let code = b"{};=_()<>#";
    let mut index = 0;
    while index < code.len() {
        table[code[index] as usize] = true;
        index += 1;
    }
    table
};

/// Share of bytes that are code punctuation; a hex literal (`0x`) or an indented line counts
/// as four. A table lookup without branches: this runs over every document.
pub(super) fn code_density(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let bytes = text.as_bytes();
    let mut code = 0usize;
    for byte in bytes {
        code += usize::from(CODE_BYTES[usize::from(*byte)]);
    }
    code += 4 * memchr::memmem::find_iter(bytes, b"0x").count();
    code += 4 * memchr::memmem::find_iter(bytes, b"\n ").count();
    code as f64 / text.len() as f64
}

pub(super) fn is_question_title(title: &str) -> bool {
    let trimmed = title.trim();
    if trimmed.ends_with('?') {
        return true;
    }
    let first = trimmed
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        first.as_str(),
        "what" | "how" | "why" | "should" | "is" | "are" | "does" | "can" | "apa" | "cos'è"
    )
}

impl Extractor {
    /// Extracts the features of a document.
    pub fn extract(&self, input: Input<'_>) -> Extracted {
        let mut joined = String::with_capacity(input.title.len() + 1 + input.text.len());
        joined.push_str(input.title);
        joined.push('\n');
        joined.push_str(input.text);
        // A text without a title (a social post, a page's body) opens with its headline.
        let title_end = if input.title.trim().is_empty() {
            let first_line = input
                .text
                .trim_start()
                .find('\n')
                .unwrap_or(input.text.trim_start().len());
            let leading = input.text.len() - input.text.trim_start().len();
            // Joined is title + '\n' + text; the headline ends within 200 bytes, on a char
            // boundary.
            let mut end = (1 + leading + first_line.min(200)).min(joined.len());
            while !joined.is_char_boundary(end) {
                end -= 1;
            }
            end
        } else {
            input.title.len()
        };
        let mut values = [0.0f64; FEATURE_COUNT];
        let mut spans: Vec<Span> = Vec::new();
        let mut fired = [false; FEATURE_COUNT];
        let mut note = |spans: &mut Vec<Span>, feature: usize, label: &str, start, end| {
            if !fired[feature] {
                fired[feature] = true;
                spans.push(Span {
                    feature,
                    label: label.to_owned(),
                    start,
                    end,
                });
            }
        };

        // One pass over the cue phrases; distinct phrases per cue.
        // Distinct phrases so far (a handful per document: a vector beats hashing).
        let mut seen: Vec<usize> = Vec::new();
        let mut event_positions: Vec<usize> = Vec::new();
        let mut verb_spans: Vec<(usize, usize)> = Vec::new();
        let mut token_starts: Vec<(usize, usize)> = Vec::new();
        let mut groups = [false; 5];
        let mut counts = [0u32; Cue::COUNT];
        let mut tge_only_crypto_check = false;
        let mut matches: Vec<WordMatch> = Vec::new();
        whole_words(&self.phrases, &joined, &mut matches);
        let mut company_matches: Vec<(usize, usize, usize)> = Vec::new();
        for &(pattern, start, end) in &matches {
            if pattern >= self.companies.first_pattern {
                let owner = self.companies.owners[pattern - self.companies.first_pattern];
                company_matches.push((owner, start, end));
                continue;
            }
            let (cue, phrase) = self.phrase_cues[pattern];
            match cue {
                Cue::LaunchVerb => {
                    verb_spans.push((start, end));
                    continue;
                }
                Cue::TokenWord => {
                    token_starts.push((start, end));
                    continue;
                }
                _ => {}
            }
            let group = match cue {
                Cue::Tge => Some((0, f::TGE)),
                Cue::Launch => Some((1, f::LAUNCH)),
                Cue::Listing => Some((2, f::LISTING)),
                Cue::Sale => Some((3, f::SALE)),
                Cue::Claim => Some((4, f::CLAIM)),
                _ => None,
            };
            if let Some((group, feature)) = group {
                groups[group] = true;
                event_positions.push(start);
                if cue == Cue::Tge {
                    tge_only_crypto_check = true;
                }
                if start < title_end {
                    note(&mut spans, f::EVENT_IN_TITLE, phrase, start, end);
                    values[f::EVENT_IN_TITLE] = 1.0;
                }
                values[feature] = 1.0;
                note(&mut spans, feature, phrase, start, end);
                continue;
            }
            // "governance token", "native token": the word token for the launch-verb check.
            if phrase.ends_with("token") || phrase.ends_with("tokens") {
                token_starts.push((start, end));
            }
            if seen.contains(&pattern) {
                continue;
            }
            seen.push(pattern);
            let count = &mut counts[cue as usize];
            *count += 1;
            let (feature, cap) = match cue {
                Cue::Medium => (f::MEDIUM, 4),
                Cue::Timing => (f::TIMING, 3),
                Cue::Explainer => (f::EXPLAINER, 2),
                Cue::Denial => (f::DENIAL, 2),
                Cue::Scam => (f::SCAM, 2),
                Cue::Retro => (f::RETROSPECTIVE, 2),
                Cue::Price => (f::PRICE, 3),
                Cue::AlreadyTrading => (f::ALREADY_TRADING, 2),
                Cue::Season => (f::SEASON, 2),
                Cue::Speculation => (f::SPECULATION, 2),
                Cue::Job => (f::JOB, 2),
                Cue::OtherMeaning => (f::OTHER_MEANING, 3),
                Cue::Crypto => (f::CRYPTO, 4),
                _ => continue,
            };
            if f64::from(*count) <= f64::from(cap) {
                values[feature] = f64::from(*count);
            }
            note(&mut spans, feature, phrase, start, end);
        }

        // A launch verb shortly before or after the word "token": "launched its WAL token",
        // "the token $SMOL launches Friday".
        'verbs: for &(verb_start, verb_end) in &verb_spans {
            for &(token_start, token_end) in &token_starts {
                let before =
                    token_start >= verb_end && token_start - verb_end <= VERB_TOKEN_DISTANCE;
                let after =
                    verb_start >= token_end && verb_start - token_end <= VERB_TOKEN_DISTANCE / 2;
                if before || after {
                    values[f::LAUNCH_NEAR_TOKEN] = 1.0;
                    note(
                        &mut spans,
                        f::LAUNCH_NEAR_TOKEN,
                        "launch verb near token",
                        token_start,
                        token_end,
                    );
                    event_positions.push(token_start);
                    if token_start < title_end {
                        values[f::EVENT_IN_TITLE] = 1.0;
                    }
                    break 'verbs;
                }
            }
        }
        let launch_group = groups[1] || values[f::LAUNCH_NEAR_TOKEN] > 0.0;
        let group_count =
            groups.iter().filter(|g| **g).count() + usize::from(launch_group && !groups[1]);
        values[f::EVENT_GROUPS] = group_count.min(4) as f64;
        values[f::NO_EVENT] = if group_count == 0 { 1.0 } else { 0.0 };
        if tge_only_crypto_check && values[f::CRYPTO] == 0.0 && group_count == 1 {
            values[f::TGE_WITHOUT_CRYPTO] = 1.0;
        }
        event_positions.sort_unstable();
        let first_event = event_positions.first().copied();

        // Watchlist companies, unless used in an excluded (homonym) sense.
        let mut project: Option<String> = None;
        let mut token: Option<String> = None;
        {
            let mut best: Option<(usize, usize, usize)> = None;
            let distance = |start: usize| first_event.map_or(start, |at| at.abs_diff(start));
            for &(owner, found_start, found_end) in &company_matches {
                let closer =
                    best.is_none_or(|(_, start, _)| distance(found_start) < distance(start));
                if closer {
                    best = Some((owner, found_start, found_end));
                }
            }
            if let Some((owner, start, end)) = best {
                let homonym = self.homonym_of(&joined, owner);
                match homonym {
                    Some(exclusion) => {
                        values[f::HOMONYM] = 1.0;
                        note(&mut spans, f::HOMONYM, &exclusion, start, end);
                    }
                    None => {
                        values[f::COMPANY] = 1.0;
                        project = Some(self.companies.names[owner].clone());
                        token = self.companies.tickers[owner].clone();
                        let name = self.companies.names[owner].clone();
                        note(&mut spans, f::COMPANY, &name, start, end);
                    }
                }
            }
        }

        // Tickers, dates and project names near the event phrases.
        let mut ticker: Option<(String, usize, usize)> = None;
        if let Some(found) = self.dollar_ticker.captures(&joined)
            && let Some(symbol) = found.get(1)
            && !NOT_TICKERS.contains(&symbol.as_str())
        {
            ticker = Some((symbol.as_str().to_owned(), symbol.start(), symbol.end()));
        }
        let mut event_date: Option<(String, usize, usize)> = None;
        let mut project_near: Option<(String, usize, usize)> = None;
        let mut windows: Vec<(usize, usize)> = Vec::new();
        for &position in event_positions.iter().take(8) {
            let (from, to) = window(&joined, position, position, EVENT_WINDOW);
            match windows.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => windows.push((from, to)),
            }
        }
        for &(from, to) in &windows {
            let slice = &joined[from..to];
            if event_date.is_none()
                && let Some(found) = self.dates.find(slice)
            {
                event_date = Some((
                    found.as_str().trim().to_owned(),
                    from + found.start(),
                    from + found.end(),
                ));
            }
            if let Some(found) = self.paren_ticker.captures(slice)
                && let (Some(name), Some(symbol)) = (found.get(1), found.get(2))
            {
                if project.is_none()
                    && project_near.is_none()
                    && is_plausible_project(name.as_str())
                {
                    project_near = Some((
                        name.as_str().to_owned(),
                        from + name.start(),
                        from + name.end(),
                    ));
                }
                if ticker.is_none() && !NOT_TICKERS.contains(&symbol.as_str()) {
                    ticker = Some((
                        symbol.as_str().to_owned(),
                        from + symbol.start(),
                        from + symbol.end(),
                    ));
                }
            }
            if ticker.is_none() {
                for found in self.word_ticker.captures_iter(slice) {
                    let Some(symbol) = found.get(1) else { continue };
                    if !NOT_TICKERS.contains(&symbol.as_str()) {
                        ticker = Some((
                            symbol.as_str().to_owned(),
                            from + symbol.start(),
                            from + symbol.end(),
                        ));
                        break;
                    }
                }
            }
            if project.is_none() && project_near.is_none() {
                for found in self.project_before.captures_iter(slice) {
                    let Some(name) = found.get(1) else { continue };
                    if is_plausible_project(name.as_str()) {
                        project_near = Some((
                            name.as_str().to_owned(),
                            from + name.start(),
                            from + name.end(),
                        ));
                        break;
                    }
                }
            }
        }
        if ticker.is_none()
            && let (Some(matcher), Some(named)) = (&self.companies.ticker_matcher, &project)
        {
            whole_words(matcher, &joined, &mut matches);
            for &(pattern, found_start, found_end) in &matches {
                let owner = self.companies.ticker_owners[pattern];
                // A bare ticker counts only for the company already named (XAI vs xAI).
                if named == &self.companies.names[owner] {
                    let symbol = joined[found_start..found_end].to_owned();
                    ticker = Some((symbol, found_start, found_end));
                    break;
                }
            }
        }
        if let Some((symbol, start, end)) = ticker {
            values[f::TICKER] = 1.0;
            note(&mut spans, f::TICKER, &symbol, start, end);
            token = Some(symbol);
        }
        if let Some((name, start, end)) = project_near {
            values[f::PROJECT] = 1.0;
            note(&mut spans, f::PROJECT, &name, start, end);
            project = Some(name);
        }
        if let Some((date, start, end)) = &event_date {
            values[f::DATE_NEAR_EVENT] = 1.0;
            note(&mut spans, f::DATE_NEAR_EVENT, date, *start, *end);
        }

        // Years before this one: a retrospective cue.
        let mut past_years = 0u32;
        for found in self.year.captures_iter(&joined) {
            let Some(year) = found.get(1).and_then(|m| m.as_str().parse::<i32>().ok()) else {
                continue;
            };
            if year < input.year && year >= 2009 {
                past_years += 1;
                note(
                    &mut spans,
                    f::PAST_YEAR,
                    &year.to_string(),
                    found.get(0).map_or(0, |m| m.start()),
                    found.get(0).map_or(0, |m| m.end()),
                );
                if past_years >= 2 {
                    break;
                }
            }
        }
        values[f::PAST_YEAR] = f64::from(past_years);

        let opening_end = {
            let mut end = joined.len().min(OPENING_BYTES);
            while !joined.is_char_boundary(end) {
                end -= 1;
            }
            end
        };
        let opening = &joined[..opening_end];
        let paren_tickers = self.any_paren_ticker.find_iter(opening).take(3).count();
        if paren_tickers > 0 {
            values[f::PAREN_TICKER] = (1.0 + paren_tickers as f64).ln();
        }
        if let Some(found) = self.utc_time.find(opening) {
            values[f::UTC_TIME] = 1.0;
            note(
                &mut spans,
                f::UTC_TIME,
                found.as_str(),
                found.start(),
                found.end(),
            );
        }
        let mut rules = 0;
        for found in self.generic_rules.find_iter(opening).take(3) {
            rules += 1;
            note(
                &mut spans,
                f::GENERIC_RULES,
                found.as_str(),
                found.start(),
                found.end(),
            );
        }
        if rules > 0 {
            values[f::GENERIC_RULES] = (1.0 + f64::from(rules)).ln();
        }
        if let Some(found) = self.cjk_date.find(opening) {
            values[f::CJK_DATE] = 1.0;
            note(
                &mut spans,
                f::CJK_DATE,
                found.as_str(),
                found.start(),
                found.end(),
            );
        }
        let headline = if input.title.trim().is_empty() {
            &joined[..title_end.min(joined.len())]
        } else {
            input.title
        };
        if is_question_title(headline) {
            values[f::QUESTION_TITLE] = 1.0;
            note(
                &mut spans,
                f::QUESTION_TITLE,
                "question title",
                0,
                title_end,
            );
        }
        if code_density(&joined) > 0.02 {
            values[f::CODE] = 1.0;
            note(&mut spans, f::CODE, "code", 0, joined.len().min(80));
        }
        spans.retain(|span| values[span.feature] != 0.0);
        Extracted {
            values,
            spans,
            project,
            token,
            event_date: event_date.map(|(date, _, _)| date),
            joined,
        }
    }

    fn homonym_of(&self, joined: &str, owner: usize) -> Option<String> {
        let matcher = self.companies.exclusion_matcher.as_ref()?;
        let mut found_all = Vec::new();
        whole_words(matcher, joined, &mut found_all);
        for &(pattern, start, end) in &found_all {
            if self.companies.exclusion_owners[pattern] == owner {
                return Some(joined[start..end].to_lowercase());
            }
        }
        None
    }
}
