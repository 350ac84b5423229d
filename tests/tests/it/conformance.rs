//! One conformance suite for the storage contract, run on both backends:
//! the same test functions against SQLite and DynamoDB (moto).

use std::sync::Arc;

use chrono::Duration;
use domain::idempotency::{
    Begin, IdempotencyError, IdempotencyKey, IdempotencyPolicy, IdempotencyScope, StoredResponse,
};
use domain::ports::{IdempotencyStore, PartnerStore, PropertyStore};
use domain::{Currency, Partner, PartnerId, Property, PropertyId, Scope, StoreError};
use platform::store::items::{Cond, Item, Key, Query, Table, TxError, Write};
use tests::{Backend, both_stores, fresh_store};

fn property(id: &str) -> Property {
    Property::new(
        PropertyId::parse(id).unwrap(),
        "Castle Winery",
        "Europe/Vienna".parse().unwrap(),
        Currency::parse("EUR").unwrap(),
    )
    .unwrap()
}

async fn properties_round_trip(b: Backend) {
    let t = fresh_store(b).await;
    let p = property("castle");
    t.store.add_property(&p).await.unwrap();
    assert_eq!(t.store.add_property(&p).await, Err(StoreError::Conflict));
    assert_eq!(t.store.property(&p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(
        t.store
            .property(&PropertyId::parse("nope").unwrap())
            .await
            .unwrap(),
        None
    );
    let mut changed = p.clone();
    changed
        .accepts_vouchers_of
        .push(PropertyId::parse("other").unwrap());
    t.store.save_property(&changed).await.unwrap();
    assert_eq!(t.store.property(&p.id).await.unwrap(), Some(changed));
    assert_eq!(
        t.store.save_property(&property("ghost")).await,
        Err(StoreError::Conflict)
    );
    t.store.add_property(&property("abbey")).await.unwrap();
    let ids: Vec<_> = t
        .store
        .properties()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["abbey", "castle"]);
}

async fn partners_found_by_key_id(b: Backend) {
    let t = fresh_store(b).await;
    let partner = Partner {
        id: PartnerId("p1".into()),
        name: "ASA".into(),
        scopes: [Scope::VouchersRead].into(),
        properties: [PropertyId::parse("castle").unwrap()].into(),
        key_id: "00112233aabbccdd".into(),
        key_hash: "ab".repeat(32),
        disabled: false,
        test: false,
    };
    t.store.add_partner(&partner).await.unwrap();
    assert_eq!(
        t.store.add_partner(&partner).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        t.store.partner_by_key_id("00112233aabbccdd").await.unwrap(),
        Some(partner.clone())
    );
    assert_eq!(
        t.store.partner_by_key_id("ffffffffffffffff").await.unwrap(),
        None
    );
    assert_eq!(t.store.partners().await.unwrap(), vec![partner]);
}

fn scope(key: &str) -> IdempotencyScope {
    IdempotencyScope {
        partner: "p1".into(),
        property: "castle".into(),
        operation: "vouchers".into(),
        key: IdempotencyKey::parse(key).unwrap(),
    }
}

const POLICY: IdempotencyPolicy = IdempotencyPolicy {
    lock_seconds: 30,
    retain_seconds: 86_400,
};

async fn idempotency_cases(b: Backend) {
    let t = fresh_store(b).await;
    let s = t.store.clone();
    let Begin::Acquired(lease) = s.begin(&scope("k1"), "fp-a", POLICY).await.unwrap() else {
        panic!("new key must be acquired")
    };
    // In flight: same request → 409, another request → 422.
    assert!(matches!(
        s.begin(&scope("k1"), "fp-a", POLICY).await,
        Err(IdempotencyError::InFlight)
    ));
    assert!(matches!(
        s.begin(&scope("k1"), "fp-b", POLICY).await,
        Err(IdempotencyError::Reused)
    ));
    let resp = StoredResponse {
        status: 201,
        body: r#"{"b":1,"a":"é"}"#.into(),
    };
    s.complete(&lease, &resp, POLICY).await.unwrap();
    // Done: same request → byte-identical replay; another → 422.
    match s.begin(&scope("k1"), "fp-a", POLICY).await.unwrap() {
        Begin::Replay(r) => assert_eq!(r, resp),
        Begin::Acquired(_) => panic!("a completed key must replay"),
    }
    assert!(matches!(
        s.begin(&scope("k1"), "fp-b", POLICY).await,
        Err(IdempotencyError::Reused)
    ));
    // Keys are scoped: the same key for another property is independent.
    let mut other = scope("k1");
    other.property = "abbey".into();
    assert!(matches!(
        s.begin(&other, "fp-b", POLICY).await.unwrap(),
        Begin::Acquired(_)
    ));
    // Records expire after their retention.
    t.clock
        .advance(Duration::seconds(POLICY.retain_seconds + 1));
    assert!(matches!(
        s.begin(&scope("k1"), "fp-b", POLICY).await.unwrap(),
        Begin::Acquired(_)
    ));
}

async fn idempotency_lock_expiry_and_takeover(b: Backend) {
    let t = fresh_store(b).await;
    let s = t.store.clone();
    // A handler that dies mid-request leaves an in-flight record…
    let Begin::Acquired(crashed) = s.begin(&scope("k2"), "fp", POLICY).await.unwrap() else {
        panic!()
    };
    // …a retry before the lock expires gets 409…
    t.clock.advance(Duration::seconds(POLICY.lock_seconds - 1));
    assert!(matches!(
        s.begin(&scope("k2"), "fp", POLICY).await,
        Err(IdempotencyError::InFlight)
    ));
    // …and after it, takes the key over.
    t.clock.advance(Duration::seconds(2));
    let Begin::Acquired(retry) = s.begin(&scope("k2"), "fp", POLICY).await.unwrap() else {
        panic!("expired lock must be taken over")
    };
    assert_ne!(crashed.version, retry.version);
    // The crashed attempt, if it wakes up, cannot overwrite the retry.
    let late = StoredResponse {
        status: 500,
        body: "late".into(),
    };
    assert!(matches!(
        s.complete(&crashed, &late, POLICY).await,
        Err(IdempotencyError::LockLost)
    ));
    let good = StoredResponse {
        status: 201,
        body: "{}".into(),
    };
    s.complete(&retry, &good, POLICY).await.unwrap();
    assert!(
        matches!(s.begin(&scope("k2"), "fp", POLICY).await.unwrap(), Begin::Replay(r) if r == good)
    );
}

async fn idempotency_release_allows_retry(b: Backend) {
    let t = fresh_store(b).await;
    let s = t.store.clone();
    let Begin::Acquired(lease) = s.begin(&scope("k3"), "fp", POLICY).await.unwrap() else {
        panic!()
    };
    s.release(&lease).await.unwrap();
    assert!(matches!(
        s.begin(&scope("k3"), "fp", POLICY).await.unwrap(),
        Begin::Acquired(_)
    ));
}

async fn concurrent_idempotency_begin_has_one_winner(b: Backend) {
    let t = fresh_store(b).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = t.store.clone();
            tokio::spawn(async move { s.begin(&scope("race"), "fp", POLICY).await })
        })
        .collect();
    let mut acquired = 0;
    let mut in_flight = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Begin::Acquired(_)) => acquired += 1,
            Err(IdempotencyError::InFlight) => in_flight += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((acquired, in_flight), (1, 49));
}

