//! The words of an event search (`q` of `GET /events`), as both stores' full-text indexes
//! read them: SQLite's FTS5 (`unicode61` tokenizer) and Postgres's text search (`simple`
//! configuration) both cut text into runs of letters and digits and fold case, so a word is
//! such a run, lower-cased; a `*` right after a word makes it a prefix.

/// Most words a search may have: each is one index lookup.
pub const MAX_SEARCH_WORDS: usize = 8;

/// One word of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchWord {
    /// Letters and digits, lower-cased.
    pub word: String,
    /// Matches words that begin with it (`airdr*`), not only the word itself.
    pub prefix: bool,
}

/// The words of `q`, in order and without repeats; an error naming what is wrong when it has
/// none (only punctuation) or more than [`MAX_SEARCH_WORDS`].
pub fn search_words(q: &str) -> Result<Vec<SearchWord>, String> {
    let mut words: Vec<SearchWord> = Vec::new();
    let mut current = String::new();
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
            if chars.peek().is_some_and(|next| next.is_alphanumeric()) {
                continue;
            }
            let prefix = chars.peek() == Some(&'*');
            let word = SearchWord {
                word: std::mem::take(&mut current),
                prefix,
            };
            if !words.contains(&word) {
                words.push(word);
            }
        }
    }
    if words.is_empty() {
        return Err(format!(
            "q: `{}` has no word to search for (words are letters and digits)",
            shorten(q)
        ));
    }
    if words.len() > MAX_SEARCH_WORDS {
        return Err(format!(
            "q: {} words, at most {MAX_SEARCH_WORDS} are searched for",
            words.len()
        ));
    }
    Ok(words)
}

/// At most 40 characters of `text`, for an error message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(q: &str) -> Vec<(String, bool)> {
        search_words(q)
            .unwrap()
            .into_iter()
            .map(|word| (word.word, word.prefix))
            .collect()
    }

    #[test]
    fn words_are_runs_of_letters_and_digits_lower_cased() {
        assert_eq!(
            words("Fhenix $FHE/USDT airdrop!"),
            [
                ("fhenix".into(), false),
                ("fhe".into(), false),
                ("usdt".into(), false),
                ("airdrop".into(), false)
            ]
        );
        assert_eq!(
            words("Kelvora 12"),
            [("kelvora".into(), false), ("12".into(), false)]
        );
        assert_eq!(
            words("Ünïcode Ωmega"),
            [("ünïcode".into(), false), ("ωmega".into(), false)]
        );
    }

    #[test]
    fn a_star_after_a_word_makes_it_a_prefix() {
        assert_eq!(
            words("airdr* fhenix *x"),
            [
                ("airdr".into(), true),
                ("fhenix".into(), false),
                ("x".into(), false)
            ]
        );
    }

    #[test]
    fn repeats_count_once() {
        assert_eq!(words("tge TGE Tge"), [("tge".into(), false)]);
    }

    #[test]
    fn no_word_or_too_many_words_is_an_error_that_says_so() {
        let none = search_words("%_ $ !").unwrap_err();
        assert!(none.contains("no word"), "{none}");
        let long = "!".repeat(100);
        let shortened = search_words(&long).unwrap_err();
        assert!(
            shortened.contains(&format!("{}…", "!".repeat(40))),
            "{shortened}"
        );
        let many = search_words("a b c d e f g h i").unwrap_err();
        assert!(many.contains("9 words"), "{many}");
        assert_eq!(search_words("a b c d e f g h").unwrap().len(), 8);
    }
}
