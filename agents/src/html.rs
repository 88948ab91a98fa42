//! HTML parsing with bounds. html5ever's tree builder walks its stack of open elements for
//! many tags, so a page nested a million levels deep costs minutes of CPU, and misnested
//! formatting tags can make it create far more nodes than the page has tags. Every HTML parse
//! in the swarm (pages read with selectors, markup inside feed items) goes through here: the
//! tree is capped in depth and in nodes, and the parse can be abandoned (a deadline, or a
//! switch flipped when its agent stops).
//!
//! html5ever has no such limits, so they are enforced by a tree sink wrapped around scraper's:
//! it counts nodes and tracks each node's depth as nodes are appended. When a bound is
//! crossed it unwinds out of the parser with [`std::panic::resume_unwind`] (which does not run
//! the panic hook), and [`parse`] turns that into an [`HtmlError`]. The input is also fed in
//! chunks so that a deadline or a stop is seen between chunks even when the sink is quiet.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ego_tree::NodeId;
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName, local_name, ns};
use scraper::{Html, HtmlTreeSink};

/// Bytes fed to the parser between checks of the deadline and the stop switch.
const CHUNK: usize = 64 * 1024;
/// Sink calls between checks of the deadline and the stop switch.
const CHECK_EVERY: u32 = 1024;

/// Bounds on one HTML tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtmlLimits {
    /// Deepest element nesting allowed (browsers' parsers stop nesting at 512).
    pub max_depth: u32,
    /// Most nodes (elements, text runs, comments) allowed.
    pub max_nodes: usize,
}

impl HtmlLimits {
    /// The configured limits (`scraping.max_html_depth`, `scraping.max_html_nodes`).
    pub fn from_config(config: &swarm_shared::config::ScrapingConfig) -> HtmlLimits {
        HtmlLimits {
            max_depth: config.max_html_depth,
            max_nodes: config.max_html_nodes,
        }
    }
}

/// The configuration's defaults (512 levels, 250,000 nodes).
impl Default for HtmlLimits {
    fn default() -> Self {
        HtmlLimits::from_config(&swarm_shared::config::ScrapingConfig::default())
    }
}

/// When to give up on a parse that is still within its limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Abandon<'a> {
    /// Give up after this long.
    pub timeout: Option<Duration>,
    /// Give up when this becomes true (its agent is stopping).
    pub stop: Option<&'a AtomicBool>,
}

/// Why an HTML parse was given up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtmlError {
    /// Nested deeper than the limit.
    #[error("HTML nested deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: u32,
    },
    /// More nodes than the limit.
    #[error("HTML has more than {limit} nodes")]
    TooManyNodes {
        /// The limit.
        limit: usize,
    },
    /// Still parsing at the deadline.
    #[error("HTML parse still unfinished after {limit:?}")]
    TimedOut {
        /// The time allowed.
        limit: Duration,
    },
    /// Its agent is stopping.
    #[error("HTML parse abandoned: the agent is stopping")]
    Stopped,
}

/// A whole page.
pub fn parse_document(
    html: &str,
    limits: HtmlLimits,
    abandon: Abandon<'_>,
) -> Result<Html, HtmlError> {
    parse(html, Html::new_document(), limits, abandon, |sink| {
        html5ever::driver::parse_document(sink, Default::default())
    })
}

/// A fragment (markup inside a feed item), read as the content of a `<body>`.
pub fn parse_fragment(
    html: &str,
    limits: HtmlLimits,
    abandon: Abandon<'_>,
) -> Result<Html, HtmlError> {
    parse(html, Html::new_fragment(), limits, abandon, |sink| {
        let body = QualName::new(None, ns!(html), local_name!("body"));
        html5ever::driver::parse_fragment(sink, Default::default(), body, Vec::new(), false)
    })
}

fn parse(
    html: &str,
    root: Html,
    limits: HtmlLimits,
    abandon: Abandon<'_>,
    parser: impl FnOnce(BoundedSink<'_>) -> html5ever::driver::Parser<BoundedSink<'_>>,
) -> Result<Html, HtmlError> {
    let started = Instant::now();
    let sink = BoundedSink {
        inner: HtmlTreeSink::new(root),
        limits,
        abandon,
        started,
        depth: RefCell::new(HashMap::new()),
        nodes: Cell::new(0),
        calls: Cell::new(0),
    };
    let run = catch_unwind(AssertUnwindSafe(|| {
        let mut parser = parser(sink);
        let mut rest = html;
        while !rest.is_empty() {
            let mut end = rest.len().min(CHUNK);
            while !rest.is_char_boundary(end) {
                end += 1;
            }
            let (chunk, tail) = rest.split_at(end);
            parser.process(StrTendril::from_slice(chunk));
            rest = tail;
            if let Err(err) = abandoned(abandon, started) {
                resume_unwind(Box::new(err));
            }
        }
        parser.finish()
    }));
    match run {
        Ok(html) => Ok(html),
        Err(payload) => match payload.downcast::<HtmlError>() {
            Ok(err) => Err(*err),
            Err(other) => resume_unwind(other),
        },
    }
}

fn abandoned(abandon: Abandon<'_>, started: Instant) -> Result<(), HtmlError> {
    if abandon
        .stop
        .is_some_and(|stop| stop.load(Ordering::Relaxed))
    {
        return Err(HtmlError::Stopped);
    }
    match abandon.timeout {
        Some(limit) if started.elapsed() > limit => Err(HtmlError::TimedOut { limit }),
        _ => Ok(()),
    }
}

/// scraper's sink, counting nodes and depths. Unwinds with an [`HtmlError`] when a bound is
/// crossed (caught in [`parse`]); otherwise does exactly what scraper's sink does.
struct BoundedSink<'a> {
    inner: HtmlTreeSink,
    limits: HtmlLimits,
    abandon: Abandon<'a>,
    started: Instant,
    /// Depth of every node placed in the tree (the document and orphans are depth 0).
    depth: RefCell<HashMap<NodeId, u32>>,
    nodes: Cell<usize>,
    calls: Cell<u32>,
}

