//! Guest profiles through HTTP on both stores: upsert by email, lookup,
//! patch (preferences merge), notes, erasure, watchlist screening, scopes
//! and tenancy.

use serde_json::json;
use tests::{Backend, both_stores, call, fresh_store};

struct App {
    router: axum::Router,
    key: String,
    key_voucher: String,
    key_abbey: String,
    _t: tests::TestStore,
}

async fn app(b: Backend) -> App {
    let t = fresh_store(b).await;
    let s = &t.store;
    for p in ["castle", "abbey"] {
        guesthub::admin::add_property(s, p, "P", "Europe/Vienna", "EUR")
            .await
            .unwrap();
    }
    let add = |name: &'static str, props: &'static str, scope: &'static str| {
        let s = s.clone();
        async move {
            guesthub::admin::add_partner(&s, name, &[props.into()], &[scope.into()])
                .await
                .unwrap()
                .1
        }
    };
    let key = add("Desk", "castle", "guests").await;
    let key_voucher = add("PMS", "castle", "vouchers:read").await;
    let key_abbey = add("Abbey desk", "abbey", "guests").await;
    let router = guests_api::router(s.clone(), 64 * 1024);
    App {
        router,
        key,
        key_voucher,
        key_abbey,
        _t: t,
    }
}

const GUESTS: &str = "/v1/properties/castle/guests";

