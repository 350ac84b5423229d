//! The production backend: DynamoDB, one table per [`Table`], generic keys
//! `pk`/`sk`, one GSI `gsi1` (`gsi1pk`/`gsi1sk`), TTL on `expires_at`.
//! Conditions are condition expressions; transactions are
//! `TransactWriteItems`, whose cancellation reasons name the failed write.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, DeleteRequest,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, KeysAndAttributes,
    PointInTimeRecoverySpecification, Projection, ProjectionType, Put, PutRequest,
    ScalarAttributeType, SseSpecification, TimeToLiveSpecification, TransactWriteItem,
    WriteRequest,
};
use domain::StoreError;
use futures::{StreamExt, TryStreamExt};

use super::items::{
    Cond, Cursor, Item, ItemStore, Key, MAX_BATCH_ITEMS, Page, Query, SkRange, Table, TxError,
    Write, check_batch_get, check_transaction,
};

type Attrs = HashMap<String, AttributeValue>;

/// Batch writes one bulk load keeps in flight: enough to hide the round
/// trip, few enough that an on-demand table's burst absorbs them.
const BATCHES_IN_FLIGHT: usize = 8;

/// Requests sent by a client built with [`DynamoItems::connect_counted`].
#[derive(Debug, Clone, Default)]
pub struct RequestCount(Arc<AtomicU64>);

impl RequestCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Intercept for RequestCount {
    fn name(&self) -> &'static str {
        "RequestCount"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Clone)]
pub struct DynamoItems {
    client: Client,
    prefix: String,
}

/// DynamoDB's "slow down" answers.
fn is_throttled<R>(e: &SdkError<BatchWriteItemError, R>) -> bool {
    e.as_service_error().is_some_and(|s| {
        matches!(
            s,
            BatchWriteItemError::ProvisionedThroughputExceededException(_)
                | BatchWriteItemError::RequestLimitExceeded(_)
        ) || s.code() == Some("ThrottlingException")
    })
}

fn unavailable<E: std::error::Error + 'static>(e: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> Attrs {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn to_attrs(item: &Item) -> Attrs {
    let mut m = key(&item.pk, &item.sk);
    m.insert("v".into(), n(item.version));
    m.insert("body".into(), s(item.body.clone()));
    if let Some(t) = item.expires_at {
        m.insert("expires_at".into(), n(t));
    }
    if let Some((a, b)) = &item.gsi1 {
        m.insert("gsi1pk".into(), s(a.clone()));
        m.insert("gsi1sk".into(), s(b.clone()));
    }
    m
}

fn from_attrs(m: &Attrs) -> Result<Item, StoreError> {
    let get_s = |k: &str| match m.get(k) {
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        None => Ok(None),
        Some(_) => Err(StoreError::Corrupt(format!(
            "attribute {k} is not a string"
        ))),
    };
    let get_n = |k: &str| match m.get(k) {
        Some(AttributeValue::N(v)) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("attribute {k} is not an integer"))),
        None => Ok(None),
        Some(_) => Err(StoreError::Corrupt(format!(
            "attribute {k} is not a number"
        ))),
    };
    let req = |v: Option<String>, k: &str| {
        v.ok_or_else(|| StoreError::Corrupt(format!("attribute {k} missing")))
    };
    Ok(Item {
        pk: req(get_s("pk")?, "pk")?,
        sk: req(get_s("sk")?, "sk")?,
        version: get_n("v")?.unwrap_or(0),
        expires_at: get_n("expires_at")?,
        gsi1: get_s("gsi1pk")?.zip(get_s("gsi1sk")?),
        body: req(get_s("body")?, "body")?,
    })
}

