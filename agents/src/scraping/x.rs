//! X (Twitter) API v2: an `x` source reads a recent search (`query`) or an account's posts
//! (`account`) with an app-only bearer token from [`X_TOKEN_ENV`] (read at start into
//! `scraping.x_bearer_token`). Each post becomes an item:
//! its first sentence as the title, its text, its link on x.com and its own time.
//!
//! What has been read is kept in the source's content marker (`content_hash`, opaque to the
//! rest of the swarm): `x1 since=<newest post id>[ uid=<account id>]`. A read asks only for
//! posts after `since` and follows `next_token` pages back to it (at most
//! [`MAX_X_PAGES`]); the first read takes one page. The account's id is looked up once.
//!
//! Rate limits: a 429 waits until `x-rate-limit-reset` (swarm-wide, through the host's
//! breaker); a read that spends the window's last request holds the source until the reset.
//! A missing token, or one X rejects (401, 403), is a source error naming the variable.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;
use swarm_shared::domain::{ScrapeTask, Source, X_API_BASE, X_TOKEN_ENV};
use url::Url;

use super::exchange::{Failure, Read};
use super::fetch::{FetchError, Fetched, Fetcher, Validators};
use super::parse::json::{json_date, parse_value, text_at};
use super::parse::{Limits, ParseError, RawItem, post_title};

/// Most pages of posts read in one poll.
pub const MAX_X_PAGES: u32 = 5;
/// Posts asked for per page (X allows 10 to 100).
pub const X_PAGE_SIZE: u32 = 100;

/// What an X source has read so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XState {
    /// The newest post id read.
    pub since: Option<String>,
    /// The account's numeric id, once looked up.
    pub uid: Option<String>,
}

impl XState {
    /// Reads a source's content marker (anything else reads as a fresh start).
    pub fn parse(marker: Option<&str>) -> XState {
        let mut state = XState::default();
        let Some(rest) = marker.and_then(|marker| marker.strip_prefix("x1")) else {
            return state;
        };
        for part in rest.split_whitespace() {
            if let Some(since) = part.strip_prefix("since=") {
                state.since = Some(since.to_owned());
            } else if let Some(uid) = part.strip_prefix("uid=") {
                state.uid = Some(uid.to_owned());
            }
        }
        state
    }

    /// The marker to store.
    pub fn marker(&self) -> String {
        let mut marker = String::from("x1");
        if let Some(since) = &self.since {
            marker.push_str(&format!(" since={since}"));
        }
        if let Some(uid) = &self.uid {
            marker.push_str(&format!(" uid={uid}"));
        }
        marker
    }
}

