//! Admin commands: the operator's side of the hub (properties, partners,
//! tables). Each returns what to print; `main.rs` prints it.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use domain::ports::{PartnerStore, PropertyStore};
use domain::property::parse_time_zone;
use domain::{Currency, Partner, PartnerId, Property, PropertyId, Scope, StoreError};
use platform::Store;
use platform::auth::generate_key;

pub async fn add_property(
    store: &Store,
    id: &str,
    name: &str,
    tz: &str,
    currency: &str,
) -> anyhow::Result<Property> {
    let property = Property::new(
        PropertyId::parse_live(id)?,
        name,
        parse_time_zone(tz)?,
        Currency::parse(currency)?,
    )?;
    match store.add_property(&property).await {
        Ok(()) => Ok(property),
        Err(StoreError::Conflict) => bail!("property {id} already exists"),
        Err(e) => Err(e.into()),
    }
}

/// Sets a property's club mode (`property add … --club-trial`).
pub async fn set_club_mode(
    store: &Store,
    property: &PropertyId,
    mode: domain::roster::store::ClubMode,
) -> anyhow::Result<()> {
    use domain::roster::store::RosterStore;
    Ok(store.set_club_mode(property, mode).await?)
}

/// Lets `property` accept vouchers issued by `issuer` (portal systems).
pub async fn accept_issuer(
    store: &Store,
    property: &str,
    issuer: &str,
) -> anyhow::Result<Property> {
    let id = PropertyId::parse(property)?;
    let issuer = PropertyId::parse(issuer)?;
    let mut p = store
        .property(&id)
        .await?
        .with_context(|| format!("no property {id}"))?;
    store
        .property(&issuer)
        .await?
        .with_context(|| format!("no property {issuer}"))?;
    if !p.accepts_vouchers_of.contains(&issuer) {
        p.accepts_vouchers_of.push(issuer);
        p.accepts_vouchers_of.sort();
        store.save_property(&p).await?;
    }
    Ok(p)
}

/// Portal pickup: `property` accepts `issuer`'s vouchers and picks up the
/// value and package voucher orders `issuer` sells from now on in its own
/// pickup feed. Settlement is unchanged (redemptions still settle between
/// the redeeming hotel and the issuer).
pub async fn pick_up_orders_of(
    store: &Store,
    property: &str,
    issuer: &str,
) -> anyhow::Result<Property> {
    if property == issuer {
        bail!("a property picks up its own orders already");
    }
    let p = accept_issuer(store, property, issuer).await?;
    let issuer = PropertyId::parse(issuer)?;
    let mut i = store
        .property(&issuer)
        .await?
        .with_context(|| format!("no property {issuer}"))?;
    if !i.orders_picked_up_by.contains(&p.id) {
        i.orders_picked_up_by.push(p.id.clone());
        i.orders_picked_up_by.sort();
        store.save_property(&i).await?;
    }
    Ok(p)
}

async fn find_partner(store: &Store, id: &str) -> anyhow::Result<Partner> {
    store
        .partners()
        .await?
        .into_iter()
        .find(|p| p.id.0 == id)
        .with_context(|| format!("no partner {id}; see `guesthub partner list`"))
}

/// Gives a partner a new key; the old one stops working at once.
pub async fn rotate_partner_key(store: &Store, id: &str) -> anyhow::Result<(Partner, String)> {
    let old = find_partner(store, id).await?;
    let key = generate_key(old.test);
    let mut partner = old.clone();
    partner.key_id = key.key_id;
    partner.key_hash = key.secret_hash;
    store.replace_partner(&old.key_id, &partner).await?;
    Ok((partner, key.key))
}

/// Disables (or re-enables) a partner's key.
pub async fn set_partner_disabled(
    store: &Store,
    id: &str,
    disabled: bool,
) -> anyhow::Result<Partner> {
    let mut partner = find_partner(store, id).await?;
    partner.disabled = disabled;
    store
        .replace_partner(&partner.key_id.clone(), &partner)
        .await?;
    Ok(partner)
}

/// Creates a partner and returns it with its key (shown this once).
pub async fn add_partner(
    store: &Store,
    name: &str,
    properties: &[String],
    scopes: &[String],
) -> anyhow::Result<(Partner, String)> {
    add_partner_in_mode(store, name, properties, scopes, false).await
}

/// Creates a partner; `test`: a sandbox partner, whose `ghk_test_…` key
/// works on test data only.
pub async fn add_partner_in_mode(
    store: &Store,
    name: &str,
    properties: &[String],
    scopes: &[String],
    test: bool,
) -> anyhow::Result<(Partner, String)> {
    domain::name::one_line("name", name)?;
    let name = name.trim();
    if name.is_empty() {
        bail!("a partner needs a name");
    }
    let mut props = BTreeSet::new();
    for p in properties.iter().filter(|p| !p.trim().is_empty()) {
        let id = PropertyId::parse(p.trim())?;
        if store.property(&id).await?.is_none() {
            bail!("no property {id}; add it first with `guesthub property add`");
        }
        props.insert(id);
    }
    if props.is_empty() {
        bail!("a partner needs at least one property (--properties a,b)");
    }
    let scopes = scopes
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.parse::<Scope>())
        .collect::<Result<BTreeSet<_>, _>>()?;
    if scopes.is_empty() {
        bail!("a partner needs at least one scope (--scopes vouchers:read,...)");
    }
    let key = generate_key(test);
    let partner = Partner {
        id: PartnerId(uuid::Uuid::now_v7().to_string()),
        name: name.to_owned(),
        scopes,
        properties: props,
        key_id: key.key_id,
        key_hash: key.secret_hash,
        disabled: false,
        test,
    };
    store.add_partner(&partner).await?;
    Ok((partner, key.key))
}

pub async fn existing_property(store: &Store, property: &str) -> anyhow::Result<PropertyId> {
    let id = PropertyId::parse(property.trim())?;
    if store.property(&id).await?.is_none() {
        bail!("no property {id}");
    }
    Ok(id)
}

/// Erases a person in one property (what `POST …/erasures` does).
pub async fn erase_person(
    store: &Store,
    property: &str,
    email: &str,
) -> anyhow::Result<domain::erasure::Erasure> {
    let id = existing_property(store, property).await?;
    let email = domain::Email::parse(email)?;
    Ok(store.erase_person(&id, Some(&email), None).await?)
}

/// Takes an email off a property's roster suppression list.
pub async fn unsuppress(store: &Store, property: &str, email: &str) -> anyhow::Result<bool> {
    let id = existing_property(store, property).await?;
    let email = domain::Email::parse(email)?;
    Ok(store.unsuppress(&id, &email).await?)
}

/// Sets a property's retention (0: off).
pub async fn set_retention(store: &Store, property: &str, days: u32) -> anyhow::Result<Property> {
    let id = existing_property(store, property).await?;
    let mut p = store
        .property(&id)
        .await?
        .with_context(|| format!("no property {id}"))?;
    p.retention_days = (days > 0).then_some(days);
    store.save_property(&p).await?;
    Ok(p)
}