async fn fifty_racing_conditional_writes_one_wins(b: Backend) {
    let t = fresh_store(b).await;
    let race = |cond: Cond, body: &'static str| {
        let items = t.items.clone();
        let now = t.store.now_ts();
        tokio::spawn(async move {
            let item = Item::new("RACE", "X", body.into()).with_version(2);
            items
                .transact(vec![Write::put(Table::Vouchers, item, cond)], now)
                .await
        })
    };
    // Creation race.
    let tasks: Vec<_> = (0..50).map(|_| race(Cond::Absent, "first")).collect();
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| *r == Err(TxError::Condition(0)))
    );
    // Optimistic update race on version 2.
    let tasks: Vec<_> = (0..50).map(|_| race(Cond::Version(2), "second")).collect();
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // Every winner wrote version 2 again, so each later racer may also see
    // version 2: the check is that losers get the typed conflict, nothing else.
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || *r == Err(TxError::Condition(0))),
        "{results:?}"
    );
    let bumped = |v: i64| {
        let items = t.items.clone();
        let now = t.store.now_ts();
        tokio::spawn(async move {
            let item = Item::new("RACE", "Y", "x".into()).with_version(v + 1);
            items
                .transact(
                    vec![Write::put(
                        Table::Vouchers,
                        item,
                        if v == 0 {
                            Cond::Absent
                        } else {
                            Cond::Version(v)
                        },
                    )],
                    now,
                )
                .await
        })
    };
    bumped(0).await.unwrap().unwrap();
    let tasks: Vec<_> = (0..50).map(|_| bumped(1)).collect();
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "exactly one update of version 1 wins"
    );
    let now = t.store.now_ts();
    assert_eq!(
        t.items
            .get(Table::Vouchers, "RACE", "Y", now)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
}

