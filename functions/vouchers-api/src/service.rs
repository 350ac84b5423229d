//! What each route does, between the HTTP layer and the store: find the
//! voucher the caller may see, run the domain rule through the store, and
//! render the answer (committed with the change when a key was sent).

use std::collections::{BTreeMap, HashSet};

use domain::idempotency::Lease;
use domain::ports::PropertyStore;
use domain::voucher::pickup::{self, ArticleMapping, MAX_PAGE};
use domain::voucher::ports::{Changed, Committed, Find, Lookup, Receipt, Rule, VoucherStore};
use domain::voucher::rules::{
    self, CaptureRequest, HoldRequest, ImportLine, IssueRequest, LoadRequest, RedeemRequest,
    ReverseRequest,
};
use domain::voucher::settlement::{self, SettlementLine};
use domain::voucher::{Actor, Change, Redemption, Voucher, VoucherCode, VoucherError};
use domain::{Currency, Money, PropertyId};
use http::StatusCode;
use platform::Store;
use platform::http::{ApiError, Caller, Outcome};

use crate::AppState;
use crate::views::{
    ActivitiesView, CaptureView, FoundVoucherView, FoundVouchersView, HoldView, ImportLineResult,
    ImportView, IssuedView, LineError, LoadView, OrderView, OrdersView, RedemptionView,
    ReleaseView, ReversalView, SettlementView, VoucherView, WriteOffLine, WriteOffRequest,
    WriteOffSkipped, WriteOffView, to_json,
};

/// Most lines one import takes.
pub const MAX_IMPORT_LINES: usize = 500;

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The canonical form of a code in a route, for idempotency fingerprints.
pub fn code_key(raw: &str) -> String {
    VoucherCode::lookup(raw).map_or_else(|_| raw.to_owned(), |c| c.key().to_owned())
}

fn not_found(raw: &str) -> VoucherError {
    VoucherError::NotFound {
        mistyped: VoucherCode::looks_mistyped(raw),
    }
}

/// Which issuers' vouchers the caller may know of: issued or accepted at
/// the caller's property, or issued by another property of the same
/// partner. Everything else is "not found".
fn visibility(caller: &Caller) -> impl Fn(&PropertyId) -> bool + Send + Sync + '_ {
    |issuer| rules::visible_to(issuer, &caller.property, &caller.partner)
}

/// The code as typed, or "not found" (with a typo hint) when it cannot be one.
fn parse_code(raw: &str) -> Result<VoucherCode, VoucherError> {
    VoucherCode::lookup(raw).map_err(|_| not_found(raw))
}

/// How the caller finds `code` (and the redemption a reversal names).
fn find<'a>(
    caller: &'a Caller,
    code: &'a VoucherCode,
    may_see: &'a (dyn Fn(&PropertyId) -> bool + Send + Sync),
    redemption: Option<&'a str>,
) -> Find<'a> {
    Find {
        code,
        at: &caller.property,
        partner: &caller.partner.id,
        may_see,
        redemption,
        issuer: None,
        book_in: false,
    }
}

fn actor<'a>(caller: &'a Caller, now: chrono::DateTime<chrono::Utc>) -> Actor<'a> {
    Actor {
        partner: &caller.partner.id,
        property: &caller.property,
        now,
    }
}

/// The answer of a committed (or replayed) change.
fn answer<T>(
    committed: Committed<T>,
    status: StatusCode,
    render: &(dyn Fn(&T) -> String + Send + Sync),
    stored: bool,
) -> Outcome {
    match committed {
        Committed::Applied(t) => Outcome {
            status,
            body: render(&t),
            already_stored: stored,
            replayed: false,
        },
        Committed::Replayed(r) => Outcome {
            status: StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
            body: r.body,
            already_stored: true,
            replayed: true,
        },
    }
}

/// Runs `rule` on the voucher `find` names through the store, committing
/// `render`'s answer with it when there is a lease.
async fn apply(
    app: &AppState,
    find: &Find<'_>,
    rule: &Rule<'_>,
    status: StatusCode,
    render: &(dyn Fn(&Changed) -> String + Send + Sync),
    lease: Option<&Lease>,
) -> Result<Outcome, ApiError> {
    let receipt = lease.map(|lease| Receipt {
        lease,
        status: status.as_u16(),
        render,
    });
    let _turn = app.gates.enter(find.code.key()).await;
    let done = app.store.change(find, rule, receipt).await?;
    Ok(answer(done, status, render, lease.is_some()))
}

