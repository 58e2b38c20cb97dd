//! `/api/globals/{namespace}`: read, list, set and kill globals, for demos and the portal.
//! Each request runs in a fresh session on the namespace, so a write is acknowledged
//! exactly as a plain RESP write would be (after its journal fsync when the instance's
//! durability is `always`).

use super::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use super::{blocking, AppState};
use crate::globals::reference::{format, format_value, parse};
use crate::globals::GlobalRef;
use crate::instance::{Direction, Instance, Session, WriteAck};
use crate::security::Rights;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most nodes one listing returns.
pub const MAX_LIST: u32 = 10_000;
const DEFAULT_LIST: u32 = 100;
/// A listed value shows at most this many bytes (then `truncated`, and its full length).
pub const MAX_LISTED_VALUE_BYTES: usize = 1024;
/// A page ends once its values add up to this many bytes: a listing of large values is
/// paged by size as well as by count.
pub const MAX_LIST_VALUE_BYTES: usize = 1 << 20;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/globals/{namespace}", get(read).put(write).delete(kill))
        .route("/api/globals/{namespace}/list", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefQuery {
    #[serde(rename = "ref")]
    reference: String,
}

#[derive(Serialize)]
struct NodeView {
    #[serde(rename = "ref")]
    reference: String,
    /// The value as text (bytes that are not UTF-8 are replaced); `null` when the node has
    /// no value.
    value: Option<String>,
    /// The value as a ZWRITE literal (`"text"`, `42`, `"a"_$c(0)`), exact for any bytes.
    literal: Option<String>,
    /// In a listing: the value was longer than [`MAX_LISTED_VALUE_BYTES`]; `value` and
    /// `literal` show its start, `bytes` its length.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<usize>,
}

impl NodeView {
    fn new(r: &GlobalRef, value: Option<Vec<u8>>) -> NodeView {
        NodeView {
            reference: format(r),
            literal: value.as_deref().map(format_value),
            value: value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            truncated: false,
            bytes: None,
        }
    }

    /// A listed node: a long value is cut to its first [`MAX_LISTED_VALUE_BYTES`].
    fn listed(r: &GlobalRef, mut value: Vec<u8>) -> NodeView {
        let len = value.len();
        if len <= MAX_LISTED_VALUE_BYTES {
            return NodeView::new(r, Some(value));
        }
        value.truncate(MAX_LISTED_VALUE_BYTES);
        NodeView { truncated: true, bytes: Some(len), ..NodeView::new(r, Some(value)) }
    }

    /// The ZWRITE line; a cut value is marked with its full length.
    fn line(&self) -> String {
        let literal = self.literal.as_deref().unwrap_or_default();
        match self.bytes {
            Some(n) if self.truncated => format!("{}={literal}... ({n} bytes)", self.reference),
            _ => format!("{}={literal}", self.reference),
        }
    }
}

#[derive(Serialize)]
struct ReadView {
    #[serde(flatten)]
    node: NodeView,
    /// `$DATA`: 0 no node, 1 value only, 10 descendants only, 11 both.
    data: u8,
}

async fn read(
    State(instance): State<AppState>,
    Extension(rights): Extension<Arc<Rights>>,
    Path(namespace): Path<String>,
    ApiQuery(q): ApiQuery<RefQuery>,
) -> ApiResult<Json<ReadView>> {
    let r = parse(&q.reference)?;
    blocking(move || {
        let s = session(&instance, rights, &namespace)?;
        let value = instance.get(&s, &r)?;
        let data = instance.data(&s, &r)?;
        Ok(Json(ReadView { node: NodeView::new(&r, value), data }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(rename = "ref")]
    reference: String,
    max: Option<u32>,
    /// Start after this node (the previous page's `next`).
    after: Option<String>,
}

#[derive(Serialize)]
struct ListView {
    #[serde(rename = "ref")]
    reference: String,
    /// ZWRITE-style lines: `^Company(1,"name")="Acme"`.
    lines: Vec<String>,
    nodes: Vec<NodeView>,
    /// More nodes follow the last one listed.
    truncated: bool,
    /// When truncated: the last node listed, to pass as `after` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// The node and its descendants that have values, in collation order, at most `max`.
async fn list(
    State(instance): State<AppState>,
    Extension(rights): Extension<Arc<Rights>>,
    Path(namespace): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<ListView>> {
    let max = q.max.unwrap_or(DEFAULT_LIST);
    if !(1..=MAX_LIST).contains(&max) {
        return Err(ApiError::bad_request(format!("max must be between 1 and {MAX_LIST}, not {max}")));
    }
    let root = parse(&q.reference)?;
    let after = q.after.as_deref().map(parse).transpose()?;
    if let Some(a) = &after {
        if a.name != root.name || !a.subscripts.starts_with(&root.subscripts) {
            return Err(ApiError::bad_request(format!(
                "after {} is not in the subtree of {}: pass the previous page's next",
                format(a),
                format(&root)
            )));
        }
    }
    blocking(move || {
        let s = session(&instance, rights, &namespace)?;
        let mut nodes = Vec::new();
        let mut truncated = false;
        let mut last = None;
        let mut page_bytes = 0;
        let mut next = match &after {
            Some(a) => following(&instance, &s, &root, a)?,
            None => match instance.get(&s, &root)? {
                Some(v) => Some((root.clone(), v)),
                None => following(&instance, &s, &root, &root)?,
            },
        };
        while let Some((r, value)) = next {
            if nodes.len() == max as usize || page_bytes >= MAX_LIST_VALUE_BYTES {
                truncated = true;
                break;
            }
            page_bytes += value.len().min(MAX_LISTED_VALUE_BYTES);
            nodes.push(NodeView::listed(&r, value));
            next = following(&instance, &s, &root, &r)?;
            last = Some(r);
        }
        let lines = nodes.iter().map(NodeView::line).collect();
        let next = if truncated { last.as_ref().map(format) } else { None };
        Ok(Json(ListView { reference: format(&root), lines, nodes, truncated, next }))
    })
    .await
}

/// The next node after `after` with a value that lies in `root`'s subtree.
fn following(
    instance: &Instance,
    s: &Session,
    root: &GlobalRef,
    after: &GlobalRef,
) -> crate::error::Result<Option<(GlobalRef, Vec<u8>)>> {
    let mut at = after.clone();
    while let Some(r) = instance.query(s, &at, Direction::Forward)? {
        if !r.subscripts.starts_with(&root.subscripts) {
            return Ok(None);
        }
        // A node killed since `query` found it is skipped.
        if let Some(v) = instance.get(s, &r)? {
            return Ok(Some((r, v)));
        }
        at = r;
    }
    Ok(None)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteRequest {
    #[serde(rename = "ref")]
    reference: String,
    value: String,
}

#[derive(Serialize)]
struct WriteView {
    #[serde(rename = "ref")]
    reference: String,
    /// The journal position of the change.
    position: u64,
    /// The change was synced to the journal file before this answer.
    durable: bool,
}

async fn write(
    State(instance): State<AppState>,
    Extension(rights): Extension<Arc<Rights>>,
    Path(namespace): Path<String>,
    ApiJson(req): ApiJson<WriteRequest>,
) -> ApiResult<Json<WriteView>> {
    let r = parse(&req.reference)?;
    let reference = format(&r);
    let i = instance.clone();
    let ack = blocking(move || {
        let mut s = session(&i, rights, &namespace)?;
        i.set(&mut s, &r, req.value.as_bytes())
    })
    .await?;
    acknowledge(&instance, reference, ack).await
}

async fn kill(
    State(instance): State<AppState>,
    Extension(rights): Extension<Arc<Rights>>,
    Path(namespace): Path<String>,
    ApiQuery(q): ApiQuery<RefQuery>,
) -> ApiResult<Json<WriteView>> {
    let r = parse(&q.reference)?;
    let reference = format(&r);
    let i = instance.clone();
    let ack = blocking(move || {
        let mut s = session(&i, rights, &namespace)?;
        i.kill(&mut s, &r)
    })
    .await?;
    acknowledge(&instance, reference, ack).await
}

/// Waits for the write's journal (local fsync, or the mirror's commit rule) when the
/// write asks for it, then answers.
async fn acknowledge(instance: &Arc<Instance>, reference: String, ack: WriteAck) -> ApiResult<Json<WriteView>> {
    instance.wait_for(ack).await?;
    Ok(Json(WriteView { reference, position: ack.position, durable: ack.wait }))
}

/// A fresh session on `namespace` with the instance's default durability,
/// carrying the request's rights (`auth.rs`), which every read and write checks.
fn session(instance: &Instance, rights: Arc<Rights>, namespace: &str) -> crate::error::Result<Session> {
    let mut s = instance.session();
    s.rights = rights;
    instance.use_namespace(&mut s, namespace)?;
    Ok(s)
}