async fn transactions_are_all_or_nothing(b: Backend) {
    let t = fresh_store(b).await;
    let now = t.store.now_ts();
    let items = &t.items;
    items
        .transact(
            vec![Write::put(
                Table::Vouchers,
                Item::new("A", "1", "a".into()),
                Cond::Absent,
            )],
            now,
        )
        .await
        .unwrap();
    let r = items
        .transact(
            vec![
                Write::put(
                    Table::Vouchers,
                    Item::new("B", "1", "b".into()),
                    Cond::Absent,
                ),
                Write::put(
                    Table::Platform,
                    Item::new("A", "1", "dup".into()),
                    Cond::Present,
                ),
            ],
            now,
        )
        .await;
    assert_eq!(r, Err(TxError::Condition(1)));
    assert!(
        items
            .get(Table::Vouchers, "B", "1", now)
            .await
            .unwrap()
            .is_none(),
        "first write must be rolled back"
    );
    // Check-only writes and deletes take part in the condition.
    let r = items
        .transact(
            vec![
                Write::Check {
                    table: Table::Vouchers,
                    pk: "A".into(),
                    sk: "1".into(),
                    cond: Cond::Version(1),
                },
                Write::Delete {
                    table: Table::Vouchers,
                    pk: "B".into(),
                    sk: "1".into(),
                    cond: Cond::None,
                },
            ],
            now,
        )
        .await;
    assert_eq!(r, Ok(()));
    let r = items
        .transact(
            vec![
                Write::Check {
                    table: Table::Vouchers,
                    pk: "A".into(),
                    sk: "1".into(),
                    cond: Cond::Version(7),
                },
                Write::put(Table::Vouchers, Item::new("B", "1", "b".into()), Cond::None),
            ],
            now,
        )
        .await;
    assert_eq!(r, Err(TxError::Condition(0)));
    assert!(
        items
            .get(Table::Vouchers, "B", "1", now)
            .await
            .unwrap()
            .is_none()
    );
    let r = items
        .transact(
            vec![Write::Delete {
                table: Table::Vouchers,
                pk: "A".into(),
                sk: "1".into(),
                cond: Cond::Version(1),
            }],
            now,
        )
        .await;
    assert_eq!(r, Ok(()));
    assert!(
        items
            .get(Table::Vouchers, "A", "1", now)
            .await
            .unwrap()
            .is_none()
    );
    // Two writes to one key are refused by both backends.
    let same = Item::new("C", "1", "c".into());
    let r = items
        .transact(
            vec![
                Write::put(Table::Vouchers, same.clone(), Cond::None),
                Write::put(Table::Vouchers, same, Cond::None),
            ],
            now,
        )
        .await;
    assert!(matches!(r, Err(TxError::Store(StoreError::Corrupt(_)))));
}