/// Post ids are 64-bit numbers written as strings: the larger is the newer.
fn newer(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

fn base(source: &Source) -> &str {
    let configured = source.url.trim().trim_end_matches('/');
    if configured.is_empty() {
        X_API_BASE
    } else {
        configured
    }
}

/// A failure of X's own making that is about the request, not the host: said plainly.
fn explain(err: FetchError) -> Failure {
    match err {
        FetchError::Status { status: 401, .. } => Failure::Parse(format!(
            "X rejected the bearer token (HTTP 401): check {X_TOKEN_ENV}"
        )),
        FetchError::Status { status: 403, .. } => Failure::Parse(
            "X refused the request (HTTP 403): the token's access level does not include this endpoint"
                .into(),
        ),
        FetchError::Status { status: 400, .. } => Failure::Parse(
            "X refused the request as invalid (HTTP 400): check the source's query or account"
                .into(),
        ),
        other => Failure::Fetch(other),
    }
}

/// One GET with the token; the body and the wait a spent window asks for.
async fn get(
    fetcher: &Fetcher,
    url: &Url,
    auth: &HeaderMap,
) -> Result<(Value, Option<Duration>), Failure> {
    match fetcher
        .fetch_with(url.as_str(), &Validators::default(), auth)
        .await
    {
        Ok(Fetched::Body { bytes, headers, .. }) => {
            let hold = swarm_shared::outbound::retry_after(&headers);
            let root = parse_value(&bytes).map_err(|err| Failure::Parse(err.to_string()))?;
            Ok((root, hold))
        }
        Ok(Fetched::NotModified) => Ok((Value::Null, None)),
        Err(err) => Err(explain(err)),
    }
}

/// One page of posts: the posts, the newest id, and the next page's token.
pub type Posts = (Vec<RawItem>, Option<String>, Option<String>);

/// The posts of one page, with the newest id and the next page's token.
pub fn parse_posts(root: &Value, account: Option<&str>) -> Result<Posts, ParseError> {
    let meta = root.get("meta").ok_or_else(|| {
        match text_at(root, "/detail").or_else(|| text_at(root, "/errors/0/message")) {
            Some(detail) => ParseError::Api(detail),
            None => ParseError::Schema("no value at /meta".into()),
        }
    })?;
    let newest = text_at(meta, "/newest_id");
    let next = text_at(meta, "/next_token");
    let Some(posts) = root.get("data") else {
        // No posts since the last read: X leaves `data` out.
        return Ok((Vec::new(), newest, None));
    };
    let posts = posts
        .as_array()
        .ok_or_else(|| ParseError::Schema("expected an array at /data".into()))?;
    let users: Vec<(String, String)> = root
        .pointer("/includes/users")
        .and_then(Value::as_array)
        .map(|users| {
            users
                .iter()
                .filter_map(|user| Some((text_at(user, "/id")?, text_at(user, "/username")?)))
                .collect()
        })
        .unwrap_or_default();
    let mut items = Vec::with_capacity(posts.len());
    for post in posts {
        let (Some(id), Some(text)) = (text_at(post, "/id"), text_at(post, "/text")) else {
            continue;
        };
        let author = account.map(str::to_owned).or_else(|| {
            let author = text_at(post, "/author_id")?;
            users
                .iter()
                .find(|(id, _)| *id == author)
                .map(|(_, name)| name.clone())
        });
        let link = match author {
            Some(name) => format!("https://x.com/{name}/status/{id}"),
            None => format!("https://x.com/i/web/status/{id}"),
        };
        items.push(RawItem {
            title: post_title(&text),
            link: Some(link),
            text,
            published: post
                .get("created_at")
                .and_then(json_date)
                .filter(|at: &DateTime<Utc>| at.timestamp() > 0),
            category: None,
        });
    }
    if items.is_empty() && !posts.is_empty() {
        return Err(ParseError::Schema(format!(
            "none of the {} posts at /data has an id and a text",
            posts.len()
        )));
    }
    Ok((items, newest, next))
}

/// Reads one poll of an X source.
pub async fn read(fetcher: &Fetcher, task: &ScrapeTask, limits: &Limits) -> Result<Read, Failure> {
    let source = &task.source;
    let token = fetcher
        .config()
        .x_bearer_token
        .as_ref()
        .map(|token| token.expose().to_owned())
        .filter(|token| !token.trim().is_empty())
        .ok_or_else(|| {
            Failure::Parse(format!(
                "x sources need an app-only bearer token in {X_TOKEN_ENV}"
            ))
        })?;
    let mut auth = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        .map_err(|_| Failure::Parse(format!("{X_TOKEN_ENV} holds characters a header cannot")))?;
    auth.insert(AUTHORIZATION, value);
    let base = base(source);
    let invalid = |err: url::ParseError| Failure::Parse(format!("invalid url {base}: {err}"));
    let mut state = XState::parse(task.content_hash.as_deref());
    let mut hold = None;
    let account = source
        .account
        .as_deref()
        .map(|account| account.trim_start_matches('@'));

    // The account's id, looked up once.
    let path = match (account, &source.query) {
        (Some(handle), _) => {
            if state.uid.is_none() {
                let url =
                    Url::parse(&format!("{base}/2/users/by/username/{handle}")).map_err(invalid)?;
                let (root, wait) = get(fetcher, &url, &auth).await?;
                hold = wait;
                let uid = text_at(&root, "/data/id").ok_or_else(|| {
                    Failure::Parse(match text_at(&root, "/errors/0/detail") {
                        Some(detail) => format!("X has no account @{handle}: {detail}"),
                        None => format!("X has no account @{handle}"),
                    })
                })?;
                state.uid = Some(uid);
            }
            format!(
                "/2/users/{}/tweets",
                state.uid.as_deref().unwrap_or_default()
            )
        }
        (None, Some(_)) => "/2/tweets/search/recent".to_owned(),
        (None, None) => {
            return Err(Failure::Parse(
                "x sources need a query or an account".into(),
            ));
        }
    };

    let mut items: Vec<RawItem> = Vec::new();
    let mut newest: Option<String> = None;
    let mut page_token: Option<String> = None;
    for _ in 0..MAX_X_PAGES {
        let mut url = Url::parse(&format!("{base}{path}")).map_err(invalid)?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(search) = &source.query {
                query.append_pair("query", search);
                query.append_pair("expansions", "author_id");
                query.append_pair("user.fields", "username");
            }
            query.append_pair("max_results", &X_PAGE_SIZE.to_string());
            query.append_pair("tweet.fields", "created_at,author_id");
            if let Some(since) = &state.since {
                query.append_pair("since_id", since);
            }
            if let Some(next) = &page_token {
                let name = if source.query.is_some() {
                    "next_token"
                } else {
                    "pagination_token"
                };
                query.append_pair(name, next);
            }
        }
        let (root, wait) = get(fetcher, &url, &auth).await?;
        hold = hold.max(wait);
        let (page, page_newest, next) =
            parse_posts(&root, account).map_err(|err| Failure::Parse(err.to_string()))?;
        if newest.is_none() {
            newest = page_newest;
        }
        items.extend(page);
        // Back to the last read only; the first read takes one page.
        match next {
            Some(next)
                if state.since.is_some() && items.len() < limits.max_items && hold.is_none() =>
            {
                page_token = Some(next)
            }
            _ => break,
        }
    }
    if let Some(newest) = newest
        && state
            .since
            .as_deref()
            .is_none_or(|since| newer(&newest, since))
    {
        state.since = Some(newest);
    }
    items.truncate(limits.max_items);
    Ok(Read::Notices {
        items,
        content_hash: state.marker(),
        hold,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_marker_round_trips() {
        let state = XState {
            since: Some("1866000000000000001".into()),
            uid: Some("44196397".into()),
        };
        assert_eq!(XState::parse(Some(&state.marker())), state);
        assert_eq!(XState::parse(Some("a1b2-300")), XState::default());
        assert!(newer("1866000000000000010", "1866000000000000009"));
        assert!(newer("10", "9"));
    }

    #[test]
    fn posts_keep_their_author_link_and_time() {
        let page = json!({
            "data": [{"id": "1866000000000000002", "author_id": "7", "created_at": "2026-12-04T09:30:00.000Z",
                      "text": "Velora TGE is live! Claim $VLR now at the official portal."}],
            "includes": {"users": [{"id": "7", "username": "VeloraHQ", "name": "Velora"}]},
            "meta": {"newest_id": "1866000000000000002", "oldest_id": "1866000000000000002", "result_count": 1, "next_token": "b26v89c19zqg8o3f"}
        });
        let (items, newest, next) = parse_posts(&page, None).unwrap();
        assert_eq!(items[0].title, "Velora TGE is live!");
        assert_eq!(
            items[0].link.as_deref(),
            Some("https://x.com/VeloraHQ/status/1866000000000000002")
        );
        assert_eq!(
            items[0].published.unwrap().to_rfc3339(),
            "2026-12-04T09:30:00+00:00"
        );
        assert_eq!(newest.as_deref(), Some("1866000000000000002"));
        assert_eq!(next.as_deref(), Some("b26v89c19zqg8o3f"));
        let empty = json!({"meta": {"result_count": 0}});
        assert!(parse_posts(&empty, None).unwrap().0.is_empty());
        let err = parse_posts(&json!({"title": "Invalid Request", "detail": "One or more parameters to your request was invalid."}), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the API reported an error: One or more parameters to your request was invalid."
        );
    }
}
