//! Integrity from ingest time: the per-stream hash chain over sealed segments, the messages the
//! recorder's Ed25519 key signs (chain heads, export manifests), and the audit log's entry hash.
//! Pure functions, shared by the writer, `nvr check` and `nvr verify` (which needs no data dir).
//!
//! All integers are encoded as 8-byte big-endian; variable-length strings are prefixed by their
//! 8-byte length, so no two different inputs hash alike. A main stream's chain and heads use the
//! domains they had before cameras had two streams (so existing chains and bundles still
//! verify); a sub-stream's have their own (`.../sub`), so no sub-stream link or head can pass
//! for a main-stream one (the messages also differ in length).

use nvr_core::Stream;
use ring::digest::{Context, SHA256};

/// The chain value before a stream's first segment.
pub const CHAIN_START: [u8; 32] = [0; 32];

/// What the chain commits to for one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainLink {
    /// The camera's stream whose chain this is.
    pub stream: Stream,
    pub segment_id: i64,
    pub camera_id: i64,
    pub start_90k: i64,
    pub end_90k: i64,
    pub frames: i64,
    /// SHA-256 of the segment's plaintext records, computed while writing.
    pub sha256: [u8; 32],
}

fn finish(ctx: Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// chain = SHA-256("nvr/v1/chain" || prev || segment id || camera id || start || end || frames
/// || segment sha256) for a main stream, "nvr/v1/chain/sub" first for a sub-stream.
pub fn chain_next(prev: &[u8; 32], l: &ChainLink) -> [u8; 32] {
    let mut c = Context::new(&SHA256);
    c.update(match l.stream {
        Stream::Main => b"nvr/v1/chain".as_slice(),
        Stream::Sub => b"nvr/v1/chain/sub".as_slice(),
    });
    c.update(prev);
    for v in [l.segment_id, l.camera_id, l.start_90k, l.end_90k, l.frames] {
        c.update(&v.to_be_bytes());
    }
    c.update(&l.sha256);
    finish(c)
}

/// The message signed for a chain head: "nvr/v1/chain-head" (a sub-stream's:
/// "nvr/v1/chain-head/sub") || camera id || segment id || chain || signed time.
pub fn chain_head_message(
    stream: Stream,
    camera_id: i64,
    segment_id: i64,
    chain: &[u8; 32],
    signed_90k: i64,
) -> Vec<u8> {
    let mut m = match stream {
        Stream::Main => b"nvr/v1/chain-head".to_vec(),
        Stream::Sub => b"nvr/v1/chain-head/sub".to_vec(),
    };
    m.extend_from_slice(&camera_id.to_be_bytes());
    m.extend_from_slice(&segment_id.to_be_bytes());
    m.extend_from_slice(chain);
    m.extend_from_slice(&signed_90k.to_be_bytes());
    m
}

/// One audit entry's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditFields<'a> {
    pub id: i64,
    pub time_90k: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub object: &'a str,
    pub detail: &'a str,
}

/// sha256 = SHA-256("nvr/v1/audit" || prev || id || time || actor || action || object || detail),
/// strings length-prefixed.
pub fn audit_hash(prev: &[u8; 32], f: &AuditFields<'_>) -> [u8; 32] {
    let mut c = Context::new(&SHA256);
    c.update(b"nvr/v1/audit");
    c.update(prev);
    c.update(&f.id.to_be_bytes());
    c.update(&f.time_90k.to_be_bytes());
    for s in [f.actor, f.action, f.object, f.detail] {
        c.update(&(s.len() as u64).to_be_bytes());
        c.update(s.as_bytes());
    }
    finish(c)
}

/// Serializes JSON canonically: object keys sorted, no whitespace, so the same content always
/// gives the same bytes (and the same signature), whatever built the value.
pub fn canonical_json(v: &serde_json::Value) -> Vec<u8> {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&m[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sort(v)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(id: i64) -> ChainLink {
        ChainLink {
            stream: Stream::Main,
            segment_id: id,
            camera_id: 1,
            start_90k: id * 100,
            end_90k: id * 100 + 100,
            frames: 10,
            sha256: [id as u8; 32],
        }
    }

    #[test]
    fn chain_depends_on_every_field_and_the_past() {
        let a = chain_next(&CHAIN_START, &link(1));
        let b = chain_next(&a, &link(2));
        assert_ne!(b, chain_next(&CHAIN_START, &link(2)), "the past matters");
        let mut l = link(2);
        for change in 0..6 {
            let mut m = l;
            match change {
                0 => m.segment_id += 1,
                1 => m.camera_id += 1,
                2 => m.start_90k += 1,
                3 => m.end_90k += 1,
                4 => m.frames += 1,
                _ => m.sha256[0] ^= 1,
            }
            assert_ne!(chain_next(&a, &m), b, "field {change}");
        }
        l.frames = 10;
        assert_eq!(chain_next(&a, &l), b);
        // The same link in a sub-stream's chain is another value, and so is its signed head.
        let sub = ChainLink {
            stream: Stream::Sub,
            ..l
        };
        assert_ne!(chain_next(&a, &sub), b);
        assert_ne!(
            chain_head_message(Stream::Main, 1, 2, &b, 3),
            chain_head_message(Stream::Sub, 1, 2, &b, 3)
        );
    }

    #[test]
    fn the_main_stream_chain_is_unchanged() {
        // A value computed before cameras had streams: existing chains and bundles verify.
        let c = chain_next(&CHAIN_START, &link(1));
        assert_eq!(
            hex::encode(c),
            "19eab3e0b4a7006545e860bd22dbc256106033093ead3793ab4df7eda998be40"
        );
    }

    proptest::proptest! {
        /// A manifest read back is still canonical whatever floats it holds (a camera's clock
        /// offset in ms is one): parsing must give back the very numbers that were written,
        /// or a genuine bundle fails its own verification (`float_roundtrip`).
        #[test]
        fn canonical_json_survives_a_round_trip(x in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO, n in proptest::prelude::any::<i64>()) {
            let written = canonical_json(&serde_json::json!({"offset_ms": x, "n": n, "q": n as f64 / 90.0}));
            let read: serde_json::Value = serde_json::from_slice(&written).expect("JSON");
            proptest::prop_assert_eq!(canonical_json(&read), written);
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = serde_json::json!({"b": [{"z": 1, "a": 2}], "a": "x"});
        assert_eq!(
            canonical_json(&v),
            br#"{"a":"x","b":[{"a":2,"z":1}]}"#.to_vec()
        );
    }

    #[test]
    fn audit_hash_separates_fields() {
        let f = |actor, action| AuditFields {
            id: 1,
            time_90k: 2,
            actor,
            action,
            object: "camera:1",
            detail: "{}",
        };
        assert_ne!(
            audit_hash(&[0; 32], &f("ab", "c")),
            audit_hash(&[0; 32], &f("a", "bc"))
        );
    }
}
