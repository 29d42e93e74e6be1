//! `vouch config check`.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::exit::Exit;
use crate::output;

pub(crate) fn check(file: Option<&Path>, as_json: bool) -> Result<Exit> {
    let path = crate::config::path(file);
    let c = crate::config::load(&path)?;
    let on_unknown = serde_json::to_value(c.on_unknown)?;
    if as_json {
        output::json(&json!({
            "file": c.path,
            "valid": true,
            "nodes": c.nodes,
            "timeout_secs": c.timeout_secs,
            "on_unknown": on_unknown,
            "cache_dir": c.cache_dir,
            "policy": c.policy_source,
            "threshold": c.policy.threshold(),
            "configured": c.policy.configured(),
        }))?;
    } else {
        output::text(&format!(
            "{}: valid\nnodes: {}\npolicy: {} ({} of {} configured)\non_unknown: {}\ncache: {}\n",
            c.path.display(),
            if c.nodes.is_empty() {
                "(none)".to_string()
            } else {
                c.nodes.join(", ")
            },
            c.policy_source,
            c.policy.threshold(),
            c.policy.configured(),
            on_unknown.as_str().unwrap_or("?"),
            c.cache_dir.display()
        ))?;
    }
    Ok(Exit::Ok)
}
