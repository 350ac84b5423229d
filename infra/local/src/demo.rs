//! `guesthub demo`: seeds a winery, a hotel and an attraction through the
//! hub's own HTTP routes (in process), drops a generated AMS club file,
//! runs a loyalty export into the local outbox, and prints the keys and
//! the curl commands that exercise each job. Running it again is safe:
//! properties and products are kept, partners get fresh keys (keys are
//! shown once), guests and enrolments are upserts, vouchers are issued
//! under fixed idempotency keys.

use std::path::Path;

use anyhow::{Context, bail};
use axum::body::Body;
use domain::ports::{PartnerStore, PropertyStore};
use domain::{PropertyId, Scope};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use platform::Store;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const WINERY: &str = "demo-winery";
pub const HOTEL: &str = "demo-hotel";
pub const ATTRACTION: &str = "demo-attraction";
const PMS: &str = "Demo hotel PMS";
const SHOP: &str = "Demo booking site";
/// Club members in the generated AMS file (plus the named ones below).
const CLUB_SIZE: usize = 500;

/// What the demo made, for the printed walkthrough.
pub struct Seeded {
    pub pms_key: String,
    pub shop_key: String,
    pub voucher_code: String,
    pub gift_card_code: String,
    pub club_file: std::path::PathBuf,
    pub outbox: std::path::PathBuf,
    pub export_line: String,
}

struct Api {
    app: axum::Router,
}

impl Api {
    async fn send(
        &self,
        method: &str,
        uri: &str,
        key: &str,
        idem: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {key}"));
        if let Some(k) = idem {
            req = req.header("idempotency-key", k);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))?,
            None => req.body(Body::empty())?,
        };
        let resp = self.app.clone().oneshot(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {uri} answered {status}: {v}");
        }
        Ok((status, v))
    }
}

/// A line per step, so a slow machine shows where it is.
fn step(n: u32, what: &str) {
    eprintln!("[{n}/8] {what}");
}

async fn ensure_property(store: &Store, id: &str, name: &str, tz: &str) -> anyhow::Result<()> {
    if store.property(&PropertyId::parse(id)?).await?.is_none() {
        crate::admin::add_property(store, id, name, tz, "EUR").await?;
    }
    Ok(())
}

/// The partner's key: a new partner, or a fresh key for the existing one.
async fn ensure_partner(
    store: &Store,
    name: &str,
    properties: &[&str],
    scopes: &[Scope],
) -> anyhow::Result<String> {
    let existing = store.partners().await?.into_iter().find(|p| p.name == name);
    if let Some(p) = existing {
        let (_, key) = crate::admin::rotate_partner_key(store, &p.id.to_string()).await?;
        return Ok(key);
    }
    let props: Vec<String> = properties.iter().map(|p| (*p).to_owned()).collect();
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let (_, key) = crate::admin::add_partner(store, name, &props, &scopes).await?;
    Ok(key)
}

/// A generated AMS export: the named demo members first, then
/// `CLUB_SIZE` more across three tiers.
fn generate_club_file() -> String {
    let mut f = String::from("MemberID,Email,FirstName,LastName,ClubDescr,ClubStatus\r\n");
    f.push_str("M0001,ana@example.com,Ana,Lopez,Gold,Active\r\n");
    f.push_str("M0002,ben@example.com,Ben,Okafor,Silver,Active\r\n");
    let tiers = ["Gold", "Silver", "Bronze"];
    for i in 0..CLUB_SIZE {
        f.push_str(&format!(
            "M{:04},member{i}@demo.example,Member,No{i},{},Active\r\n",
            i + 3,
            tiers[i % 3]
        ));
    }
    f
}

