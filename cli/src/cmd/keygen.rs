//! `vouch keygen`.

use anyhow::{Context as _, Result};
use serde_json::json;
use vouch_attest::{SecretKey, public_key_path, write_public_key, write_secret_key};

use crate::args::KeygenArgs;
use crate::exit::Exit;
use crate::output;

pub(crate) fn run(a: &KeygenArgs) -> Result<Exit> {
    let key = SecretKey::generate()?;
    let public = key.public_key();
    let pub_path = public_key_path(&a.out);
    write_secret_key(&a.out, &key).context("writing the secret key")?;
    write_public_key(&pub_path, &public).context("writing the public key")?;
    if a.json {
        output::json(&json!({
            "secret_key": a.out,
            "public_key_file": pub_path,
            "public_key": public.to_text(),
        }))?;
    } else {
        output::text(&format!(
            "secret key  {} (mode 0600)\npublic key  {}\n            {}\n",
            a.out.display(),
            pub_path.display(),
            public
        ))?;
    }
    Ok(Exit::Ok)
}