async fn profiles(b: Backend) {
    let a = app(b).await;
    let k = Some(a.key.as_str());
    let body = json!({"email": " Ana@Example.com ", "first_name": "Ana", "preferences": {"wine": "red", "room": "quiet"}}).to_string();
    let r = call(
        &a.router,
        "POST",
        GUESTS,
        k,
        &[("idempotency-key", "g-1")],
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let g = r.json();
    let id = g["id"].as_str().unwrap().to_owned();
    assert_eq!(g["email"], "ana@example.com");
    assert_eq!(g["screening"]["status"], "passed");
    // Replay: same answer, byte for byte.
    let again = call(
        &a.router,
        "POST",
        GUESTS,
        k,
        &[("idempotency-key", "g-1")],
        Some(body),
    )
    .await;
    assert_eq!(again.body, r.body);
    // Upsert by the same address updates, merging preferences.
    let r = call(
        &a.router,
        "POST",
        GUESTS,
        k,
        &[],
        Some(
            json!({"email": "ana@example.com", "phone": "+43 1", "preferences": {"wine": "white"}})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["id"], id.as_str());
    assert_eq!(
        r.json()["preferences"],
        json!({"wine": "white", "room": "quiet"})
    );

    let r = call(
        &a.router,
        "GET",
        &format!("{GUESTS}?email=ANA%40example.com"),
        k,
        &[],
        None,
    )
    .await;
    assert_eq!(r.json()["guests"][0]["id"], id.as_str());
    let r = call(
        &a.router,
        "GET",
        &format!("{GUESTS}?email=nobody%40example.com"),
        k,
        &[],
        None,
    )
    .await;
    assert_eq!(r.json()["guests"], json!([]));
    let r = call(
        &a.router,
        "GET",
        &format!("{GUESTS}?email=bad"),
        k,
        &[],
        None,
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_field".into()));

    let one = format!("{GUESTS}/{id}");
    let r = call(&a.router, "PATCH", &one, k, &[], Some(json!({"preferences": {"room": null, "smoking": "no"}, "opt_in": true, "last_name": "López"}).to_string())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["preferences"],
        json!({"wine": "white", "smoking": "no"})
    );
    assert_eq!(r.json()["opt_in"], true);
    let r = call(
        &a.router,
        "PATCH",
        &one,
        k,
        &[],
        Some(json!({"preferences": {"Bad Name": "x"}}).to_string()),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = call(
        &a.router,
        "PATCH",
        &one,
        k,
        &[],
        Some(json!({"unknown": 1}).to_string()),
    )
    .await;
    assert_eq!(r.status, 400);

    // Another guest cannot take Ana's address.
    let r = call(
        &a.router,
        "POST",
        GUESTS,
        k,
        &[],
        Some(json!({"email": "ben@example.com"}).to_string()),
    )
    .await;
    let ben = r.json()["id"].as_str().unwrap().to_owned();
    let r = call(
        &a.router,
        "PATCH",
        &format!("{GUESTS}/{ben}"),
        k,
        &[],
        Some(json!({"email": "ana@example.com"}).to_string()),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "email_taken".into()));

    // Notes.
    for text in ["Late arrival", "Anniversary"] {
        let r = call(
            &a.router,
            "POST",
            &format!("{one}/notes"),
            k,
            &[],
            Some(json!({"text": text}).to_string()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = call(
        &a.router,
        "POST",
        &format!("{one}/notes"),
        k,
        &[],
        Some(json!({"text": "  "}).to_string()),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = call(&a.router, "GET", &format!("{one}/notes"), k, &[], None).await;
    let texts: Vec<_> = r.json()["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["Late arrival", "Anniversary"]);

    // Erasure: personal data and notes gone, the fact recorded, idempotent;
    // the answer is the erasure's receipt.
    let r = call(&a.router, "DELETE", &one, k, &[], None).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let receipt = r.json();
    assert_eq!(receipt["status"], "erased");
    assert_eq!(receipt["erased"]["guest_profiles"], 1);
    assert_eq!(receipt["erased"]["notes"], 2);
    assert!(!r.body.contains("ana@"), "{}", r.body);
    let g = call(&a.router, "GET", &one, k, &[], None).await.json();
    assert_eq!(g["erased"], true);
    assert!(g["email"].is_null() && g["first_name"].is_null() && g["phone"].is_null());
    assert_eq!(g["preferences"], json!({}));
    let again = call(&a.router, "DELETE", &one, k, &[], None).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.body, r.body);
    assert_eq!(
        call(&a.router, "GET", &one, k, &[], None).await.json()["erased_at"],
        g["erased_at"]
    );
    let r = call(&a.router, "GET", &format!("{one}/notes"), k, &[], None).await;
    assert_eq!(r.json()["notes"], json!([]));
    let r = call(
        &a.router,
        "PATCH",
        &one,
        k,
        &[],
        Some(json!({"first_name": "X"}).to_string()),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code()), (422, "guest_erased".into()));
    // The address is free again: a new booking makes a new profile.
    let r = call(
        &a.router,
        "POST",
        GUESTS,
        k,
        &[],
        Some(json!({"email": "ana@example.com"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 201);
    assert_ne!(r.json()["id"], id.as_str());
}

async fn scopes_and_tenancy(b: Backend) {
    let a = app(b).await;
    let r = call(
        &a.router,
        "POST",
        GUESTS,
        Some(&a.key),
        &[],
        Some(json!({"email": "c@example.com"}).to_string()),
    )
    .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let one = format!("{GUESTS}/{id}");
    assert_eq!(
        call(&a.router, "GET", &one, None, &[], None).await.status,
        401
    );
    assert_eq!(
        call(&a.router, "GET", &one, Some(&a.key_voucher), &[], None)
            .await
            .status,
        403
    );
    // Another property's key: the property does not exist for it.
    assert_eq!(
        call(&a.router, "GET", &one, Some(&a.key_abbey), &[], None)
            .await
            .status,
        404
    );
    // Abbey's key on its own property cannot reach castle's guest by id.
    let r = call(
        &a.router,
        "GET",
        &format!("/v1/properties/abbey/guests/{id}"),
        Some(&a.key_abbey),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (404, "guest_not_found".into())
    );
    let r = call(
        &a.router,
        "GET",
        &format!("{GUESTS}/not%20an%20id"),
        Some(&a.key),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 404);
}

async fn watchlist_screening(b: Backend) {
    let a = app(b).await;
    let k = Some(a.key.as_str());
    let wl = "/v1/properties/castle/screening/watchlist";
    let r = call(&a.router, "PUT", wl, k, &[], Some(json!({"entries": [
        {"kind": "email", "email": "bad@example.com"},
        {"kind": "name_birth_date", "first_name": "Max", "last_name": "Muster", "birth_date": "1970-05-06"},
        {"kind": "document", "document_number": "X-1"}
    ]}).to_string())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["entries"], 3);
    let r = call(
        &a.router,
        "PUT",
        wl,
        k,
        &[],
        Some(json!({"entries": [{"kind": "document", "document_number": " - "}]}).to_string()),
    )
    .await;
    assert_eq!(r.status, 400);

    let r = call(
        &a.router,
        "POST",
        GUESTS,
        k,
        &[],
        Some(json!({"email": "BAD@example.com"}).to_string()),
    )
    .await;
    assert_eq!(r.json()["screening"]["status"], "flagged");
    assert_eq!(r.json()["screening"]["reason"], "watchlist:email");
    let r = call(
        &a.router,
        "POST",
        GUESTS,
        k,
        &[],
        Some(
            json!({"email": "max@example.com", "first_name": "max", "last_name": "MUSTER"})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(r.json()["screening"]["status"], "passed");
    let id = r.json()["id"].as_str().unwrap().to_owned();
    // The birth date arrives later: rescreened on the change.
    let r = call(
        &a.router,
        "PATCH",
        &format!("{GUESTS}/{id}"),
        k,
        &[],
        Some(json!({"birth_date": "1970-05-06"}).to_string()),
    )
    .await;
    assert_eq!(r.json()["screening"]["status"], "flagged");
    assert_eq!(
        call(
            &a.router,
            "PUT",
            wl,
            Some(&a.key_voucher),
            &[],
            Some("{\"entries\":[]}".into())
        )
        .await
        .status,
        403
    );
}

/// Twenty requests creating one guest at once (no Idempotency-Key, as two
/// front desks would send them): every one is answered that one guest,
/// created once and updated by the others; none is 409.
async fn concurrent_creation(b: Backend) {
    let a = app(b).await;
    let sends = (0..20).map(|i| {
        let router = a.router.clone();
        let key = a.key.clone();
        async move {
            let body = json!({"email": "race@example.com", "first_name": "Ana",
                              "preferences": {format!("p{i}"): "x"}});
            call(
                &router,
                "POST",
                GUESTS,
                Some(&key),
                &[],
                Some(body.to_string()),
            )
            .await
        }
    });
    let replies = futures::future::join_all(sends).await;
    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for r in &replies {
        assert!(r.status.is_success(), "{} {}", r.status, r.body);
        created += usize::from(r.status == 201);
        ids.insert(r.json()["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1, "one creation, the rest updates");
    assert_eq!(ids.len(), 1, "one guest for everyone: {ids:?}");
    // Every request's update landed on it.
    let found = call(
        &a.router,
        "GET",
        &format!("{GUESTS}?email=race@example.com"),
        Some(&a.key),
        &[],
        None,
    )
    .await
    .json();
    assert_eq!(found["guests"].as_array().unwrap().len(), 1);
    assert_eq!(
        found["guests"][0]["preferences"].as_object().unwrap().len(),
        20
    );
}

/// Names are one line (no control characters) and birth dates lie between
/// 1900-01-01 and today: 400 naming the field, on create and on patch, and
/// nothing is stored.
async fn names_and_birth_dates(b: Backend) {
    let a = app(b).await;
    let k = Some(a.key.as_str());
    let post = |body: serde_json::Value| {
        let router = a.router.clone();
        async move { call(&router, "POST", GUESTS, k, &[], Some(body.to_string())).await }
    };
    for (field, value) in [
        ("first_name", "Ana\r\nX;1;2"),
        ("last_name", "L\u{0}pez"),
        ("first_name", "\u{1b}[31mAna"),
        ("last_name", "Lo\u{85}pez"),
        ("phone", "+43\n1"),
    ] {
        let mut body = json!({"email": "ctl@example.com"});
        body[field] = json!(value);
        let r = post(body).await;
        assert_eq!(r.status, 400, "{field}={value:?}: {}", r.body);
        assert_eq!(r.code(), "invalid_field");
        assert_eq!(r.json()["error"]["details"]["field"], field);
    }
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive();
    for bad in [
        tomorrow.to_string(),
        "9999-12-31".into(),
        "1899-12-31".into(),
    ] {
        let r = post(json!({"email": "born@example.com", "birth_date": bad})).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.json()["error"]["details"]["field"], "birth_date");
    }
    let none = call(
        &a.router,
        "GET",
        &format!("{GUESTS}?email=born@example.com"),
        k,
        &[],
        None,
    )
    .await
    .json();
    assert_eq!(none["guests"], json!([]));
    let r = post(json!({"email": "born@example.com", "birth_date": "1980-02-29"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let patch = |body: serde_json::Value| {
        let router = a.router.clone();
        let uri = format!("{GUESTS}/{id}");
        async move { call(&router, "PATCH", &uri, k, &[], Some(body.to_string())).await }
    };
    let r = patch(json!({"last_name": "A\nB"})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = patch(json!({"birth_date": "3000-01-01"})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // An unknown field is named, not dropped.
    let r = patch(json!({"marketing_opt_in": true})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["details"]["field"], "marketing_opt_in");
}

both_stores! {
    guest_concurrent_creation => concurrent_creation;
    guest_names_and_birth_dates => names_and_birth_dates;
    guest_profiles => profiles;
    guest_scopes_and_tenancy => scopes_and_tenancy;
    guest_watchlist_screening => watchlist_screening;
}