async fn queries_page_filter_and_order(b: Backend) {
    let t = fresh_store(b).await;
    let now = t.store.now_ts();
    let items: Vec<Item> = (0..60)
        .map(|i| {
            let it = Item::new("P", format!("LEDGER#{i:03}"), format!("{{\"i\":{i}}}"))
                .with_gsi1("BYDAY", format!("2026-01-{:02}", 1 + i % 28));
            if i % 10 == 9 {
                it.with_expiry(now - 1)
            } else {
                it
            }
        })
        .collect();
    t.items.batch_put(Table::Vouchers, items).await.unwrap();
    t.items
        .batch_put(Table::Vouchers, vec![Item::new("P", "OTHER", "{}".into())])
        .await
        .unwrap();
    // Prefix + paging: 54 live ledger items in pages of 20.
    let mut seen = Vec::new();
    let mut q = Query::partition(Table::Vouchers, "P")
        .prefix("LEDGER#")
        .limit(20);
    loop {
        let page = t.items.query(&q, now).await.unwrap();
        seen.extend(page.items.iter().map(|i| i.sk.clone()));
        match page.next {
            Some(c) => q = q.after(Some(c)),
            None => break,
        }
    }
    assert_eq!(seen.len(), 54, "expired items are invisible");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    // Descending and between.
    let page = t
        .items
        .query(
            &Query::partition(Table::Vouchers, "P")
                .between("LEDGER#010", "LEDGER#015")
                .descending(),
            now,
        )
        .await
        .unwrap();
    let sks: Vec<_> = page.items.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(
        sks,
        [
            "LEDGER#015",
            "LEDGER#014",
            "LEDGER#013",
            "LEDGER#012",
            "LEDGER#011",
            "LEDGER#010"
        ]
    );
    // Secondary index, paged.
    let mut n = 0;
    let mut q = Query::gsi1(Table::Vouchers, "BYDAY")
        .between("2026-01-01", "2026-01-05")
        .limit(4);
    loop {
        let page = t.items.query(&q, now).await.unwrap();
        n += page.items.len();
        match page.next {
            Some(c) => q = q.after(Some(c)),
            None => break,
        }
    }
    let expected = (0..60).filter(|i| i % 10 != 9 && (1 + i % 28) <= 5).count();
    assert_eq!(n, expected);
    // Batch delete beyond one batch of 25.
    let keys: Vec<_> = (0..60)
        .map(|i| ("P".to_owned(), format!("LEDGER#{i:03}")))
        .collect();
    t.items.batch_delete(Table::Vouchers, keys).await.unwrap();
    let left = t
        .items
        .query(&Query::partition(Table::Vouchers, "P"), now)
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
}

async fn expired_items_count_as_absent(b: Backend) {
    let t = fresh_store(b).await;
    let now = t.store.now_ts();
    let item = Item::new("E", "1", "old".into()).with_expiry(now + 10);
    t.items
        .transact(vec![Write::put(Table::Platform, item, Cond::Absent)], now)
        .await
        .unwrap();
    let again = Item::new("E", "1", "new".into());
    assert_eq!(
        t.items
            .transact(
                vec![Write::put(Table::Platform, again.clone(), Cond::Absent)],
                now
            )
            .await,
        Err(TxError::Condition(0))
    );
    let later = now + 11;
    assert!(
        t.items
            .get(Table::Platform, "E", "1", later)
            .await
            .unwrap()
            .is_none()
    );
    t.items
        .transact(
            vec![Write::put(Table::Platform, again, Cond::Absent)],
            later,
        )
        .await
        .unwrap();
    assert_eq!(
        t.items
            .get(Table::Platform, "E", "1", later)
            .await
            .unwrap()
            .unwrap()
            .body,
        "new"
    );
}

async fn faults_fail_before_or_after_commit(b: Backend) {
    use platform::store::faults::{FaultPlan, FaultyItems};
    let t = fresh_store(b).await;
    let now = t.store.now_ts();
    let faulty = Arc::new(FaultyItems::new(
        t.items.clone(),
        FaultPlan {
            fail_writes_from: Some(1),
            ..Default::default()
        },
    ));
    let put = |k: &str| {
        vec![Write::put(
            Table::Platform,
            Item::new("F", k, "x".into()),
            Cond::Absent,
        )]
    };
    use platform::store::ItemStore;
    assert!(faulty.transact(put("1"), now).await.is_err());
    assert!(
        t.items
            .get(Table::Platform, "F", "1", now)
            .await
            .unwrap()
            .is_none(),
        "fail-before has no effect"
    );
    faulty.set_plan(FaultPlan {
        fail_after_permille: 1000,
        ..Default::default()
    });
    assert!(faulty.transact(put("2"), now).await.is_err());
    assert!(
        t.items
            .get(Table::Platform, "F", "2", now)
            .await
            .unwrap()
            .is_some(),
        "fail-after took effect"
    );
    assert_eq!(faulty.injected(), 2);
}