pub async fn seed(store: &Store, data_dir: &Path) -> anyhow::Result<Seeded> {
    step(1, "properties: a winery, a hotel, an attraction");
    ensure_property(store, WINERY, "Castle Winery", "Europe/Vienna").await?;
    ensure_property(store, HOTEL, "Harbour Hotel", "Europe/Lisbon").await?;
    ensure_property(store, ATTRACTION, "Sky Tower", "Europe/Berlin").await?;

    step(2, "partners (keys are shown once; a re-run rotates them)");
    let pms_key = ensure_partner(
        store,
        PMS,
        &[HOTEL],
        &[
            Scope::VouchersRead,
            Scope::VouchersRedeem,
            Scope::VouchersIssue,
            Scope::VouchersPickup,
            Scope::Guests,
            Scope::Loyalty,
        ],
    )
    .await?;
    let shop_key = ensure_partner(
        store,
        SHOP,
        &[WINERY, ATTRACTION],
        &[
            Scope::Checkout,
            Scope::ClubRead,
            Scope::ClubAdmin,
            Scope::VouchersRead,
            Scope::VouchersRedeem,
            Scope::VouchersIssue,
        ],
    )
    .await?;
    let api = Api {
        app: crate::app::router(store.clone(), platform::config::DEFAULT_MAX_BODY_BYTES),
    };

    step(3, "products and membership products");
    let w = format!("/v1/properties/{WINERY}");
    let a = format!("/v1/properties/{ATTRACTION}");
    let products = [
        (
            &w,
            "tasting",
            json!({"kind": "admission", "name": "Tasting", "currency": "EUR",
                   "units": [{"id": "adult", "name": "Adult", "price": {"amount": 2500, "currency": "EUR"}}]}),
        ),
        (
            &w,
            "harvest",
            json!({"kind": "event", "name": "Harvest dinner", "currency": "EUR", "capacity": 40,
                   "units": [{"id": "adult", "name": "Adult", "price": {"amount": 8000, "currency": "EUR"}}],
                   "discounts": {"member": {"percent_off": 10}, "tiers": {"Gold": {"percent_off": 25}}}}),
        ),
        (
            &w,
            "club",
            json!({"kind": "membership", "name": "Wine club", "currency": "EUR",
                   "units": [{"id": "member", "name": "Member", "price": {"amount": 9900, "currency": "EUR"}}],
                   "validity": {"count": 12, "unit": "months"}, "member_fields": ["first_name", "email"],
                   "benefits": [{"kind": "member_tickets", "product_ids": ["tasting"], "unit_ids": ["adult"],
                                 "quantity_per_booking": 2, "max_uses": 6},
                                {"kind": "promotion", "percent_off": 15}]}),
        ),
        (
            &a,
            "skywalk",
            json!({"kind": "admission", "name": "Skywalk", "currency": "EUR",
                   "units": [{"id": "adult", "name": "Adult", "price": {"amount": 1800, "currency": "EUR"}},
                             {"id": "child", "name": "Child", "price": {"amount": 900, "currency": "EUR"}}]}),
        ),
        (
            &a,
            "annual-pass",
            json!({"kind": "membership", "name": "Annual pass", "currency": "EUR",
                   "units": [{"id": "member", "name": "Member", "price": {"amount": 4900, "currency": "EUR"}}],
                   "validity": {"count": 1, "unit": "years"}, "member_fields": ["first_name", "email"],
                   "benefits": [{"kind": "member_tickets", "product_ids": ["skywalk"], "unit_ids": ["adult"],
                                 "quantity_per_booking": 1, "max_uses": 50}]}),
        ),
    ];
    for (base, id, body) in products {
        api.send(
            "PUT",
            &format!("{base}/products/{id}"),
            &shop_key,
            None,
            Some(body),
        )
        .await?;
    }
    api.send(
        "PUT",
        &format!("{w}/club-tiers/Gold"),
        &shop_key,
        None,
        Some(json!({"enabled": true})),
    )
    .await?;

    step(4, "vouchers: two at the hotel, a gift card at the winery");
    let h = format!("/v1/properties/{HOTEL}");
    let (_, v) = api
        .send(
            "POST",
            &format!("{h}/vouchers"),
            &pms_key,
            Some("demo-voucher-1"),
            Some(
                json!({"article_type": "value", "value": {"amount": 10000, "currency": "EUR"},
                        "valid_until": "2027-12-31"}),
            ),
        )
        .await?;
    let voucher_code = v["code"].as_str().context("voucher code")?.to_owned();
    api.send(
        "POST",
        &format!("{h}/vouchers"),
        &pms_key,
        Some("demo-voucher-2"),
        Some(json!({"article_type": "value", "value": {"amount": 5000, "currency": "EUR"}})),
    )
    .await?;
    let (_, g) = api
        .send(
            "POST",
            &format!("{w}/vouchers"),
            &shop_key,
            Some("demo-gift-card-1"),
            Some(
                json!({"article_type": "gift_card", "value": {"amount": 5000, "currency": "EUR"}}),
            ),
        )
        .await?;
    let gift_card_code = g["code"].as_str().context("gift card code")?.to_owned();

    step(5, "AMS club file into the drop folder");
    let drop = data_dir.join("drop").join("ams").join(WINERY);
    std::fs::create_dir_all(&drop)?;
    let club_file = drop.join("members-demo.csv");
    // Write then rename: the watcher never sees half a file.
    let tmp = drop.join(".members-demo.csv.tmp");
    std::fs::write(&tmp, generate_club_file())?;
    std::fs::rename(&tmp, &club_file)?;

    step(6, "hotel guests");
    let guests = [
        ("ana@example.com", "Ana", "Lopez", "red"),
        ("ben@example.com", "Ben", "Okafor", "white"),
        ("chloe@example.com", "Chloe", "Martin", "sparkling"),
        ("dev@example.com", "Dev", "Patel", "red"),
        ("eva@example.com", "Eva", "Novak", "rosé"),
    ];
    for (email, first, last, wine) in guests {
        api.send(
            "POST",
            &format!("{h}/guests"),
            &pms_key,
            None,
            Some(
                json!({"email": email, "first_name": first, "last_name": last,
                        "preferences": {"wine": wine}, "opt_in": true}),
            ),
        )
        .await?;
    }

    step(7, "loyalty: enrolments and departures");
    for (email, ..) in guests.iter().take(3) {
        api.send(
            "POST",
            &format!("{h}/loyalty/enrolments"),
            &pms_key,
            None,
            Some(json!({"email": email})),
        )
        .await?;
    }
    for (n, (email, ..)) in guests.iter().take(2).enumerate() {
        api.send(
            "POST",
            &format!("{h}/stays/DEMO-{}/departure", 1001 + n),
            &pms_key,
            None,
            Some(
                json!({"email": email, "arrival": "2026-11-20", "departure": "2026-11-23",
                        "room_revenue": {"amount": 54000 + 1000 * n as i64, "currency": "EUR"},
                        "other_revenue": {"amount": 4550, "currency": "EUR"}}),
            ),
        )
        .await?;
    }

    step(8, "loyalty export into the local outbox");
    let all = crate::loyalty::export(store, data_dir, Some(HOTEL), false).await?;
    let export_line = all
        .first()
        .map(crate::loyalty::summary_line)
        .unwrap_or_default();
    Ok(Seeded {
        pms_key,
        shop_key,
        voucher_code,
        gift_card_code,
        club_file,
        outbox: crate::loyalty::outbox_dir(data_dir),
        export_line,
    })
}

