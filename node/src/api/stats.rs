//! `GET /api/vouch/v1/stats`: the researchers' counters (see
//! `store::stats`), from memory.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::api::state::AppState;
use crate::store::stats::Outcomes;

fn rate(part: u64, whole: u64) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        json!(part as f64 / whole as f64)
    }
}

fn outcomes(o: &Outcomes) -> Value {
    json!({ "good": o.good, "bad": o.bad, "fail": o.fail, "rate": rate(o.good, o.total()) })
}

/// The answer.
pub async fn stats(State(s): State<AppState>) -> Json<Value> {
    let snap = s.store.stats();
    let signers: Vec<Value> = snap
        .signers
        .iter()
        .map(|(k, groups)| {
            let mut total = Outcomes::default();
            let repos: Vec<Value> = groups
                .iter()
                .map(|(g, o)| {
                    total.good += o.good;
                    total.bad += o.bad;
                    total.fail += o.fail;
                    let mut parts = g.splitn(3, '/');
                    let mut v = outcomes(o);
                    v["distribution"] = json!(parts.next().unwrap_or_default());
                    v["release"] = match parts.next() {
                        Some("-") | None => Value::Null,
                        Some(r) => json!(r),
                    };
                    v["repository"] = match parts.next() {
                        Some("-") | None => Value::Null,
                        Some(c) => json!(c),
                    };
                    v
                })
                .collect();
            let mut v = outcomes(&total);
            v["signer"] = json!(k.to_text());
            v["this_node"] = json!(*k == s.node_key);
            v["repositories"] = json!(repos);
            v
        })
        .collect();
    let agreement: Vec<Value> = snap
        .pairs
        .iter()
        .map(|((a, b), c)| {
            json!({
                "a": a.to_text(), "b": b.to_text(),
                "both": c.both, "same_outcome": c.same_outcome,
                "both_bad": c.both_bad, "same_rebuilt": c.same_rebuilt,
                "outcome_agreement": rate(c.same_outcome, c.both),
                "rebuilt_agreement": rate(c.same_rebuilt, c.both_bad),
            })
        })
        .collect();
    Json(json!({
        "verdicts": snap.verdicts,
        "tracked": snap.tracked.iter().map(|k| k.to_text()).collect::<Vec<_>>(),
        "signers": signers,
        "agreement": agreement,
        "others": outcomes(&snap.others),
    }))
}