async fn batch_reads_answer_in_order(b: Backend) {
    let t = fresh_store(b).await;
    let now = t.store.now_ts();
    let writes = vec![
        Write::put(
            Table::Platform,
            Item::new("B", "1", "one".into()),
            Cond::Absent,
        ),
        Write::put(
            Table::Vouchers,
            Item::new("B", "1", "other table".into()),
            Cond::Absent,
        ),
        Write::put(
            Table::Platform,
            Item::new("B", "old", "gone".into()).with_expiry(now + 5),
            Cond::Absent,
        ),
    ];
    t.items.transact(writes, now).await.unwrap();
    let keys = [
        Key::new(Table::Vouchers, "B", "1"),
        Key::new(Table::Platform, "B", "missing"),
        Key::new(Table::Platform, "B", "old"),
        Key::new(Table::Platform, "B", "1"),
    ];
    let got = t.items.get_many(&keys, now + 6).await.unwrap();
    let bodies: Vec<Option<&str>> = got
        .iter()
        .map(|i| i.as_ref().map(|i| i.body.as_str()))
        .collect();
    assert_eq!(bodies, [Some("other table"), None, None, Some("one")]);
    let before_expiry = t.items.get_many(&keys[2..3], now).await.unwrap();
    assert_eq!(
        before_expiry[0].as_ref().map(|i| i.body.as_str()),
        Some("gone")
    );
    // What DynamoDB refuses, both refuse.
    assert!(t.items.get_many(&[], now).await.is_err());
    assert!(
        t.items
            .get_many(&[keys[0].clone(), keys[0].clone()], now)
            .await
            .is_err()
    );
    let too_many: Vec<Key> = (0..101)
        .map(|i| Key::new(Table::Platform, "B", i.to_string()))
        .collect();
    assert!(t.items.get_many(&too_many, now).await.is_err());
    let hundred = t.items.get_many(&too_many[..100], now).await.unwrap();
    assert_eq!(
        hundred.iter().filter(|i| i.is_some()).count(),
        1,
        "only B/1 exists"
    );
}

/// Erasure receipts: one open erasure per email hash, version-checked
/// saves, and a completed erasure stops being the open one.
async fn erasure_receipts(b: Backend) {
    use domain::erasure::{ErasedCounts, Erasure, ErasureStatus, ErasureStore, Step};
    let t = fresh_store(b).await;
    let p = PropertyId::parse("castle").unwrap();
    let hash = "ab".repeat(32);
    assert_eq!(t.store.open_erasure(&p, &hash).await.unwrap(), None);
    let e = Erasure::new("e1".into(), p.clone(), hash.clone(), chrono::Utc::now());
    let e = t.store.create_erasure(&e).await.unwrap();
    let again = Erasure::new("e2".into(), p.clone(), hash.clone(), chrono::Utc::now());
    assert_eq!(
        t.store.create_erasure(&again).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        t.store.open_erasure(&p, &hash).await.unwrap(),
        Some(e.clone())
    );
    let mut next = e.clone();
    next.finish(
        Step::Loyalty,
        &ErasedCounts {
            loyalty_records: 2,
            ..Default::default()
        },
    );
    let saved = t.store.save_erasure(&next).await.unwrap();
    // A save from the stale version loses.
    assert_eq!(t.store.save_erasure(&e).await, Err(StoreError::Conflict));
    let mut done = saved.clone();
    for s in Step::ALL {
        done.finish(s, &ErasedCounts::default());
    }
    done.complete(chrono::Utc::now());
    assert_eq!(done.status, ErasureStatus::Erased);
    let done = t.store.save_erasure(&done).await.unwrap();
    assert_eq!(t.store.open_erasure(&p, &hash).await.unwrap(), None);
    let read = t.store.erasure(&p, "e1").await.unwrap().unwrap();
    assert_eq!(read, done);
    assert_eq!(read.erased.loyalty_records, 2);
    assert!(read.markers.is_empty());
    assert_eq!(t.store.erasure(&p, "nope").await.unwrap(), None);
    assert_eq!(
        t.store
            .erasure(&PropertyId::parse("lake").unwrap(), "e1")
            .await
            .unwrap(),
        None
    );
}

