//! [`StateStore`] on one DynamoDB table (layout in the [module
//! docs](super)). Every write is conditional: the record on its version, the
//! lease on its absence, lapse or owner.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use aws_smithy_types::error::display::DisplayErrorContext;
use tidegate_policy::rollout::StageRecord;

use super::{
    HistoryEntry, Lease, StageKey, StateStore, StoreError, StoreFuture, Versioned,
    HISTORY_RETENTION_DAYS,
};

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// TTL attribute (epoch seconds).
pub const TTL: &str = "expires_at";
const RECORD_SK: &str = "record";
const LEASE_SK: &str = "lease";
const HISTORY_PREFIX: &str = "history#";
const SIGNAL_PREFIX: &str = "edge#";
const SIGNAL_SK: &str = "signal";

fn signal_key(id: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), s(format!("{SIGNAL_PREFIX}{id}"))),
        (SK.to_owned(), s(SIGNAL_SK)),
    ])
}

/// The store on table `table`.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn string<'i>(item: &'i Item, name: &str) -> Option<&'i str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

fn conditional_failed<E>(e: &SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

impl DynamoStore {
    /// The store on `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn call_error<E: std::error::Error>(
        &self,
        call: &'static str,
    ) -> impl Fn(E) -> StoreError + '_ {
        move |e| StoreError::Call {
            call,
            table: self.table.clone(),
            message: DisplayErrorContext(&e).to_string(),
        }
    }

    fn key(key: &StageKey, sk: impl Into<String>) -> Item {
        HashMap::from([(PK.to_owned(), s(key.partition())), (SK.to_owned(), s(sk))])
    }

    /// The client, for tests and tools that manage the table itself
    /// (`infra/template.yaml` creates it in production).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl StateStore for DynamoStore {
    fn load<'a>(&'a self, key: &'a StageKey) -> StoreFuture<'a, Versioned> {
        Box::pin(async move {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(key, RECORD_SK)))
                .consistent_read(true)
                .send()
                .await
                .map_err(self.call_error("GetItem"))?;
            let Some(item) = out.item() else {
                return Ok(Versioned::default());
            };
            let corrupt = |detail: String| StoreError::Corrupt {
                key: key.to_string(),
                what: "record",
                detail,
            };
            let version = number(item, "version").ok_or_else(|| corrupt("no version".into()))?;
            let text = string(item, "record").ok_or_else(|| corrupt("no record".into()))?;
            let record: StageRecord =
                serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
            Ok(Versioned {
                record,
                version: Some(version),
            })
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a StageKey,
        record: &'a StageRecord,
        expected: Option<u64>,
        now_ms: u64,
    ) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let text = serde_json::to_string(record).map_err(|e| StoreError::Corrupt {
                key: key.to_string(),
                what: "record",
                detail: e.to_string(),
            })?;
            let version = expected.map_or(1, |v| v + 1);
            let mut item = Self::key(key, RECORD_SK);
            item.insert("record".into(), s(text));
            item.insert("version".into(), n(version));
            item.insert("updated_at_ms".into(), n(now_ms));
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item));
            let put = match expected {
                None => put
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK),
                Some(v) => put
                    .condition_expression("#version = :expected")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":expected", n(v)),
            };
            match put.send().await {
                Ok(_) => Ok(version),
                Err(e) if conditional_failed(&e) => Err(StoreError::VersionConflict {
                    key: key.to_string(),
                    expected,
                }),
                Err(e) => Err(self.call_error("PutItem")(e)),
            }
        })
    }

    fn acquire<'a>(
        &'a self,
        key: &'a StageKey,
        owner: &'a str,
        until_ms: u64,
        now_ms: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let mut item = Self::key(key, LEASE_SK);
            item.insert("owner".into(), s(owner));
            item.insert("until_ms".into(), n(until_ms));
            // DynamoDB deletes lapsed leases eventually; the condition, not
            // the TTL, decides.
            item.insert(TTL.into(), n(until_ms / 1000 + 3600));
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(
                    "attribute_not_exists(#pk) OR #until < :now OR #owner = :owner",
                )
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#until", "until_ms")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":owner", s(owner))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match out {
                Ok(_) => Ok(Lease {
                    key: key.clone(),
                    owner: owner.to_owned(),
                    until_ms,
                }),
                Err(e) if conditional_failed(&e) => {
                    // The holder comes back with the refusal (no second read).
                    let held = e.as_service_error().and_then(|s| match s {
                        PutItemError::ConditionalCheckFailedException(c) => c.item(),
                        _ => None,
                    });
                    Err(StoreError::LeaseHeld {
                        key: key.to_string(),
                        owner: held
                            .and_then(|i| string(i, "owner"))
                            .unwrap_or("?")
                            .to_owned(),
                        until_ms: held.and_then(|i| number(i, "until_ms")).unwrap_or(0),
                    })
                }
                Err(e) => Err(self.call_error("PutItem")(e)),
            }
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let out = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(&lease.key, LEASE_SK)))
                .condition_expression("#owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", s(&lease.owner))
                .send()
                .await;
            match out {
                Ok(_) => Ok(()),
                Err(e) if conditional_failed(&e) => Ok(()),
                Err(e) => Err(self.call_error("DeleteItem")(e)),
            }
        })
    }

    fn claim_signal<'a>(
        &'a self,
        id: &'a str,
        until_ms: u64,
        now_ms: u64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut item = signal_key(id);
            item.insert("until_ms".into(), n(until_ms));
            item.insert(TTL.into(), n(until_ms / 1000 + 60));
            // TTL deletion is lazy: the condition, not the TTL, decides.
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk) OR #until < :now")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#until", "until_ms")
                .expression_attribute_values(":now", n(now_ms))
                .send()
                .await;
            match out {
                Ok(_) => Ok(true),
                Err(e) if conditional_failed(&e) => Ok(false),
                Err(e) => Err(self.call_error("PutItem")(e)),
            }
        })
    }

    fn forget_signal<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(signal_key(id)))
                .send()
                .await
                .map(|_| ())
                .map_err(self.call_error("DeleteItem"))
        })
    }

    fn append<'a>(&'a self, key: &'a StageKey, entry: &'a HistoryEntry) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let text = serde_json::to_string(entry).map_err(|e| StoreError::Corrupt {
                key: key.to_string(),
                what: "history entry",
                detail: e.to_string(),
            })?;
            // Unique per entry even within one millisecond.
            let sk = format!(
                "{HISTORY_PREFIX}{:013}#{}",
                entry.at_ms,
                crate::invocation_id()
            );
            let mut item = Self::key(key, sk);
            item.insert("entry".into(), s(text));
            item.insert(
                TTL.into(),
                n(entry.at_ms / 1000 + HISTORY_RETENTION_DAYS * 86_400),
            );
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(self.call_error("PutItem"))?;
            Ok(())
        })
    }

    fn history<'a>(
        &'a self,
        key: &'a StageKey,
        limit: usize,
    ) -> StoreFuture<'a, Vec<HistoryEntry>> {
        Box::pin(async move {
            let page = i32::try_from(limit.clamp(1, 100)).unwrap_or(100);
            let mut items = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(key.partition()))
                .expression_attribute_values(":prefix", s(HISTORY_PREFIX))
                .scan_index_forward(false)
                .limit(page)
                .into_paginator()
                .items()
                .send();
            let mut out = Vec::new();
            while out.len() < limit {
                let Some(item) = items.next().await else {
                    break;
                };
                let item = item.map_err(self.call_error("Query"))?;
                let entry = string(&item, "entry")
                    .and_then(|t| serde_json::from_str::<HistoryEntry>(t).ok());
                match entry {
                    Some(e) => out.push(e),
                    // An entry of a newer version: skipped, not fatal.
                    None => tracing::warn!(stage = %key, "history entry unreadable; skipped"),
                }
            }
            Ok(out)
        })
    }
}