/// The condition expression for `cond`, with its value placeholders.
fn condition(cond: Cond, now: i64) -> Option<(String, Attrs)> {
    let live = "(attribute_not_exists(expires_at) OR expires_at > :now)";
    let now_v = (":now".to_owned(), n(now));
    match cond {
        Cond::None => None,
        Cond::Absent => Some((
            "attribute_not_exists(pk) OR expires_at <= :now".into(),
            HashMap::from([now_v]),
        )),
        Cond::Present => Some((
            format!("attribute_exists(pk) AND {live}"),
            HashMap::from([now_v]),
        )),
        Cond::Version(v) => Some((
            format!("v = :v AND {live}"),
            HashMap::from([now_v, (":v".to_owned(), n(v))]),
        )),
    }
}

impl DynamoItems {
    /// `prefix` names the deployment: tables are `<prefix>-platform`, ….
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }

    /// A client from the standard AWS configuration chain (honours
    /// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_DYNAMODB`), or an explicit endpoint.
    pub async fn connect(prefix: &str, endpoint: Option<&str>) -> Self {
        Self::connect_counted(prefix, endpoint).await.0
    }

    /// Connects like [`DynamoItems::connect`], counting every HTTP request
    /// the client sends (retries included): what a round-trip budget is
    /// measured in.
    pub async fn connect_counted(prefix: &str, endpoint: Option<&str>) -> (Self, RequestCount) {
        let count = RequestCount::default();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(e) = endpoint {
            loader = loader.endpoint_url(e);
        }
        let conf = loader.load().await;
        let conf = aws_sdk_dynamodb::config::Builder::from(&conf)
            .interceptor(count.clone())
            .build();
        (Self::new(Client::from_conf(conf), prefix), count)
    }

    pub fn table_name(&self, t: Table) -> String {
        format!("{}-{}", self.prefix, t.suffix())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Every item of a table, expired ones included (a full scan: audits
    /// of what the table still holds, never a request path).
    pub async fn dump(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        let pages: Vec<_> = self
            .client
            .scan()
            .table_name(self.table_name(table))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(unavailable)?;
        pages
            .iter()
            .flat_map(|p| p.items())
            .map(from_attrs)
            .collect()
    }

    async fn create_table(&self, t: Table) -> Result<(), StoreError> {
        let name = self.table_name(t);
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(unavailable)
        };
        let ks = |n: &str, k: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(k)
                .build()
                .map_err(unavailable)
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name("gsi1")
            .key_schema(ks("gsi1pk", KeyType::Hash)?)
            .key_schema(ks("gsi1sk", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(unavailable)?;
        let created = self
            .client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("gsi1pk")?)
            .attribute_definitions(attr("gsi1sk")?)
            .key_schema(ks("pk", KeyType::Hash)?)
            .key_schema(ks("sk", KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .sse_specification(SseSpecification::builder().enabled(true).build())
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_in_use_exception()) =>
            {
                return Ok(());
            }
            Err(e) => return Err(unavailable(e)),
        }
        self.client
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .map_err(unavailable)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        self.client
            .update_continuous_backups()
            .table_name(&name)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(unavailable)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn to_transact_item(&self, w: Write, now: i64) -> Result<TransactWriteItem, StoreError> {
        let b = TransactWriteItem::builder();
        Ok(match w {
            Write::Put { table, item, cond } => {
                let mut p = Put::builder()
                    .table_name(self.table_name(table))
                    .set_item(Some(to_attrs(&item)));
                if let Some((expr, vals)) = condition(cond, now) {
                    p = p
                        .condition_expression(expr)
                        .set_expression_attribute_values(Some(vals));
                }
                b.put(p.build().map_err(unavailable)?).build()
            }
            Write::Delete {
                table,
                pk,
                sk,
                cond,
            } => {
                let mut d = Delete::builder()
                    .table_name(self.table_name(table))
                    .set_key(Some(key(&pk, &sk)));
                if let Some((expr, vals)) = condition(cond, now) {
                    d = d
                        .condition_expression(expr)
                        .set_expression_attribute_values(Some(vals));
                }
                b.delete(d.build().map_err(unavailable)?).build()
            }
            Write::Check {
                table,
                pk,
                sk,
                cond,
            } => {
                let (expr, vals) = condition(cond, now).unwrap_or_else(|| {
                    (
                        "attribute_exists(pk) OR attribute_not_exists(pk)".into(),
                        HashMap::new(),
                    )
                });
                let c = ConditionCheck::builder()
                    .table_name(self.table_name(table))
                    .set_key(Some(key(&pk, &sk)))
                    .condition_expression(expr)
                    .set_expression_attribute_values((!vals.is_empty()).then_some(vals))
                    .build()
                    .map_err(unavailable)?;
                b.condition_check(c).build()
            }
        })
    }

    /// Sends batches of ≤ 25, [`BATCHES_IN_FLIGHT`] at a time, re-sending
    /// what DynamoDB leaves unprocessed. One after another, a large roster
    /// would wait a network round trip per 25 members.
    async fn batch_write(
        &self,
        table: Table,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let name = self.table_name(table);
        let batches: Vec<Vec<WriteRequest>> = requests
            .chunks(MAX_BATCH_ITEMS)
            .map(<[_]>::to_vec)
            .collect();
        futures::stream::iter(batches)
            .map(|batch| self.write_batch(&name, batch))
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    /// One `BatchWriteItem`, re-sent with back-off until nothing is left
    /// unprocessed. A batch still throttled after the SDK's own retries is
    /// sent again the same way: a throttled table is busy, not broken.
    async fn write_batch(
        &self,
        name: &str,
        mut pending: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let sent = self
                .client
                .batch_write_item()
                .request_items(name, pending.clone())
                .send()
                .await;
            pending = match sent {
                Ok(out) => out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(name))
                    .unwrap_or_default(),
                Err(e) if is_throttled(&e) => pending,
                Err(e) => return Err(unavailable(e)),
            };
            if !pending.is_empty() {
                attempt += 1;
                if attempt > 8 {
                    return Err(StoreError::Unavailable(
                        "batch write kept being throttled".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ItemStore for DynamoItems {
    async fn create_tables(&self) -> Result<(), StoreError> {
        for t in Table::ALL {
            self.create_table(t).await?;
        }
        Ok(())
    }

    async fn get(
        &self,
        table: Table,
        pk: &str,
        sk: &str,
        now: i64,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table_name(table))
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        match out.item {
            Some(m) => {
                let item = from_attrs(&m)?;
                Ok(item.is_live(now).then_some(item))
            }
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[Key], now: i64) -> Result<Vec<Option<Item>>, StoreError> {
        check_batch_get(keys)?;
        let mut by_table: HashMap<String, Vec<Attrs>> = HashMap::new();
        for k in keys {
            by_table
                .entry(self.table_name(k.table))
                .or_default()
                .push(key(&k.pk, &k.sk));
        }
        let mut pending = HashMap::with_capacity(by_table.len());
        for (name, ks) in by_table {
            let ask = KeysAndAttributes::builder()
                .consistent_read(true)
                .set_keys(Some(ks))
                .build()
                .map_err(unavailable)?;
            pending.insert(name, ask);
        }
        let mut found: HashMap<(String, String, String), Item> = HashMap::new();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(unavailable)?;
            for (table, rows) in out.responses.unwrap_or_default() {
                for row in &rows {
                    let item = from_attrs(row)?;
                    found.insert((table.clone(), item.pk.clone(), item.sk.clone()), item);
                }
            }
            pending = out.unprocessed_keys.unwrap_or_default();
            if !pending.is_empty() {
                attempt += 1;
                if attempt > 8 {
                    return Err(StoreError::Unavailable(
                        "batch read kept being throttled".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
            }
        }
        Ok(keys
            .iter()
            .map(|k| {
                found
                    .remove(&(self.table_name(k.table), k.pk.clone(), k.sk.clone()))
                    .filter(|i| i.is_live(now))
            })
            .collect())
    }

    async fn query(&self, q: &Query, now: i64) -> Result<Page, StoreError> {
        let (pk_attr, sk_attr) = if q.on_gsi1 {
            ("gsi1pk", "gsi1sk")
        } else {
            ("pk", "sk")
        };
        let mut names = HashMap::from([("#pk".to_owned(), pk_attr.to_owned())]);
        let mut values: Attrs = HashMap::from([
            (":pk".to_owned(), s(q.pk.clone())),
            (":now".to_owned(), n(now)),
        ]);
        let mut kce = "#pk = :pk".to_owned();
        match &q.sk {
            SkRange::All => {}
            SkRange::Prefix(p) => {
                names.insert("#sk".into(), sk_attr.into());
                values.insert(":p".into(), s(p.clone()));
                kce.push_str(" AND begins_with(#sk, :p)");
            }
            SkRange::Between(a, b) => {
                names.insert("#sk".into(), sk_attr.into());
                values.insert(":a".into(), s(a.clone()));
                values.insert(":b".into(), s(b.clone()));
                kce.push_str(" AND #sk BETWEEN :a AND :b");
            }
        }
        let mut start: Option<Attrs> = q.after.as_ref().map(|c| {
            let mut k = key(&c.pk, &c.sk);
            if q.on_gsi1
                && let Some((a, b)) = &c.gsi1
            {
                k.insert("gsi1pk".into(), s(a.clone()));
                k.insert("gsi1sk".into(), s(b.clone()));
            }
            k
        });
        let want = q.limit.map(|l| l.max(1));
        let mut items = Vec::new();
        loop {
            let mut req = self
                .client
                .query()
                .table_name(self.table_name(q.table))
                .key_condition_expression(&kce)
                .filter_expression("attribute_not_exists(expires_at) OR expires_at > :now")
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!q.descending)
                .set_exclusive_start_key(start.take());
            if q.on_gsi1 {
                req = req.index_name("gsi1");
            } else {
                req = req.consistent_read(true);
            }
            if let Some(w) = want {
                req = req.limit(((w - items.len()) as i32).max(1));
            }
            let out = req.send().await.map_err(unavailable)?;
            for m in out.items() {
                items.push(from_attrs(m)?);
            }
            start = out.last_evaluated_key;
            let full = want.is_some_and(|w| items.len() >= w);
            if start.is_none() || full {
                break;
            }
        }
        let next = match want {
            Some(w) if items.len() >= w => items.last().map(Cursor::of),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn transact(&self, writes: Vec<Write>, now: i64) -> Result<(), TxError> {
        check_transaction(&writes)?;
        let items = writes
            .into_iter()
            .map(|w| self.to_transact_item(w, now))
            .collect::<Result<Vec<_>, _>>()?;
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) => match se.err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let reasons = c.cancellation_reasons();
                    if let Some(i) = reasons
                        .iter()
                        .position(|r| r.code() == Some("ConditionalCheckFailed"))
                    {
                        Err(TxError::Condition(i))
                    } else if reasons
                        .iter()
                        .any(|r| r.code() == Some("TransactionConflict"))
                    {
                        Err(TxError::Contention)
                    } else {
                        Err(TxError::Store(StoreError::Unavailable(format!(
                            "transaction cancelled: {:?}",
                            reasons.iter().filter_map(|r| r.code()).collect::<Vec<_>>()
                        ))))
                    }
                }
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    Err(TxError::Contention)
                }
                other => Err(TxError::Store(StoreError::Unavailable(
                    DisplayErrorContext(other).to_string(),
                ))),
            },
            Err(e) => Err(TxError::Store(unavailable(e))),
        }
    }

    async fn batch_put(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError> {
        let reqs = items
            .iter()
            .map(|i| {
                PutRequest::builder()
                    .set_item(Some(to_attrs(i)))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(unavailable)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(table, reqs).await
    }

    async fn batch_delete(
        &self,
        table: Table,
        keys: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        let reqs = keys
            .iter()
            .map(|(pk, sk)| {
                DeleteRequest::builder()
                    .set_key(Some(key(pk, sk)))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(unavailable)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(table, reqs).await
    }
}