/// Job leases: one holder at a time, the refused one told who holds it
/// and until when; renewing moves the end; a lease that ran out can be
/// taken, and its old holder then neither renews nor releases it.
async fn job_leases(b: Backend) {
    use domain::ports::{Clock, JobLease, LeaseStore, LeaseTake, LeasedJob};
    let t = fresh_store(b).await;
    let p = PropertyId::parse("castle").unwrap();
    let at = t.clock.now();
    let lease = |holder: &str, by: &str, secs: i64| JobLease {
        holder: holder.into(),
        by: by.into(),
        until: t.clock.now() + Duration::seconds(secs),
    };
    let a = lease("a", "guesthub serve (pid 1)", 60);
    assert_eq!(
        t.store
            .take_lease(LeasedJob::CrmSync, &p, &a)
            .await
            .unwrap(),
        LeaseTake::Taken
    );
    let b1 = lease("b", "guesthub crm sync (pid 2)", 60);
    match t
        .store
        .take_lease(LeasedJob::CrmSync, &p, &b1)
        .await
        .unwrap()
    {
        LeaseTake::Busy(held) => {
            assert_eq!(held.by, "guesthub serve (pid 1)");
            assert_eq!(held.until.timestamp(), a.until.timestamp());
        }
        other => panic!("{other:?}"),
    }
    // Another job of the same property is independent.
    assert_eq!(
        t.store
            .take_lease(LeasedJob::LoyaltyExport, &p, &b1)
            .await
            .unwrap(),
        LeaseTake::Taken
    );
    let renewed = lease("a", "guesthub serve (pid 1)", 120);
    assert!(
        t.store
            .renew_lease(LeasedJob::CrmSync, &p, &renewed)
            .await
            .unwrap()
    );
    t.clock.set(at + Duration::seconds(90));
    assert!(matches!(
        t.store
            .take_lease(LeasedJob::CrmSync, &p, &lease("b", "x", 60))
            .await
            .unwrap(),
        LeaseTake::Busy(_)
    ));
    // Past its end: another run takes it; the old holder has lost it.
    t.clock.set(at + Duration::seconds(200));
    assert_eq!(
        t.store
            .take_lease(LeasedJob::CrmSync, &p, &lease("b", "x", 60))
            .await
            .unwrap(),
        LeaseTake::Taken
    );
    assert!(
        !t.store
            .renew_lease(LeasedJob::CrmSync, &p, &lease("a", "y", 60))
            .await
            .unwrap()
    );
    t.store
        .release_lease(LeasedJob::CrmSync, &p, "a")
        .await
        .unwrap();
    assert!(matches!(
        t.store
            .take_lease(LeasedJob::CrmSync, &p, &lease("c", "z", 60))
            .await
            .unwrap(),
        LeaseTake::Busy(_)
    ));
    // Its holder releases it: free at once.
    t.store
        .release_lease(LeasedJob::CrmSync, &p, "b")
        .await
        .unwrap();
    assert_eq!(
        t.store
            .take_lease(LeasedJob::CrmSync, &p, &lease("c", "z", 60))
            .await
            .unwrap(),
        LeaseTake::Taken
    );
}

both_stores! {
    erasure_receipts_one_open_per_person => erasure_receipts;
    leases => job_leases;
    properties => properties_round_trip;
    partners => partners_found_by_key_id;
    idempotency => idempotency_cases;
    idempotency_lock_expiry => idempotency_lock_expiry_and_takeover;
    idempotency_release => idempotency_release_allows_retry;
    idempotency_race => concurrent_idempotency_begin_has_one_winner;
    conditional_write_race => fifty_racing_conditional_writes_one_wins;
    transactions => transactions_are_all_or_nothing;
    queries => queries_page_filter_and_order;
    expiry => expired_items_count_as_absent;
    faults => faults_fail_before_or_after_commit;
    batch_reads => batch_reads_answer_in_order;
}