pub async fn issue(
    store: &Store,
    caller: &Caller,
    mut req: IssueRequest,
    lease: Option<Lease>,
) -> Result<Outcome, ApiError> {
    req.test_mode = caller.test_mode;
    let now = store.clock().now();
    let change = rules::issue(req, VoucherCode::generate(), &actor(caller, now))?;
    // The issuer's feed, and the feeds of hotels that pick up its orders
    // (read fresh: the caller's property may come from a cache).
    let mut feeds = Vec::new();
    if rules::in_pickup_feed(&change.voucher) {
        feeds.push(caller.property.id.clone());
        if let Some(p) = store.property(&caller.property.id).await? {
            feeds.extend(p.orders_picked_up_by);
        }
    }
    let render = |v: &Voucher| to_json(&IssuedView::of(v, &caller.property, now));
    let receipt = lease.as_ref().map(|lease| Receipt {
        lease,
        status: StatusCode::CREATED.as_u16(),
        render: &render,
    });
    let done = store.create(&change, &feeds, receipt).await?;
    tracing::info!(code = %change.voucher.code.masked(), "voucher issued");
    Ok(answer(done, StatusCode::CREATED, &render, lease.is_some()))
}

pub async fn status(store: &Store, caller: &Caller, raw: &str) -> Result<VoucherView, ApiError> {
    let code = parse_code(raw)?;
    let may_see = visibility(caller);
    let found = store.find(&find(caller, &code, &may_see, None)).await?;
    Ok(VoucherView::of(
        &found.voucher,
        &caller.property,
        &found.pms,
        store.clock().now(),
    ))
}

pub async fn load(
    app: &AppState,
    caller: &Caller,
    raw: &str,
    mut req: LoadRequest,
    lease: Option<Lease>,
) -> Result<Outcome, ApiError> {
    req.test_mode = caller.test_mode;
    let code = parse_code(raw)?;
    let may_see = visibility(caller);
    let rule = |v: &Voucher, _: Option<&Redemption>, now| rules::load(v, &req, &actor(caller, now));
    let render = |c: &Changed| to_json(&LoadView::of(&c.change));
    let find = find(caller, &code, &may_see, None);
    apply(
        app,
        &find,
        &rule,
        StatusCode::CREATED,
        &render,
        lease.as_ref(),
    )
    .await
}

pub async fn redeem(
    app: &AppState,
    caller: &Caller,
    raw: &str,
    mut req: RedeemRequest,
    lease: Option<Lease>,
) -> Result<Outcome, ApiError> {
    req.test_mode = caller.test_mode;
    let code = parse_code(raw)?;
    let may_see = visibility(caller);
    let id = new_id();
    let rule =
        |v: &Voucher, _: Option<&Redemption>, now| rules::redeem(v, &req, &id, &actor(caller, now));
    let render = |c: &Changed| to_json(&RedemptionView::of(c, &caller.property));
    let find = Find {
        book_in: true,
        ..find(caller, &code, &may_see, None)
    };
    let out = apply(
        app,
        &find,
        &rule,
        StatusCode::CREATED,
        &render,
        lease.as_ref(),
    )
    .await?;
    tracing::info!(code = %code.masked(), "voucher redeemed");
    Ok(out)
}

pub async fn reverse(
    app: &AppState,
    caller: &Caller,
    raw: &str,
    redemption_id: &str,
    req: ReverseRequest,
    lease: Option<Lease>,
) -> Result<Outcome, ApiError> {
    let code = parse_code(raw)?;
    let may_see = visibility(caller);
    let rule = |v: &Voucher, r: Option<&Redemption>, now| match r {
        Some(r) => rules::reverse_by_partner(v, r, &req, &actor(caller, now)),
        None => Err(VoucherError::RedemptionNotFound),
    };
    let render = |c: &Changed| to_json(&ReversalView::of(&c.change));
    let find = find(caller, &code, &may_see, Some(redemption_id));
    apply(
        app,
        &find,
        &rule,
        StatusCode::CREATED,
        &render,
        lease.as_ref(),
    )
    .await
}

