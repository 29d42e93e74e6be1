//! `vouch policy check`.

use std::path::Path;

use anyhow::{Context as _, Result};
use comfy_table::Table;
use serde_json::json;
use vouch_attest::{CountBy, Policy};

use crate::exit::Exit;
use crate::output;

/// Reads and validates a policy file.
pub(crate) fn load(path: &Path) -> Result<Policy> {
    let bytes = output::read_limited(path, 1 << 20)?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))?;
    Policy::from_toml(&text).with_context(|| format!("{}: invalid policy", path.display()))
}

pub(crate) fn check(path: &Path, as_json: bool) -> Result<Exit> {
    let policy = load(path)?;
    let unit = match policy.count_by() {
        CountBy::Signers => "signers",
        CountBy::Operators => "operators",
    };
    if as_json {
        output::json(&json!({
            "file": path,
            "valid": true,
            "threshold": policy.threshold(),
            "configured": policy.configured(),
            "count": policy.count_by(),
            "veto_on_bad": policy.veto_on_bad(),
            "reject_on_fork": policy.reject_on_fork(),
            "signers": policy.signers(),
        }))?;
        return Ok(Exit::Ok);
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["name", "operator", "key"]);
    for s in policy.signers() {
        table.add_row([s.name.clone(), s.operator.clone(), s.key.to_text()]);
    }
    output::text(&format!(
        "{}: valid\nthreshold {} of {} configured {unit}; veto_on_bad {}; reject_on_fork {}\n{table}\n",
        path.display(),
        policy.threshold(),
        policy.configured(),
        policy.veto_on_bad(),
        policy.reject_on_fork(),
    ))?;
    Ok(Exit::Ok)
}
