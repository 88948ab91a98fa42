//! Each exchange's announcement API: the request for one page of its new-listing notices
//! and the documented response shape, as an [`ItemMap`] plus the envelope that says whether
//! the call succeeded. Sources of each shape are named beside it (docs.md lists them too).

use serde_json::Value;
use swarm_shared::domain::Exchange;

use super::super::parse::json::ItemMap;
use super::super::parse::{ParseError, RawItem};
use super::Envelope;

/// Notices asked for per page.
pub const PAGE_SIZE: usize = 20;

/// How one exchange's announcements are read.
#[derive(Debug, Clone, Copy)]
pub struct AnnouncementApi {
    /// Path and query of page `{page}` (1-based).
    path: &'static str,
    /// Whether the API pages (`{page}` is in `path`).
    pub pages: bool,
    /// Where each field of a notice is.
    pub map: ItemMap<'static>,
    /// The category when the items carry none (the API was asked for one category).
    pub category: Option<&'static str>,
    /// How the response says it failed.
    pub envelope: Option<Envelope>,
}

impl AnnouncementApi {
    /// Path and query of page `page`.
    pub fn path(&self, page: u32) -> String {
        self.path.replace("{page}", &page.to_string())
    }
}

/// The announcement API of `exchange`; none for Gate, whose only documented announcement
/// feed is a WebSocket channel (read by `gate.rs`).
pub fn api(exchange: Exchange) -> Option<AnnouncementApi> {
    let map = |items, title, text, link, date, category| ItemMap {
        items,
        title,
        text,
        link: Some(link),
        link_prefix: "",
        date: Some(date),
        category,
    };
    Some(match exchange {
        // Binance publishes no REST API for announcements (its documented feed is a signed
        // WebSocket topic); this is the public endpoint its own support site reads.
        // Catalog 48 is "New Cryptocurrency Listing".
        Exchange::Binance => AnnouncementApi {
            path: "/bapi/composite/v1/public/cms/article/list/query?type=1&catalogId=48&pageNo={page}&pageSize=20",
            pages: true,
            map: ItemMap {
                link_prefix: "https://www.binance.com/en/support/announcement/",
                ..map(
                    "/data/catalogs/0/articles",
                    "/title",
                    None,
                    "/code",
                    "/releaseDate",
                    None,
                )
            },
            category: Some("New Cryptocurrency Listing"),
            envelope: Some(Envelope::Flag {
                pointer: "/success",
                message: "/message",
            }),
        },
        // bybit-exchange.github.io/docs/v5/announcement
        Exchange::Bybit => AnnouncementApi {
            path: "/v5/announcements/index?locale=en-US&type=new_crypto&page={page}&limit=20",
            pages: true,
            map: map(
                "/result/list",
                "/title",
                Some("/description"),
                "/url",
                "/dateTimestamp",
                Some("/type/title"),
            ),
            category: None,
            envelope: Some(Envelope::Code {
                pointer: "/retCode",
                ok: "0",
                message: "/retMsg",
            }),
        },
        // okx.com/docs-v5, "Get announcements" (public; 5 requests per 2 s per IP).
        Exchange::Okx => AnnouncementApi {
            path: "/api/v5/support/announcements?annType=announcements-new-listings&page={page}",
            pages: true,
            map: map(
                "/data/0/details",
                "/title",
                None,
                "/url",
                "/pTime",
                Some("/annType"),
            ),
            category: None,
            envelope: Some(Envelope::Code {
                pointer: "/code",
                ok: "0",
                message: "/msg",
            }),
        },
        // bitget.com/api-doc/common/notice/Get-All-Notices (the path is spelled so; the last
        // month of notices, no paging; 20 requests/s per IP).
        Exchange::Bitget => AnnouncementApi {
            path: "/api/v2/public/annoucements?language=en_US&annType=coin_listings",
            pages: false,
            map: map(
                "/data",
                "/annTitle",
                Some("/annDesc"),
                "/annUrl",
                "/cTime",
                None,
            ),
            category: Some("coin_listings"),
            envelope: Some(Envelope::Code {
                pointer: "/code",
                ok: "00000",
                message: "/msg",
            }),
        },
        // kucoin.com/docs, "Get Announcements" (v3).
        Exchange::Kucoin => AnnouncementApi {
            path: "/api/v3/announcements?annType=new-listings&lang=en_US&currentPage={page}&pageSize=20",
            pages: true,
            map: map(
                "/data/items",
                "/annTitle",
                Some("/annDesc"),
                "/annUrl",
                "/cTime",
                Some("/annType"),
            ),
            category: None,
            envelope: Some(Envelope::Code {
                pointer: "/code",
                ok: "200000",
                message: "/msg",
            }),
        },
        Exchange::Gate => return None,
        // MEXC spot API v3, "Announcements" (5 requests per 2 s); no category filter.
        Exchange::Mexc => AnnouncementApi {
            path: "/api/v3/announcements?language=en-US&page={page}&limit=20",
            pages: true,
            map: map("/data/0/details", "/title", None, "/url", "/postTime", None),
            category: None,
            envelope: None,
        },
        // Upbit documents no REST API for notices (its documented feed is a private
        // WebSocket); this is the public endpoint its notice board reads. `trade` is the
        // trading notices (new markets).
        Exchange::Upbit => AnnouncementApi {
            path: "/api/v1/announcements?os=web&page={page}&per_page=20&category=trade",
            pages: true,
            map: ItemMap {
                link_prefix: "https://upbit.com/service_center/notice?id=",
                ..map(
                    "/data/notices",
                    "/title",
                    None,
                    "/id",
                    "/first_listed_at",
                    Some("/category"),
                )
            },
            category: None,
            envelope: Some(Envelope::Flag {
                pointer: "/success",
                message: "/error/message",
            }),
        },
    })
}

/// One page of `exchange`'s notices.
pub fn parse_page(
    api: &AnnouncementApi,
    root: &Value,
    max_items: usize,
) -> Result<Vec<RawItem>, ParseError> {
    if let Some(envelope) = &api.envelope {
        envelope.check(root)?;
    }
    let mut items = super::super::parse::json::parse_items(root, &api.map, max_items)?;
    if let Some(category) = api.category {
        for item in &mut items {
            item.category.get_or_insert_with(|| category.to_owned());
        }
    }
    Ok(items)
}