pub async fn hold(
    app: &AppState,
    caller: &Caller,
    raw: &str,
    mut req: HoldRequest,
    lease: Option<Lease>,
) -> Result<Outcome, ApiError> {
    req.test_mode = caller.test_mode;
    let code = parse_code(raw)?;
    let may_see = visibility(caller);
    let id = new_id();
    let rule = |v: &Voucher, _: Option<&Redemption>, now| {
        rules::place_hold(v, &req, &id, &actor(caller, now))
    };
    let now = app.store.clock().now();
    let render = |c: &Changed| to_json(&HoldView::of(&c.change, now));
    let find = find(caller, &code, &may_see, None);
    apply(
        app,
        &find,
        &rule,
        StatusCode::CREATED,
        &render,
        lease.as_ref(),
    )
    .await
}

async fn locate_hold(
    store: &Store,
    caller: &Caller,
    hold_id: &str,
) -> Result<(PropertyId, VoucherCode), VoucherError> {
    store
        .hold_location(&caller.property.id, hold_id)
        .await?
        .ok_or(VoucherError::HoldNotFound)
}

/// Holds are found by their record, which names the voucher: the caller
/// placed the hold here, so it may see the voucher.
fn find_held<'a>(
    caller: &'a Caller,
    issuer: &'a PropertyId,
    code: &'a VoucherCode,
    may_see: &'a (dyn Fn(&PropertyId) -> bool + Send + Sync),
) -> Find<'a> {
    Find {
        issuer: Some(issuer),
        ..find(caller, code, may_see, None)
    }
}

pub async fn capture(
    app: &AppState,
    caller: &Caller,
    hold_id: &str,
    req: CaptureRequest,
    lease: Option<Lease>,
) -> Result<Outcome, ApiError> {
    let (issuer, code) = locate_hold(&app.store, caller, hold_id).await?;
    let id = new_id();
    let rule = |v: &Voucher, _: Option<&Redemption>, now| {
        rules::capture(v, hold_id, &req, &id, &actor(caller, now))
    };
    let render = |c: &Changed| to_json(&CaptureView::of(&c.change, hold_id));
    let find = find_held(caller, &issuer, &code, &|_| true);
    apply(
        app,
        &find,
        &rule,
        StatusCode::CREATED,
        &render,
        lease.as_ref(),
    )
    .await
}

pub async fn release(
    app: &AppState,
    caller: &Caller,
    hold_id: &str,
    lease: Option<Lease>,
) -> Result<Outcome, ApiError> {
    let (issuer, code) = locate_hold(&app.store, caller, hold_id).await?;
    let rule =
        |v: &Voucher, _: Option<&Redemption>, now| rules::release(v, hold_id, &actor(caller, now));
    let now = app.store.clock().now();
    let render = |c: &Changed| to_json(&ReleaseView::of(&c.change, hold_id, now));
    let find = find_held(caller, &issuer, &code, &|_| true);
    apply(app, &find, &rule, StatusCode::OK, &render, lease.as_ref()).await
}

/// Block, unblock or cancel.
#[derive(Debug, Clone, Copy)]
pub enum Lifecycle {
    Block,
    Unblock,
    Cancel,
}

pub async fn lifecycle(
    app: &AppState,
    caller: &Caller,
    raw: &str,
    what: Lifecycle,
    lease: Option<Lease>,
) -> Result<Outcome, ApiError> {
    let code = parse_code(raw)?;
    let may_see = visibility(caller);
    let rule = |v: &Voucher, _: Option<&Redemption>, now| {
        let a = actor(caller, now);
        match what {
            Lifecycle::Block => rules::set_blocked(v, true, &a),
            Lifecycle::Unblock => rules::set_blocked(v, false, &a),
            Lifecycle::Cancel => rules::cancel(v, &a),
        }
    };
    let now = app.store.clock().now();
    let render = |c: &Changed| {
        to_json(&VoucherView::of(
            &c.change.voucher,
            &caller.property,
            &c.pms,
            now,
        ))
    };
    let find = find(caller, &code, &may_see, None);
    apply(app, &find, &rule, StatusCode::OK, &render, lease.as_ref()).await
}

