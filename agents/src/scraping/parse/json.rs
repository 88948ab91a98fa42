//! JSON API responses read with JSON pointers: the generic `json` source kind and the
//! exchange connectors, whose documented shapes are fixed mappings of the same form.
//!
//! A response whose shape changed is a clear error naming the pointer that no longer holds
//! (nothing half-read is used); single items that lack a title or a link are skipped.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;
use swarm_shared::domain::JsonMapping;

use super::{ParseError, RawItem, parse_date};

/// Where each field of an item is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemMap<'a> {
    /// Pointer from the root to the array of items ("" = the root).
    pub items: &'a str,
    /// Pointer to the title.
    pub title: &'a str,
    /// Pointer to the body.
    pub text: Option<&'a str>,
    /// Pointer to the link.
    pub link: Option<&'a str>,
    /// Prefix put before the value at `link` (an exchange that gives only an id or a code).
    pub link_prefix: &'a str,
    /// Pointer to the publication time.
    pub date: Option<&'a str>,
    /// Pointer to the category (a string, or an array of strings joined with ", ").
    pub category: Option<&'a str>,
}

impl<'a> ItemMap<'a> {
    /// The map of a configured `json` source.
    pub fn from_mapping(mapping: &'a JsonMapping) -> ItemMap<'a> {
        ItemMap {
            items: &mapping.items,
            title: &mapping.title,
            text: mapping.text.as_deref(),
            link: mapping.link.as_deref(),
            link_prefix: "",
            date: mapping.date.as_deref(),
            category: None,
        }
    }
}

/// A JSON body as a value; the error says where it stopped being JSON.
pub fn parse_value(bytes: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(bytes).map_err(|err| ParseError::Json(err.to_string()))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The array at `pointer`, or a schema error naming it.
pub fn array_at<'v>(root: &'v Value, pointer: &str) -> Result<&'v Vec<Value>, ParseError> {
    let shown = if pointer.is_empty() { "/" } else { pointer };
    match root.pointer(pointer) {
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(ParseError::Schema(format!(
            "expected an array at {shown}, found {}",
            kind_of(other)
        ))),
        None => Err(ParseError::Schema(format!("no value at {shown}"))),
    }
}

/// A scalar at `pointer` as text (strings as they are, numbers and booleans written out).
pub fn text_at(item: &Value, pointer: &str) -> Option<String> {
    match item.pointer(pointer)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Array(values) => {
            let parts: Vec<String> = values
                .iter()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        Value::Null | Value::Object(_) => None,
    }
}

/// Milliseconds or seconds since the epoch: values above 10^11 are read as milliseconds
/// (10^11 seconds is the year 5138).
fn epoch(value: i64) -> Option<DateTime<Utc>> {
    if value.abs() >= 100_000_000_000 {
        Utc.timestamp_millis_opt(value).single()
    } else {
        Utc.timestamp_opt(value, 0).single()
    }
}

/// A publication time as APIs write it: epoch seconds or milliseconds (number or digits),
/// RFC 3339, RFC 2822, `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM:SS` / `YYYY-MM-DDTHH:MM:SS` in UTC.
pub fn json_date(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(number) => epoch(number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|float| float.is_finite() && float.abs() < 9.0e15)
                .map(|float| float as i64)
        })?),
        Value::String(text) => {
            let text = text.trim();
            if !text.is_empty() && text.len() <= 16 && text.bytes().all(|b| b.is_ascii_digit()) {
                return epoch(text.parse().ok()?);
            }
            parse_date(text).or_else(|| {
                ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
                    .iter()
                    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                    .map(|naive| naive.and_utc())
            })
        }
        _ => None,
    }
}

/// The items of a JSON response, read with `map`; at most `max_items`. An array whose items
/// all lack a title is a schema error (the shape changed), not an empty read.
pub fn parse_items(
    root: &Value,
    map: &ItemMap<'_>,
    max_items: usize,
) -> Result<Vec<RawItem>, ParseError> {
    let items = array_at(root, map.items)?;
    let mut out = Vec::with_capacity(items.len().min(max_items));
    for item in items.iter().take(max_items) {
        let Some(title) = text_at(item, map.title).filter(|title| !title.trim().is_empty()) else {
            continue;
        };
        let link = map
            .link
            .and_then(|pointer| text_at(item, pointer))
            .filter(|link| !link.trim().is_empty())
            .map(|link| format!("{}{}", map.link_prefix, link.trim()));
        if map.link.is_some() && link.is_none() {
            continue;
        }
        out.push(RawItem {
            title,
            link,
            text: map
                .text
                .and_then(|pointer| text_at(item, pointer))
                .unwrap_or_default(),
            published: map
                .date
                .and_then(|pointer| item.pointer(pointer))
                .and_then(json_date),
            category: map.category.and_then(|pointer| text_at(item, pointer)),
        });
    }
    if out.is_empty() && !items.is_empty() {
        let shown = if map.items.is_empty() { "/" } else { map.items };
        let link = map
            .link
            .map(|pointer| format!(" and a link at {pointer}"))
            .unwrap_or_default();
        return Err(ParseError::Schema(format!(
            "none of the {} items at {shown} has a title at {}{link}",
            items.len(),
            map.title
        )));
    }
    Ok(out)
}

