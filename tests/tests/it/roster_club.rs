//! The club roster for the booking desk and the club manager, on both
//! stores through the routes: the contact a booking is prefilled with,
//! finding members by member number and by name, and what each import
//! changed (counts on the report, the listing by kind).

use std::collections::BTreeSet;

use ams_import::{ImportRequest, Input, import};
use chrono::{DateTime, Duration, Utc};
use domain::PropertyId;
use domain::ports::PropertyStore;
use domain::roster::FileKind;
use domain::roster::import::{ImportReport, ImportSource, ImportStatus};
use http::StatusCode;
use platform::Store;
use serde_json::{Value, json};
use tests::{Backend, both_stores, call, fresh_store};

fn castle() -> PropertyId {
    PropertyId::parse("castle").unwrap()
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// The property and a key with `club:read`.
async fn setup(store: &Store) -> String {
    guesthub::admin::add_property(
        store,
        "castle",
        "Castle Winery",
        "America/Los_Angeles",
        "USD",
    )
    .await
    .unwrap();
    guesthub::admin::add_partner(store, "Desk", &["castle".into()], &["club:read".into()])
        .await
        .unwrap()
        .1
}

async fn run(store: &Store, name: &str, at: DateTime<Utc>, body: String) -> ImportReport {
    let property = store.property(&castle()).await.unwrap().unwrap();
    let req = ImportRequest {
        property,
        source: ImportSource {
            key: format!("ams/castle/{name}"),
            etag: name.into(),
            sequencer: None,
            arrived_at: at,
        },
        kind: FileKind::Delimited,
        input: Input::Stream(Box::new(std::io::Cursor::new(body.into_bytes()))),
    };
    let r = import(store, req).await.unwrap();
    assert_eq!(r.status, ImportStatus::Applied, "{:?}", r.reason);
    r
}

async fn get(app: &axum::Router, key: &str, path: &str) -> tests::Reply {
    call(
        app,
        "GET",
        &format!("/v1/properties/castle{path}"),
        Some(key),
        &[],
        None,
    )
    .await
}

const HEADER: &str = "MemberID,Email,FirstName,LastName,Phone,ClubDescr,ClubStatus,JoinDate\n";

async fn prefill_and_lookups(b: Backend) {
    let t = fresh_store(b).await;
    let key = setup(&t.store).await;
    let app = guesthub::app::router(t.store.clone(), 64 * 1024);
    let mut file = String::from(HEADER);
    file.push_str("1001,jose@example.com,José,Núñez,+1 707 555 0101,Gold,Active,2019-03-15\n");
    file.push_str("1001,jose@example.com,José,Núñez,,Wine Club,Active,2021-06-01\n");
    file.push_str("1002,nuria@example.com,Núria,Nunes,,Silver,Active,\n");
    file.push_str("1003,ann@example.com,Ann,Smith,+1 707 555 0103,Silver,Active,2020-01-02\n");
    file.push_str("1004,bare@example.com,,,,Silver,Active,\n");
    file.push_str("1005,gone@example.com,Nuno,Gone,,Silver,Cancelled,\n");
    run(&t.store, "m1.csv", t0(), file).await;

    // Prefill: the contact as the file has it, the earliest join date.
    let r = get(&app, &key, "/club-members/JOSE@example.com").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(
        (
            &j["member"],
            &j["member_id"],
            &j["first_name"],
            &j["last_name"],
            &j["phone"],
            &j["member_since"],
            &j["since"]
        ),
        (
            &json!(true),
            &json!("1001"),
            &json!("José"),
            &json!("Núñez"),
            &json!("+1 707 555 0101"),
            &json!("2019-03-15"),
            &json!("2019-03-15")
        )
    );
    // Without them in the file, the fields are absent.
    let j = get(&app, &key, "/club-members/bare@example.com")
        .await
        .json();
    assert_eq!(j["member"], true);
    for absent in ["first_name", "last_name", "phone", "member_since"] {
        assert!(j.get(absent).is_none(), "{absent}: {j}");
    }

    // By AMS member number.
    let j = get(&app, &key, "/club-members?member_id=1003").await.json();
    assert_eq!(j["members"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["members"][0]["email"], "ann@example.com");
    assert_eq!(j["members"][0]["first_name"], "Ann");
    assert_eq!(j["members"][0]["tiers"], json!(["Silver"]));
    let j = get(&app, &key, "/club-members?member_id=100").await.json();
    assert_eq!(j["members"], json!([]), "a member number is matched whole");
    let j = get(&app, &key, "/club-members?member_id=1005").await.json();
    assert_eq!(j["members"], json!([]), "a cancelled row is no member");

    // By name: the start of the first name, the full name or the last name,
    // any case, any accents.
    let emails = |j: &Value| -> Vec<String> {
        j["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let j = get(&app, &key, "/club-members?q=JOSE").await.json();
    assert_eq!(emails(&j), ["jose@example.com"], "{j}");
    assert_eq!(j["members"][0]["tiers"], json!(["Gold", "Wine Club"]));
    let j = get(&app, &key, "/club-members?q=jos%C3%A9%20n%C3%BA")
        .await
        .json();
    assert_eq!(emails(&j), ["jose@example.com"], "{j}");
    let j = get(&app, &key, "/club-members?q=smi").await.json();
    assert_eq!(emails(&j), ["ann@example.com"], "{j}");
    // `nu` starts Núñez (last), Núria (first) and Nunes (last); not Nuno (left).
    let j = get(&app, &key, "/club-members?q=nu").await.json();
    let found: BTreeSet<String> = emails(&j).into_iter().collect();
    assert_eq!(
        found,
        BTreeSet::from(["jose@example.com".into(), "nuria@example.com".into()]),
        "{j}"
    );
    // Paged: one at a time, every match once, then no `next`.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let j = get(&app, &key, &format!("/club-members?q=nu&limit=1{cursor}"))
            .await
            .json();
        paged.extend(emails(&j));
        match j["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let distinct: BTreeSet<String> = paged.iter().cloned().collect();
    assert_eq!(distinct, found, "{paged:?}");
    assert!(
        !get(&app, &key, "/club-members?q=zz")
            .await
            .body
            .contains("next")
    );

    // Bad queries: a clear error, nothing found by accident.
    for bad in [
        "/club-members",
        "/club-members?q=",
        "/club-members?q=%20%2A%20",
        "/club-members?member_id=",
        "/club-members?member_id=1&q=ann",
        "/club-members?q=ann&cursor=not-hex",
    ] {
        let r = get(&app, &key, bad).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}: {}",
            r.body
        );
    }

    // The next file replaces the roster: lookups follow it.
    let mut file = String::from(HEADER);
    file.push_str("2001,ann@example.com,Ann,Smith-Jones,,Gold,Active,2020-01-02\n");
    file.push_str("1002,nuria@example.com,Núria,Nunes,,Silver,Active,\n");
    file.push_str("1004,bare@example.com,,,,Silver,Active,\n");
    file.push_str("1006,eve@example.com,Eve,Adams,,Silver,Active,\n");
    run(&t.store, "m2.csv", t0() + Duration::hours(1), file).await;
    let j = get(&app, &key, "/club-members?q=jose").await.json();
    assert_eq!(j["members"], json!([]), "{j}");
    let j = get(&app, &key, "/club-members?member_id=1003").await.json();
    assert_eq!(j["members"], json!([]), "{j}");
    let j = get(&app, &key, "/club-members?member_id=2001").await.json();
    assert_eq!(emails(&j), ["ann@example.com"]);
    assert_eq!(j["members"][0]["last_name"], "Smith-Jones");
}

/// Every email listed under `kind` for the import, page by page.
async fn listed(
    app: &axum::Router,
    key: &str,
    import: &str,
    kind: &str,
    limit: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = get(
            app,
            key,
            &format!("/roster-imports/{import}/changes?kind={kind}&limit={limit}{cursor}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let j = r.json();
        assert_eq!(j["kind"], kind);
        out.extend(j["changes"].as_array().unwrap().iter().cloned());
        match j["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return out,
        }
    }
}

async fn what_changed(b: Backend) {
    let t = fresh_store(b).await;
    let key = setup(&t.store).await;
    let app = guesthub::app::router(t.store.clone(), 64 * 1024);
    let mut file = String::from(HEADER);
    for (id, email, tier) in [
        ("1", "ana@x.com", "Gold"),
        ("2", "bo@x.com", "Silver"),
        ("3", "cy@x.com", "Gold"),
        ("3", "cy@x.com", "Wine Club"),
        ("4", "dee@x.com", "Silver"),
    ] {
        file.push_str(&format!("{id},{email},,,,{tier},Active,\n"));
    }
    let first = run(&t.store, "m1.csv", t0(), file).await;
    // The first roster: everyone joined.
    assert_eq!(
        (
            first.joined,
            first.left,
            first.tier_changed,
            first.unchanged
        ),
        (4, 0, 0, 0)
    );
    let joined = listed(&app, &key, &first.id, "joined", 3).await;
    assert_eq!(joined.len(), 4, "{joined:?}");
    assert_eq!(
        joined[2],
        json!({"email": "cy@x.com", "kind": "joined", "member_id": "3", "tiers_before": [], "tiers_after": ["Gold", "Wine Club"]})
    );
    assert_eq!(
        listed(&app, &key, &first.id, "left", 10).await,
        Vec::<Value>::new()
    );

    // bo left, eve joined, cy dropped a club, dee changed tier, ana kept
    // hers under a new member number (unchanged: the tiers are the same).
    let mut file = String::from(HEADER);
    for (id, email, tier) in [
        ("1a", "ana@x.com", "Gold"),
        ("3", "cy@x.com", "Gold"),
        ("4", "dee@x.com", "Gold"),
        ("5", "eve@x.com", "Silver"),
    ] {
        file.push_str(&format!("{id},{email},,,,{tier},Active,\n"));
    }
    let second = run(&t.store, "m2.csv", t0() + Duration::hours(1), file).await;
    assert_eq!(
        (
            second.joined,
            second.left,
            second.tier_changed,
            second.unchanged
        ),
        (1, 1, 2, 1)
    );
    assert_eq!(
        listed(&app, &key, &second.id, "joined", 10).await,
        vec![
            json!({"email": "eve@x.com", "kind": "joined", "member_id": "5", "tiers_before": [], "tiers_after": ["Silver"]})
        ]
    );
    assert_eq!(
        listed(&app, &key, &second.id, "left", 10).await,
        vec![
            json!({"email": "bo@x.com", "kind": "left", "member_id": "2", "tiers_before": ["Silver"], "tiers_after": []})
        ]
    );
    assert_eq!(
        listed(&app, &key, &second.id, "tier_changed", 1).await,
        vec![
            json!({"email": "cy@x.com", "kind": "tier_changed", "member_id": "3", "tiers_before": ["Gold", "Wine Club"], "tiers_after": ["Gold"]}),
            json!({"email": "dee@x.com", "kind": "tier_changed", "member_id": "4", "tiers_before": ["Silver"], "tiers_after": ["Gold"]}),
        ]
    );
    // The report as listed carries the counts too.
    let j = get(&app, &key, "/roster-imports").await.json();
    assert_eq!(j["imports"][0]["id"], second.id.as_str());
    assert_eq!(
        (
            &j["imports"][0]["joined"],
            &j["imports"][0]["left"],
            &j["imports"][0]["tier_changed"],
            &j["imports"][0]["unchanged"]
        ),
        (&json!(1), &json!(1), &json!(2), &json!(1))
    );

    // A repeat of the same file changes nothing.
    let mut file = String::from(HEADER);
    for (id, email, tier) in [
        ("5", "eve@x.com", "Silver"),
        ("4", "dee@x.com", "Gold"),
        ("3", "cy@x.com", "Gold"),
        ("1a", "ana@x.com", "Gold"),
    ] {
        file.push_str(&format!("{id},{email},,,,{tier},Active,\n"));
    }
    let third = run(&t.store, "m3.csv", t0() + Duration::hours(2), file).await;
    assert_eq!(
        (
            third.joined,
            third.left,
            third.tier_changed,
            third.unchanged
        ),
        (0, 0, 0, 4)
    );

    // Bad requests.
    let r = get(
        &app,
        &key,
        &format!("/roster-imports/{}/changes?kind=moved", second.id),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    let r = get(
        &app,
        &key,
        &format!("/roster-imports/{}/changes", second.id),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = get(
        &app,
        &key,
        &format!("/roster-imports/{}/changes?kind=left&cursor=zz", second.id),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    let r = get(
        &app,
        &key,
        "/roster-imports/no-such-import/changes?kind=left",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

/// A large roster with a thousand changes: the counts and the listing are
/// exact. (100,000 rows on SQLite; on moto, whose every call costs its
/// CPU, 20,000.)
async fn changes_of_a_large_import_are_exact(b: Backend) {
    let t = fresh_store(b).await;
    let key = setup(&t.store).await;
    let app = guesthub::app::router(t.store.clone(), 64 * 1024);
    let rows: usize = if b == Backend::Sqlite {
        100_000
    } else {
        20_000
    };
    let mut old = String::from("MemberID,Email,ClubDescr\n");
    for i in 0..rows {
        old.push_str(&format!("{i},m{i}@x.com,Silver\n"));
    }
    run(&t.store, "old.csv", t0(), old).await;
    // 400 leave, 300 join, 300 move from Silver to Gold; the rest reordered.
    let mut new = String::from("MemberID,Email,ClubDescr\n");
    for i in (400..rows).rev() {
        let tier = if i < 700 { "Gold" } else { "Silver" };
        new.push_str(&format!("{i},m{i}@x.com,{tier}\n"));
    }
    for i in 0..300 {
        new.push_str(&format!("n{i},n{i}@x.com,Silver\n"));
    }
    let r = run(&t.store, "new.csv", t0() + Duration::days(1), new).await;
    assert_eq!(
        (r.joined, r.left, r.tier_changed, r.unchanged),
        (300, 400, 300, rows as u64 - 700)
    );
    let emails = |v: Vec<Value>| -> BTreeSet<String> {
        v.iter()
            .map(|c| c["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let joined = listed(&app, &key, &r.id, "joined", 128).await;
    assert_eq!(joined.len(), 300);
    assert_eq!(
        emails(joined),
        (0..300).map(|i| format!("n{i}@x.com")).collect()
    );
    let left = listed(&app, &key, &r.id, "left", 1000).await;
    assert_eq!(left.len(), 400);
    assert!(
        left.iter()
            .all(|c| c["tiers_before"] == json!(["Silver"]) && c["tiers_after"] == json!([]))
    );
    assert_eq!(
        emails(left),
        (0..400).map(|i| format!("m{i}@x.com")).collect()
    );
    let changed = listed(&app, &key, &r.id, "tier_changed", 77).await;
    assert_eq!(changed.len(), 300);
    assert!(
        changed
            .iter()
            .all(|c| c["tiers_before"] == json!(["Silver"])
                && c["tiers_after"] == json!(["Gold"])
                && c["member_id"]
                    == json!(c["email"].as_str().unwrap()[1..].split('@').next().unwrap()))
    );
    assert_eq!(
        emails(changed),
        (400..700).map(|i| format!("m{i}@x.com")).collect()
    );
}

both_stores! {
    prefill => prefill_and_lookups;
    changes => what_changed;
    large_changes => changes_of_a_large_import_are_exact;
}