pub async fn activities(
    store: &Store,
    caller: &Caller,
    raw: &str,
    after: Option<&str>,
    limit: Option<usize>,
) -> Result<ActivitiesView, ApiError> {
    let code = parse_code(raw)?;
    let may_see = visibility(caller);
    let v = store
        .find(&find(caller, &code, &may_see, None))
        .await?
        .voucher;
    let issuer = v.issuer.clone();
    let after = after.map(pickup::parse_cursor).transpose()?.unwrap_or(0);
    let limit = limit.unwrap_or(100).clamp(1, 500);
    let mut acts = store.activities(&issuer, &code, after, limit).await?;
    // Other hotels' guests are theirs: only the issuer and the property
    // where it happened see a reservation and the acting partner; the
    // guest's name only the partner that acted.
    for a in &mut acts {
        a.minimise_for(&issuer, &caller.property.id, &caller.partner.id);
    }
    let next = (acts.len() == limit)
        .then(|| acts.last().map(|a| a.id.to_string()))
        .flatten();
    Ok(ActivitiesView {
        code: v.code,
        activities: acts,
        next,
    })
}

pub async fn orders(
    store: &Store,
    caller: &Caller,
    after: Option<&str>,
    limit: Option<usize>,
) -> Result<OrdersView, ApiError> {
    let (property, partner) = (&caller.property.id, &caller.partner.id);
    let after = match after {
        Some(raw) => pickup::parse_cursor(raw)?,
        None => store.pickup_cursor(property, partner).await?,
    };
    let limit = limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let mut orders = store.orders_after(property, after, limit + 1).await?;
    let more = orders.len() > limit;
    orders.truncate(limit);
    let mapping = store.article_mapping(property, partner).await?;
    let cursor = orders.last().map_or(after, |o| o.seq).to_string();
    Ok(OrdersView {
        orders: orders
            .iter()
            .map(|o| OrderView::of(o, &mapping, &caller.property.id))
            .collect(),
        cursor,
        more,
    })
}

pub async fn acknowledge(store: &Store, caller: &Caller, raw: &str) -> Result<u64, ApiError> {
    let cursor = pickup::parse_cursor(raw)?;
    Ok(store
        .acknowledge(&caller.property.id, &caller.partner.id, cursor)
        .await?)
}

pub async fn save_mapping(
    store: &Store,
    caller: &Caller,
    mapping: ArticleMapping,
) -> Result<ArticleMapping, ApiError> {
    mapping.validate()?;
    store
        .save_article_mapping(&caller.property.id, &caller.partner.id, &mapping)
        .await?;
    Ok(mapping)
}

pub async fn mapping(store: &Store, caller: &Caller) -> Result<ArticleMapping, ApiError> {
    Ok(store
        .article_mapping(&caller.property.id, &caller.partner.id)
        .await?)
}