/// A `json` source's body read with its mapping.
pub fn parse_json(
    bytes: &[u8],
    mapping: &JsonMapping,
    max_items: usize,
) -> Result<Vec<RawItem>, ParseError> {
    let root = parse_value(bytes)?;
    parse_items(&root, &ItemMap::from_mapping(mapping), max_items)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mapping() -> JsonMapping {
        JsonMapping {
            items: "/data/list".into(),
            title: "/headline".into(),
            text: Some("/body".into()),
            link: Some("/href".into()),
            date: Some("/at".into()),
        }
    }

    #[test]
    fn items_are_read_through_the_pointers() {
        let body = json!({"data": {"list": [
            {"headline": "Velora lists VLR", "body": "Trading opens", "href": "/n/1", "at": 1_767_225_600_000_i64},
            {"headline": "Second", "href": "https://x.example/2", "at": "2026-01-01T08:00:00+08:00"},
            {"headline": "", "href": "/n/3"},
            {"headline": "No link"}
        ]}});
        let items = parse_json(body.to_string().as_bytes(), &mapping(), 50).unwrap();
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0].title, "Velora lists VLR");
        assert_eq!(items[0].text, "Trading opens");
        assert_eq!(items[0].link.as_deref(), Some("/n/1"));
        assert_eq!(
            items[0].published.unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(
            items[1].published.unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(items[1].text, "");
    }

    #[test]
    fn dates_come_in_every_form_apis_use() {
        let at = |value: Value| json_date(&value).map(|at| at.to_rfc3339());
        let want = Some("2026-03-02T10:00:00+00:00".to_owned());
        assert_eq!(at(json!(1_772_445_600)), want);
        assert_eq!(at(json!(1_772_445_600_000_i64)), want);
        assert_eq!(at(json!("1772445600000")), want);
        assert_eq!(at(json!("2026-03-02 10:00:00")), want);
        assert_eq!(at(json!("2026-03-02T19:00:00+09:00")), want);
        assert_eq!(at(json!("Mon, 02 Mar 2026 10:00:00 GMT")), want);
        assert_eq!(at(json!("soon")), None);
        assert_eq!(at(json!(null)), None);
    }

    #[test]
    fn a_changed_shape_is_a_clear_error() {
        let err = |body: Value| {
            parse_json(body.to_string().as_bytes(), &mapping(), 50)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(json!({"data": {"items": []}})),
            "unexpected response shape: no value at /data/list"
        );
        assert_eq!(
            err(json!({"data": {"list": {"a": 1}}})),
            "unexpected response shape: expected an array at /data/list, found an object"
        );
        assert_eq!(
            err(json!({"data": {"list": [{"title": "renamed field", "href": "/1"}]}})),
            "unexpected response shape: none of the 1 items at /data/list has a title at /headline and a link at /href"
        );
        let invalid = parse_json(b"{\"data\": [1, 2", &mapping(), 50).unwrap_err();
        assert!(
            invalid.to_string().starts_with("invalid JSON: ")
                && invalid.to_string().contains("line 1"),
            "{invalid}"
        );
        let empty = parse_json(br#"{"data": {"list": []}}"#, &mapping(), 50).unwrap();
        assert!(empty.is_empty(), "an empty list is an empty read");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse_json(deep.as_bytes(), &mapping(), 50).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }

    #[test]
    fn items_stop_at_the_limit() {
        let list: Vec<Value> = (0..30)
            .map(|n| json!({"headline": format!("t{n}"), "href": format!("/{n}")}))
            .collect();
        let body = json!({"data": {"list": list}});
        let items = parse_json(body.to_string().as_bytes(), &mapping(), 7).unwrap();
        assert_eq!(items.len(), 7);
    }
}