/// The walkthrough printed after seeding.
pub fn walkthrough(s: &Seeded, addr: &str, data_dir: &Path) -> String {
    let b = format!("http://{addr}/v1/properties");
    // The commands must reach the same data as the demo wrote.
    let run = if data_dir == Path::new(".guesthub") {
        "cargo run --".to_owned()
    } else {
        format!("cargo run -- --data-dir {}", data_dir.display())
    };
    format!(
        r#"
GuestHub demo data is ready.

  Demo hotel PMS key     (demo-hotel: vouchers, guests, loyalty):
    export PMS={pms}
  Demo booking site key  (demo-winery, demo-attraction: checkout, club, vouchers):
    export SHOP={shop}

Start the hub in another terminal (it imports the dropped club file within seconds):
    {run} serve --addr {addr}

1. Club roster: the AMS file {club} ({n} members) → Ana is a Gold member
    curl -s -H "Authorization: Bearer $SHOP" {b}/{w}/club-members/ana@example.com
    curl -s -H "Authorization: Bearer $SHOP" -H 'Content-Type: application/json' -X POST {b}/{w}/orders \
      -d '{{"uuid":"demo-harvest-1","contact":{{"email":"ana@example.com"}},"items":[{{"product_id":"harvest","unit_id":"adult","quantity":1,"date":"2027-09-20"}}],"payment":{{"mode":"pay_later","parts":[]}}}}'
    # → lines[0].discount.source = "club_tier" (Gold: 25% off), total 6000

2. Vouchers at the hotel: pickup → status → partial redemption → reversal → settlement
    curl -s -H "Authorization: Bearer $PMS" {b}/{h}/voucher-orders
    curl -s -H "Authorization: Bearer $PMS" {b}/{h}/vouchers/{code}
    curl -s -H "Authorization: Bearer $PMS" -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-r1' -X POST \
      {b}/{h}/vouchers/{code}/redemptions -d '{{"amount":{{"amount":2500,"currency":"EUR"}},"reservation":{{"number":"DEMO-1001"}}}}'
    # → 201 … "balance":{{"amount":7500,"currency":"EUR"}}; use its redemption_id:
    curl -s -H "Authorization: Bearer $PMS" -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-r1-rev' -X POST \
      {b}/{h}/vouchers/{code}/redemptions/<redemption_id>/reversal -d '{{}}'
    curl -s -H "Authorization: Bearer $PMS" "{b}/{h}/settlement?from=$(date +%F)&to=$(date +%F)&format=csv"

3. Memberships at the winery: sale → redemption with its benefit → member activity → gift-card payment
    curl -s -H "Authorization: Bearer $SHOP" -H 'Content-Type: application/json' -X POST {b}/{w}/orders \
      -d '{{"uuid":"demo-club-1","contact":{{"email":"chloe@example.com","first_name":"Chloe"}},"items":[{{"product_id":"club","unit_id":"member","quantity":1}}],"payment":{{"mode":"charge_now","parts":[{{"method":"card","amount":{{"amount":9900,"currency":"EUR"}}}}]}}}}'
    # → lines[0].memberships[0].reference = MEM-…
    curl -s -H "Authorization: Bearer $SHOP" -H 'Content-Type: application/json' -X POST {b}/{w}/orders \
      -d '{{"uuid":"demo-club-2","membership_reference":"MEM-…","items":[{{"product_id":"tasting","unit_id":"adult","quantity":2,"date":"2027-02-05"}}],"payment":{{"mode":"pay_later","parts":[]}}}}'
    curl -s -H "Authorization: Bearer $SHOP" {b}/{w}/memberships/MEM-…/bookings
    curl -s -H "Authorization: Bearer $SHOP" -H 'Content-Type: application/json' -X POST {b}/{w}/orders \
      -d '{{"uuid":"demo-gift-1","contact":{{"email":"eva@example.com"}},"items":[{{"product_id":"tasting","unit_id":"adult","quantity":1}}],"payment":{{"mode":"charge_now","parts":[{{"method":"gift_card","amount":{{"amount":2500,"currency":"EUR"}},"gift_card_code":"{gift}"}}]}}}}'

4. CRM sync with Cloudbeds (needs a Cloudbeds API key; see README "Cloudbeds CRM sync")
    export CLOUDBEDS_KEY_HOTEL=cbat_...
    {run} crm connect {h} --cloudbeds-property-id <id> --api-key-env CLOUDBEDS_KEY_HOTEL
    {run} crm sync {h}

5. Loyalty: the export already wrote a file into {outbox}
    {export}
    curl -s -H "Authorization: Bearer $PMS" "{b}/{h}/loyalty/members?q=lopez"
    {run} loyalty export {h}
"#,
        pms = s.pms_key,
        shop = s.shop_key,
        club = s.club_file.display(),
        n = CLUB_SIZE + 2,
        w = WINERY,
        h = HOTEL,
        code = s.voucher_code,
        gift = s.gift_card_code,
        outbox = s.outbox.display(),
        export = s.export_line,
        run = run,
        addr = addr,
    )
}