pub async fn settlement(
    store: &Store,
    caller: &Caller,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<SettlementView, ApiError> {
    let p = &caller.property;
    let (start, end) = settlement::period(from, to, p.time_zone)?;
    let entries = store.settlement_entries(&p.id, start, end).await?;
    let lines: Vec<SettlementLine> = entries.iter().filter_map(SettlementLine::of).collect();
    let s = settlement::settle(&lines);
    Ok(SettlementView {
        property: p.id.clone(),
        from,
        to,
        groups: s.groups,
        totals: s.totals,
        lines,
    })
}

/// The settlement groups as CSV, amounts in minor units; text fields
/// neutralised as every CSV GuestHub writes ([`domain::csv_out`]).
pub fn settlement_csv(s: &SettlementView) -> Result<String, ApiError> {
    use domain::csv_out::text;
    let mut w = domain::csv_out::writer(Vec::new(), csv::Terminator::Any(b'\n'));
    let header = [
        "accepting_property",
        "issuing_property",
        "currency",
        "redemptions",
        "reversals",
        "redeemed_minor",
        "reversed_minor",
        "net_minor",
    ];
    w.write_record(header).map_err(ApiError::internal)?;
    for g in &s.groups {
        w.write_record([
            &*text(g.accepting_property.as_str()),
            &*text(g.issuing_property.as_str()),
            &*text(g.currency.as_str()),
            &g.redemptions.to_string(),
            &g.reversals.to_string(),
            &g.redeemed.amount.to_string(),
            &g.reversed.amount.to_string(),
            &g.net.amount.to_string(),
        ])
        .map_err(ApiError::internal)?;
    }
    let bytes = w.into_inner().map_err(ApiError::internal)?;
    String::from_utf8(bytes).map_err(ApiError::internal)
}

/// The write-off entry an earlier attempt of this run (same idempotency
/// key) made on a voucher, if any.
async fn written_off_by(
    store: &Store,
    v: &Voucher,
    run: Option<&str>,
) -> Result<Option<Money>, ApiError> {
    let Some(run) = run else { return Ok(None) };
    if v.status != domain::voucher::VoucherStatus::WrittenOff {
        return Ok(None);
    }
    let ledger = store.activities(&v.issuer, &v.code, 0, 1_000).await?;
    Ok(ledger
        .iter()
        .rev()
        .find(|a| {
            a.kind == domain::voucher::ActivityKind::WriteOff && a.note.as_deref() == Some(run)
        })
        .map(|a| Money::new(-a.amount.amount, a.amount.currency)))
}

pub async fn write_off(
    store: &Store,
    caller: &Caller,
    req: WriteOffRequest,
    run: Option<String>,
) -> Result<WriteOffView, ApiError> {
    let p = &caller.property;
    let now = store.clock().now();
    let excluded: HashSet<String> = req.exclude.iter().map(|c| code_key(c)).collect();
    // Validity ends with its local day: anything valid until yesterday or
    // before may be expired (the rule checks the exact instant).
    let through = domain::time::local_date(p.time_zone, now)
        .pred_opt()
        .unwrap_or_default();
    let mut view = WriteOffView {
        dry_run: req.dry_run,
        written_off: Vec::new(),
        excluded: Vec::new(),
        skipped: Vec::new(),
        totals: Vec::new(),
    };
    let mut totals: BTreeMap<Currency, i64> = BTreeMap::new();
    for code in store.valid_until_through(&p.id, through).await? {
        let Some(v) = store.voucher(&p.id, &code).await? else {
            continue;
        };
        let due = match rules::write_off_due(&v, now) {
            Ok(amount) => amount,
            Err(rules::WriteOffSkip::LiveHolds) => {
                view.skipped.push(WriteOffSkipped {
                    code: v.code,
                    reason: rules::WriteOffSkip::LiveHolds.as_str(),
                });
                continue;
            }
            Err(_) => {
                // Written off by an interrupted attempt of this very run:
                // report it as this run's, as the first answer would have.
                if !req.dry_run
                    && let Some(amount) = written_off_by(store, &v, run.as_deref()).await?
                {
                    *totals.entry(amount.currency).or_default() += amount.amount;
                    view.written_off.push(WriteOffLine {
                        code: v.code,
                        amount,
                        valid_until: v.valid_until,
                    });
                }
                continue;
            }
        };
        if excluded.contains(v.code.key()) {
            view.excluded.push(v.code);
            continue;
        }
        let amount = if req.dry_run {
            due
        } else {
            // Nothing due any more (it moved meanwhile): write nothing.
            let rule = |v: &Voucher, _: Option<&Redemption>, now| {
                let mut c = rules::write_off(v, &actor(caller, now)).unwrap_or_else(|_| Change {
                    voucher: v.clone(),
                    activities: Vec::new(),
                    redemption: None,
                    new_hold: None,
                });
                for a in &mut c.activities {
                    if a.kind == domain::voucher::ActivityKind::WriteOff {
                        a.note = run.clone();
                    }
                }
                Ok(c)
            };
            let see_own = |_: &PropertyId| true;
            let find = Find {
                issuer: Some(&p.id),
                ..find(caller, &code, &see_own, None)
            };
            let done = store.change(&find, &rule, None).await?;
            let Committed::Applied(Changed { change: c, .. }) = done else {
                continue;
            };
            match c
                .activities
                .iter()
                .find(|a| a.kind == domain::voucher::ActivityKind::WriteOff)
            {
                Some(a) => Money::new(-a.amount.amount, a.amount.currency),
                // Written off meanwhile by another attempt of this run (one
                // whose lock expired while it was still working): ours.
                None if let Some(m) = written_off_by(store, &c.voucher, run.as_deref()).await? => m,
                None => {
                    view.skipped.push(WriteOffSkipped {
                        code: v.code,
                        reason: "changed",
                    });
                    continue;
                }
            }
        };
        *totals.entry(amount.currency).or_default() += amount.amount;
        view.written_off.push(WriteOffLine {
            code: v.code,
            amount,
            valid_until: v.valid_until,
        });
    }
    view.totals = totals.into_iter().map(|(c, a)| Money::new(a, c)).collect();
    if !req.dry_run && !view.written_off.is_empty() {
        tracing::info!(
            count = view.written_off.len(),
            "expired open value written off"
        );
    }
    Ok(view)
}

pub async fn import(
    store: &Store,
    caller: &Caller,
    lines: Vec<serde_json::Value>,
) -> Result<ImportView, ApiError> {
    if lines.len() > MAX_IMPORT_LINES {
        return Err(VoucherError::TooManyLines {
            max: MAX_IMPORT_LINES,
        }
        .into());
    }
    let mut view = ImportView {
        imported: 0,
        failed: 0,
        lines: Vec::with_capacity(lines.len()),
    };
    for (i, raw) in lines.into_iter().enumerate() {
        let code = raw.get("code").and_then(|c| c.as_str()).map(|c| {
            VoucherCode::external(c).map_or_else(|_| c.to_owned(), |c| c.as_str().to_owned())
        });
        let result = match platform::http::json::from_value::<ImportLine>(raw) {
            Err(e) => Err(LineError {
                code: e.code,
                message: e.message,
            }),
            Ok(mut line) => {
                line.test_mode = caller.test_mode;
                let now = store.clock().now();
                match rules::import(&line, &actor(caller, now)) {
                    Err(e) => Err(LineError {
                        code: e.code(),
                        message: e.to_string(),
                    }),
                    Ok(change) => match store.create(&change, &[], None).await {
                        Ok(_) => Ok(()),
                        Err(VoucherError::Store(e)) => return Err(e.into()),
                        Err(e) => Err(LineError {
                            code: e.code(),
                            message: e.to_string(),
                        }),
                    },
                }
            }
        };
        let (status, error) = match result {
            Ok(()) => {
                view.imported += 1;
                ("imported", None)
            }
            Err(e) => {
                view.failed += 1;
                ("failed", Some(e))
            }
        };
        view.lines.push(ImportLineResult {
            line: i + 1,
            code,
            status,
            error,
        });
    }
    tracing::info!(
        imported = view.imported,
        failed = view.failed,
        "vouchers imported"
    );
    Ok(view)
}

/// Most vouchers one lost-code search returns.
pub const MAX_FOUND: usize = 100;

/// Vouchers the caller's property sold under an order reference or to a
/// buyer ("lost code"), codes masked.
pub async fn lookup(
    store: &Store,
    caller: &Caller,
    order_ref: Option<&str>,
    buyer_email: Option<&str>,
) -> Result<FoundVouchersView, ApiError> {
    let by = match (order_ref, buyer_email) {
        (Some(r), None) => {
            let r = r.trim();
            if r.is_empty() || r.len() > 100 {
                return Err(
                    domain::ValidationError::new("order_ref", "must be 1-100 characters").into(),
                );
            }
            Lookup::OrderRef(r.to_owned())
        }
        (None, Some(e)) => Lookup::BuyerEmail(
            domain::Email::parse(e)
                .map_err(|e| domain::ValidationError::new("buyer_email", e.reason))?,
        ),
        _ => return Err(VoucherError::LookupNeedsOne.into()),
    };
    let now = store.clock().now();
    let found = store
        .vouchers_by(&caller.property.id, &by, MAX_FOUND)
        .await?;
    Ok(FoundVouchersView {
        vouchers: found.iter().map(|v| FoundVoucherView::of(v, now)).collect(),
    })
}
