//! Roster import into DynamoDB at an AWS-like round trip: ours and the boto3
//! `batch_writer` peer through the same [`Proxy`] in front of moto, first
//! without faults, then with unprocessed items and throttling, checking
//! afterwards that every member was written (nothing lost to the faults).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use platform::store::ItemStore;

use crate::latency_proxy::{Faults, Proxy};
use crate::moto::{Moto, items_at};
use crate::{Options, Row, generate, spread, stat};

/// Items in every table named `<prefix>-…`, counted straight on moto.
async fn items_under(moto: &Moto, prefix: &str) -> Result<u64, String> {
    let client = moto.items(prefix).client().clone();
    let tables = client
        .list_tables()
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut n = 0u64;
    for t in tables
        .table_names()
        .iter()
        .filter(|t| t.starts_with(&format!("{prefix}-")))
    {
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(t)
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            n += page.count() as u64;
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
    }
    Ok(n)
}

/// Rows per second of our import through `proxy`, and the items it left.
async fn ours(moto: &Moto, proxy: &Proxy, file: &Path, rows: usize) -> Result<(f64, u64), String> {
    let prefix = format!("lat{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    // Tables are created straight on moto: not part of the import.
    moto.items(&prefix)
        .create_tables()
        .await
        .map_err(|e| e.to_string())?;
    let items: Arc<dyn ItemStore> = items_at(&proxy.endpoint, &prefix);
    let (secs, _) = crate::import_into(items, file).await;
    Ok((rows as f64 / secs, items_under(moto, &prefix).await?))
}

/// Rows per second of the boto3 peer through `proxy`, the members it says
/// it wrote and the items its table holds afterwards.
async fn peer(
    opts: &Options,
    moto: &Moto,
    proxy: &Proxy,
    file: &Path,
    rows: usize,
) -> Result<(f64, u64, u64), String> {
    let prefix = format!("peer{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let (secs, members) =
        crate::dynamo_import::run_peer_at(&opts.python, moto, &proxy.endpoint, &prefix, file)?;
    Ok((
        rows as f64 / secs,
        members,
        items_under(moto, &prefix).await?,
    ))
}

/// The two rows: no faults (the speed-up), and faults on (nothing lost).
pub async fn cases(opts: &Options, moto: &Moto, dir: &Path) -> Vec<Row> {
    let n = opts.dynamo_rows;
    let rtt = Duration::from_millis(opts.rtt_ms);
    let file = dir.join(format!("ams_latency_{n}.csv"));
    generate(&file, n).unwrap();
    let mut rows = Vec::new();
    let mut clean_items = None;
    for faults in [
        Faults {
            round_trip: rtt,
            unprocessed: 0.0,
            throttled: 0.0,
        },
        Faults {
            round_trip: rtt,
            unprocessed: opts.unprocessed_share,
            throttled: opts.throttled_share,
        },
    ] {
        let faulty = faults.unprocessed > 0.0 || faults.throttled > 0.0;
        let case = if faulty {
            format!(
                "roster import into DynamoDB via a {} ms round trip, {n} rows, {:.0}% of batch items unprocessed, {:.0}% of requests throttled",
                opts.rtt_ms,
                faults.unprocessed * 100.0,
                faults.throttled * 100.0
            )
        } else {
            format!(
                "roster import into DynamoDB via a {} ms round trip (moto behind a delaying proxy), {n} rows",
                opts.rtt_ms
            )
        };
        let proxy = Proxy::start(&moto.endpoint, faults).await;
        let (mut our_rates, mut peer_rates) = (Vec::new(), Vec::new());
        let (mut our_items, mut lost_peer, mut peer_error) = (Vec::new(), 0u64, None);
        for _ in 0..opts.runs {
            match ours(moto, &proxy, &file, n).await {
                Ok((rate, items)) => {
                    our_rates.push(rate);
                    our_items.push(items);
                }
                Err(e) => {
                    rows.push(crate::na_row(&case, &e));
                    break;
                }
            }
            match peer(opts, moto, &proxy, &file, n).await {
                Ok((rate, members, items)) => {
                    peer_rates.push(rate);
                    lost_peer += members.saturating_sub(items);
                }
                Err(e) => peer_error = Some(e),
            }
        }
        if our_rates.is_empty() {
            continue;
        }
        // Every run writes the same items; the clean run's count is the truth.
        let expected = *clean_items.get_or_insert(our_items[0]);
        let lost_ours: u64 = our_items.iter().map(|i| expected.saturating_sub(*i)).sum();
        let counts = &proxy.counts;
        let ours_txt = format!(
            "{}{}",
            spread(&stat(our_rates.clone()), "rows/s", 0),
            if faulty {
                format!(
                    "; {} items lost; proxy: {} requests, {} throttled, {} items unprocessed",
                    lost_ours,
                    counts.requests.load(Ordering::Relaxed),
                    counts.throttled.load(Ordering::Relaxed),
                    counts.unprocessed_items.load(Ordering::Relaxed)
                )
            } else {
                String::new()
            }
        );
        let (peer_txt, ratio) = if peer_rates.is_empty() {
            (
                format!("n/a: {}", peer_error.unwrap_or_default()),
                "n/a".into(),
            )
        } else {
            let p = stat(peer_rates);
            let lost = if faulty {
                format!("; {lost_peer} members lost")
            } else {
                String::new()
            };
            (
                format!("{} (boto3 batch_writer){lost}", spread(&p, "rows/s", 0)),
                format!("{:.1}×", stat(our_rates).median / p.median),
            )
        };
        rows.push(Row {
            case,
            ours: ours_txt,
            peer: peer_txt,
            ratio,
        });
    }
    let _ = std::fs::remove_file(&file);
    rows
}
