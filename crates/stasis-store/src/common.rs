//! Rules both stores share, so that the fake and the database cannot drift apart: time
//! precision, page tokens, query validation, metadata matching and result order.

use crate::{ListQuery, SandboxRecord, StoreError, UsageRow};
use chrono::{DateTime, Utc};
use stasis_types::wire::Metadata;

/// Largest page a `list` may ask for.
pub(crate) const MAX_LIMIT: u32 = 1000;

/// Times are stored as Unix milliseconds: what is read back is truncated to the millisecond.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Database(format!("timestamp {ms} ms out of range")))
}

/// `t` as it will read back from the store.
pub(crate) fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    // Every `DateTime<Utc>` has a millisecond value that converts back: chrono's range is
    // far inside i64 milliseconds.
    DateTime::from_timestamp_millis(to_ms(t)).unwrap_or(t)
}

/// Sizes are unsigned in the record but BIGINT (signed) in the schema.
pub(crate) fn size_to_i64(field: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::BadQuery(format!("{field} {value} is too large to store")))
}

/// Checks a record can be stored as it is; both stores refuse the same records.
pub(crate) fn validate_record(record: &SandboxRecord) -> Result<(), StoreError> {
    size_to_i64("memory_mb", record.memory_mb)?;
    size_to_i64("disk_size_mb", record.disk_size_mb)?;
    Ok(())
}

/// The position after which a page starts: the (created_at, id) of the last item returned.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cursor {
    pub created_ms: i64,
    pub id: String,
}

impl Cursor {
    pub(crate) fn of(record: &SandboxRecord) -> Self {
        Cursor { created_ms: to_ms(record.created_at), id: record.id.clone() }
    }

    /// Hex of `"<created_ms>:<id>"`: opaque to clients, safe in a query string.
    pub(crate) fn encode(&self) -> String {
        hex::encode(format!("{}:{}", self.created_ms, self.id))
    }

    pub(crate) fn decode(token: &str) -> Result<Self, StoreError> {
        let bytes = hex::decode(token).map_err(|_| StoreError::BadToken)?;
        let text = String::from_utf8(bytes).map_err(|_| StoreError::BadToken)?;
        // The time has no ':', so the first one separates it from the id (which may have some).
        let (ms, id) = text.split_once(':').ok_or(StoreError::BadToken)?;
        let created_ms = ms.parse::<i64>().map_err(|_| StoreError::BadToken)?;
        if id.is_empty() {
            return Err(StoreError::BadToken);
        }
        Ok(Cursor { created_ms, id: id.to_owned() })
    }
}

/// A validated `ListQuery`: the page size and where the page starts.
pub(crate) struct PagePlan {
    pub limit: usize,
    pub after: Option<Cursor>,
}

pub(crate) fn plan(query: &ListQuery) -> Result<PagePlan, StoreError> {
    if !(1..=MAX_LIMIT).contains(&query.limit) {
        return Err(StoreError::BadQuery(format!("limit must be between 1 and {MAX_LIMIT}, got {}", query.limit)));
    }
    let after = query.next_token.as_deref().map(Cursor::decode).transpose()?;
    Ok(PagePlan { limit: query.limit as usize, after })
}

/// Every pair of `wanted` is in `metadata`.
pub(crate) fn metadata_matches(metadata: &Metadata, wanted: &Metadata) -> bool {
    wanted.iter().all(|(k, v)| metadata.get(k) == Some(v))
}

/// `query`'s filters other than the page position.
pub(crate) fn matches(record: &SandboxRecord, query: &ListQuery) -> bool {
    query.owner.as_ref().is_none_or(|o| *o == record.owner)
        && (query.states.is_empty() || query.states.contains(&record.state))
        && metadata_matches(&record.metadata, &query.metadata)
}

/// Order of `list` and `all`, and of `retention_due`.
pub(crate) fn created_order(a: &SandboxRecord, b: &SandboxRecord) -> std::cmp::Ordering {
    (to_ms(a.created_at), &a.id).cmp(&(to_ms(b.created_at), &b.id))
}

/// Order of `expired`: the longest overdue first.
pub(crate) fn end_order(a: &SandboxRecord, b: &SandboxRecord) -> std::cmp::Ordering {
    (to_ms(a.end_at), &a.id).cmp(&(to_ms(b.end_at), &b.id))
}

/// Order of `usage`: by creation, then id, live before deleted, then by deletion time.
pub(crate) fn sort_usage(rows: &mut [UsageRow]) {
    rows.sort_by(|a, b| {
        let key = |r: &UsageRow| (to_ms(r.created_at), r.sandbox_id.clone(), r.deleted_at.map(to_ms));
        key(a).cmp(&key(b))
    });
}

/// Builds the page from up to `limit + 1` matching records in order: the extra one only
/// tells that another page exists.
pub(crate) fn finish_page(mut items: Vec<SandboxRecord>, limit: usize) -> crate::Page {
    let next_token = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|r| Cursor::of(r).encode())
    } else {
        None
    };
    crate::Page { items, next_token }
}

pub(crate) fn usage_of(record: &SandboxRecord) -> UsageRow {
    UsageRow {
        sandbox_id: record.id.clone(),
        owner: record.owner.clone(),
        state: Some(record.state),
        running_ms: record.running_ms,
        paused_ms: record.paused_ms,
        cpu_count: record.cpu_count,
        memory_mb: record.memory_mb,
        created_at: record.created_at,
        deleted_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip_and_rejects() {
        let c = Cursor { created_ms: -5, id: "a:b:c".into() };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "zz", "abc", &hex::encode("12"), &hex::encode("x:id"), &hex::encode("12:"), &hex::encode([0xff, 0x3a, 0x61])] {
            assert!(matches!(Cursor::decode(bad), Err(StoreError::BadToken)), "{bad:?}");
        }
    }
}