impl BoundedSink<'_> {
    fn created(&self) {
        let nodes = self.nodes.get() + 1;
        self.nodes.set(nodes);
        if nodes > self.limits.max_nodes {
            resume_unwind(Box::new(HtmlError::TooManyNodes {
                limit: self.limits.max_nodes,
            }));
        }
        self.tick();
    }

    fn tick(&self) {
        let calls = self.calls.get().wrapping_add(1);
        self.calls.set(calls);
        if calls % CHECK_EVERY == 0
            && let Err(err) = abandoned(self.abandon, self.started)
        {
            resume_unwind(Box::new(err));
        }
    }

    fn depth_of(&self, node: &NodeId) -> u32 {
        self.depth.borrow().get(node).copied().unwrap_or(0)
    }

    fn place(&self, child: &NodeOrText<NodeId>, depth: u32) {
        if let NodeOrText::AppendNode(id) = child {
            if depth > self.limits.max_depth {
                resume_unwind(Box::new(HtmlError::TooDeep {
                    limit: self.limits.max_depth,
                }));
            }
            self.depth.borrow_mut().insert(*id, depth);
        }
        self.tick();
    }
}

impl TreeSink for BoundedSink<'_> {
    type Output = Html;
    type Handle = NodeId;
    type ElemName<'b>
        = <HtmlTreeSink as TreeSink>::ElemName<'b>
    where
        Self: 'b;

    fn finish(self) -> Html {
        self.inner.finish()
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {
        // Not kept: nobody reads them, and a page of garbage yields millions.
    }

    fn get_document(&self) -> NodeId {
        self.inner.get_document()
    }

    fn elem_name<'b>(&'b self, target: &'b NodeId) -> Self::ElemName<'b> {
        self.inner.elem_name(target)
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> NodeId {
        self.created();
        self.inner.create_element(name, attrs, flags)
    }

    fn create_comment(&self, text: StrTendril) -> NodeId {
        self.created();
        self.inner.create_comment(text)
    }

    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        self.created();
        self.inner.create_pi(target, data)
    }

    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        if matches!(child, NodeOrText::AppendText(_)) {
            // A text run may become a new node (or extend the previous one).
            self.created();
        }
        self.place(&child, self.depth_of(parent) + 1);
        self.inner.append(parent, child);
    }

    fn append_based_on_parent_node(
        &self,
        element: &NodeId,
        prev_element: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        // scraper's version calls back into `append` or `append_before_sibling` on its own
        // sink, not this one: place the child here, at the deeper of the two candidates.
        let depth = self.depth_of(element).max(self.depth_of(prev_element) + 1);
        self.place(&child, depth);
        self.inner
            .append_based_on_parent_node(element, prev_element, child);
    }

    fn append_doctype_to_document(
        &self,
        name: StrTendril,
        public_id: StrTendril,
        system_id: StrTendril,
    ) {
        self.created();
        self.inner
            .append_doctype_to_document(name, public_id, system_id);
    }

    fn mark_script_already_started(&self, node: &NodeId) {
        self.inner.mark_script_already_started(node);
    }

    fn pop(&self, node: &NodeId) {
        self.inner.pop(node);
    }

    fn get_template_contents(&self, target: &NodeId) -> NodeId {
        self.inner.get_template_contents(target)
    }

    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        self.inner.same_node(x, y)
    }

    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode);
    }

    fn append_before_sibling(&self, sibling: &NodeId, new_node: NodeOrText<NodeId>) {
        if matches!(new_node, NodeOrText::AppendText(_)) {
            self.created();
        }
        self.place(&new_node, self.depth_of(sibling));
        self.inner.append_before_sibling(sibling, new_node);
    }

    fn add_attrs_if_missing(&self, target: &NodeId, attrs: Vec<Attribute>) {
        self.inner.add_attrs_if_missing(target, attrs);
    }

    fn associate_with_form(
        &self,
        target: &NodeId,
        form: &NodeId,
        nodes: (&NodeId, Option<&NodeId>),
    ) {
        self.inner.associate_with_form(target, form, nodes);
    }

    fn remove_from_parent(&self, target: &NodeId) {
        self.inner.remove_from_parent(target);
    }

    fn reparent_children(&self, node: &NodeId, new_parent: &NodeId) {
        // The moved children's subtrees keep their recorded depths: an estimate, which the
        // node limit backs up.
        self.tick();
        self.inner.reparent_children(node, new_parent);
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &NodeId) -> bool {
        self.inner
            .is_mathml_annotation_xml_integration_point(handle)
    }

    fn set_current_line(&self, line_number: u64) {
        self.inner.set_current_line(line_number);
    }

    fn allow_declarative_shadow_roots(&self, intended_parent: &NodeId) -> bool {
        self.inner.allow_declarative_shadow_roots(intended_parent)
    }

    fn attach_declarative_shadow(
        &self,
        location: &NodeId,
        template: &NodeId,
        attrs: &[Attribute],
    ) -> bool {
        self.inner
            .attach_declarative_shadow(location, template, attrs)
    }

    fn maybe_clone_an_option_into_selectedcontent(&self, option: &NodeId) {
        self.inner
            .maybe_clone_an_option_into_selectedcontent(option);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        let mut page = String::from("<html><body>");
        page.push_str(&"<div>".repeat(levels));
        page.push_str("deep");
        page.push_str(&"</div>".repeat(levels));
        page.push_str("</body></html>");
        page
    }

    #[test]
    fn ordinary_pages_parse_as_scraper_parses_them() {
        let page = "<html><head><title>T</title></head><body><p>One<b>two</p><table><tr><td>x</table>\
                    <template><i>t</i></template><!-- c --><ul><li>a<li>b</ul></body></html>";
        let bounded = parse_document(page, HtmlLimits::default(), Abandon::default()).unwrap();
        assert_eq!(bounded.html(), Html::parse_document(page).html());
        let fragment = "<p>Claim <b>opens</b> &amp; closes</p><script>x</script>";
        let bounded = parse_fragment(fragment, HtmlLimits::default(), Abandon::default()).unwrap();
        assert_eq!(bounded.html(), Html::parse_fragment(fragment).html());
    }

    #[test]
    fn depth_and_node_limits_are_errors() {
        let limits = HtmlLimits {
            max_depth: 100,
            max_nodes: 1_000,
        };
        assert!(parse_document(&nested(90), limits, Abandon::default()).is_ok());
        assert_eq!(
            parse_document(&nested(200), limits, Abandon::default()).unwrap_err(),
            HtmlError::TooDeep { limit: 100 }
        );
        // A million levels: refused as soon as the limit is crossed, not parsed to the end.
        assert_eq!(
            parse_fragment(
                &nested(1_000_000),
                HtmlLimits::default(),
                Abandon::default()
            )
            .unwrap_err(),
            HtmlError::TooDeep { limit: 512 }
        );
        let wide = "<p>x</p>".repeat(2_000);
        assert_eq!(
            parse_fragment(&wide, limits, Abandon::default()).unwrap_err(),
            HtmlError::TooManyNodes { limit: 1_000 }
        );
    }

    #[test]
    fn misnested_formatting_cannot_multiply_nodes() {
        // Each <p> reopens every formatting element still active: nodes grow with the square
        // of the tags. The node limit stops it.
        let mut page = String::new();
        for index in 0..3_000 {
            page.push_str(&format!("<b id={index}>"));
        }
        page.push_str(&"<p>x</p>".repeat(3_000));
        let err = parse_fragment(&page, HtmlLimits::default(), Abandon::default()).unwrap_err();
        assert!(
            matches!(
                err,
                HtmlError::TooManyNodes { .. } | HtmlError::TooDeep { .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_parse_can_be_abandoned() {
        let page = "<p>x</p>".repeat(100_000);
        let stop = AtomicBool::new(true);
        let abandon = Abandon {
            timeout: None,
            stop: Some(&stop),
        };
        let limits = HtmlLimits {
            max_depth: 512,
            max_nodes: 10_000_000,
        };
        assert_eq!(
            parse_document(&page, limits, abandon).unwrap_err(),
            HtmlError::Stopped
        );
        let abandon = Abandon {
            timeout: Some(Duration::ZERO),
            stop: None,
        };
        assert_eq!(
            parse_document(&page, limits, abandon).unwrap_err(),
            HtmlError::TimedOut {
                limit: Duration::ZERO
            }
        );
    }

    #[test]
    fn other_panics_still_propagate() {
        // Unwinding is how limits leave the parser; a real bug must not be swallowed as one.
        let result = catch_unwind(|| {
            parse(
                "<p>x</p>",
                Html::new_fragment(),
                HtmlLimits::default(),
                Abandon::default(),
                |_sink| -> html5ever::driver::Parser<BoundedSink<'_>> { panic!("a bug") },
            )
        });
        assert!(result.is_err());
    }
}
