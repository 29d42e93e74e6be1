//! The encoding of job records and package rows: packed CBOR (fields by
//! number, digests as bytes), about a third of their JSON. Records written
//! as JSON by earlier versions (they start with `{`, which no CBOR map
//! does) are still read.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// Encodes `value` for `tree`.
pub(crate) fn encode<T: Serialize>(value: &T, tree: &'static str) -> Result<Vec<u8>, StoreError> {
    // Sized for a job record at once (`to_vec_packed` grows from empty).
    let mut out = Vec::with_capacity(1024);
    value
        .serialize(
            &mut serde_cbor::Serializer::new(serde_cbor::ser::IoWrite::new(&mut out))
                .packed_format(),
        )
        .map_err(|e| StoreError::Damaged {
            tree,
            detail: e.to_string(),
        })?;
    Ok(out)
}

/// Decodes a record of `tree`, packed CBOR or older JSON.
pub(crate) fn decode<T: DeserializeOwned>(v: &[u8], tree: &'static str) -> Result<T, StoreError> {
    let r = if v.first() == Some(&b'{') {
        serde_json::from_slice(v).map_err(|e| e.to_string())
    } else {
        serde_cbor::from_slice(v).map_err(|e| e.to_string())
    };
    r.map_err(|detail| StoreError::Damaged { tree, detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::JobRecord;
    use crate::sync::Job;

    fn record() -> JobRecord {
        JobRecord::queued(Job::debian_hello(&["hello"]), 1)
    }

    #[test]
    fn packed_records_are_smaller_and_json_ones_still_read() {
        let r = record();
        let packed = encode(&r, "jobs").unwrap();
        let json = serde_json::to_vec(&r).unwrap();
        assert!(
            packed.len() * 2 < json.len(),
            "{} vs {}",
            packed.len(),
            json.len()
        );
        assert_eq!(decode::<JobRecord>(&packed, "jobs").unwrap(), r);
        assert_eq!(decode::<JobRecord>(&json, "jobs").unwrap(), r);
        let err = decode::<JobRecord>(b"\xff garbage", "jobs").unwrap_err();
        assert!(err.to_string().contains("jobs"), "{err}");
    }
}
