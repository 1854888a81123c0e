//! Chunk encryption of segment files: per-segment AES-256-GCM keys derived from epoch keys, and
//! age-style STREAM nonces (chunk counter || final flag) so chunks cannot be truncated,
//! reordered, or moved between segments or cameras without failing authentication.
//!
//! The final-flag byte has three values instead of age's two: 0 (not the last chunk), 1 (the
//! last chunk, written when the segment was closed normally) and 2 (the last chunk, written by
//! crash recovery). Recovery appends its own final chunk after the last authenticated one; a
//! torn normal final chunk may have occupied that index under flag 1 with other plaintext, and
//! reusing (index, 1) would reuse an AES-GCM nonce. Flag 2 is used only by recovery, whose output
//! is a deterministic function of the authenticated chunks, so a nonce never meets two plaintexts.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

use super::format::{SALT_LEN, TAG_LEN};

/// Length of every symmetric key in the hierarchy (master, epoch, segment).
pub const KEY_LEN: usize = 32;

/// The AES-256-GCM key of one segment.
pub struct SegmentKey(LessSafeKey);

impl std::fmt::Debug for SegmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SegmentKey(..)")
    }
}

/// HKDF output length marker for a 32-byte key.
struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

/// HKDF-SHA256(ikm = `secret`, salt, info = concatenation of `info`) -> 32 bytes.
pub fn hkdf_sha256(secret: &[u8; KEY_LEN], salt: &[u8], info: &[&[u8]]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(secret);
    // `expand` and `fill` fail only if the requested length exceeds 255 * 32 bytes; 32 never does.
    if let Ok(okm) = prk.expand(info, Len32) {
        let _ = okm.fill(&mut out);
    }
    out
}

/// Builds an AES-256-GCM key from 32 bytes.
pub fn aes_key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    // `UnboundKey::new` fails only on a wrong key length, which the array type rules out.
    match UnboundKey::new(&AES_256_GCM, bytes) {
        Ok(k) => LessSafeKey::new(k),
        Err(_) => unreachable!("AES-256 key length is fixed at 32"),
    }
}

impl SegmentKey {
    /// Segment key = HKDF-SHA256(epoch key, salt, "nvr/v1/seg" || camera id || segment id).
    pub fn derive(
        epoch_key: &[u8; KEY_LEN],
        salt: &[u8; SALT_LEN],
        camera_id: i64,
        segment_id: i64,
    ) -> Self {
        let cam = camera_id.to_be_bytes();
        let seg = segment_id.to_be_bytes();
        let k = hkdf_sha256(epoch_key, salt, &[b"nvr/v1/seg", &cam, &seg]);
        SegmentKey(aes_key(&k))
    }

    /// Encrypts `buf` in place and appends the tag.
    pub fn seal_chunk(&self, index: u64, kind: ChunkKind, aad: &[u8; 32], buf: &mut Vec<u8>) {
        let tag = self
            .0
            .seal_in_place_separate_tag(chunk_nonce(index, kind), Aad::from(aad), buf);
        match tag {
            Ok(t) => buf.extend_from_slice(t.as_ref()),
            // Sealing fails only for inputs over ~64 GiB; chunks are 64 KiB.
            Err(_) => unreachable!("AES-GCM seal of a 64 KiB chunk cannot fail"),
        }
    }

    /// Authenticates and decrypts a chunk in place; returns the plaintext length.
    pub fn open_chunk(
        &self,
        index: u64,
        kind: ChunkKind,
        aad: &[u8; 32],
        buf: &mut [u8],
    ) -> Result<usize, ChunkAuthError> {
        if buf.len() < TAG_LEN {
            return Err(ChunkAuthError);
        }
        self.0
            .open_in_place(chunk_nonce(index, kind), Aad::from(aad), buf)
            .map(|p| p.len())
            .map_err(|_| ChunkAuthError)
    }

    /// Authenticates and decrypts a chunk whose ciphertext and tag are `in_out[src..]`, writing
    /// the plaintext to the start of `in_out` (one pass: no separate move). Lets a reader
    /// decrypt several adjacent chunks read with one call into their plaintexts back to back
    /// in the same buffer. Returns the plaintext length.
    pub fn open_chunk_within(
        &self,
        index: u64,
        kind: ChunkKind,
        aad: &[u8; 32],
        in_out: &mut [u8],
        src: usize,
    ) -> Result<usize, ChunkAuthError> {
        if in_out.len() < src + TAG_LEN {
            return Err(ChunkAuthError);
        }
        self.0
            .open_within(chunk_nonce(index, kind), Aad::from(aad), in_out, src..)
            .map(|p| p.len())
            .map_err(|_| ChunkAuthError)
    }
}

/// A chunk failed authentication: wrong key, position, final flag, or altered bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkAuthError;

/// Where a chunk stands in its segment; encoded in the nonce's last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    /// Not the last chunk: exactly 64 KiB of plaintext.
    Inner,
    /// The last chunk of a normally closed segment.
    Final,
    /// The last chunk, appended by crash recovery.
    RecoveredFinal,
}

/// 11-byte big-endian chunk counter followed by the flag byte (age's STREAM construction).
fn chunk_nonce(index: u64, kind: ChunkKind) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = match kind {
        ChunkKind::Inner => 0,
        ChunkKind::Final => 1,
        ChunkKind::RecoveredFinal => 2,
    };
    Nonce::assume_unique_for_key(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = SegmentKey::derive(&[1; 32], &[2; 16], 3, 4);
        let aad = [5u8; 32];
        let mut buf = b"hello chunk".to_vec();
        k.seal_chunk(7, ChunkKind::Inner, &aad, &mut buf);
        let sealed = buf.clone();
        let n = k
            .open_chunk(7, ChunkKind::Inner, &aad, &mut buf)
            .expect("open");
        assert_eq!(&buf[..n], b"hello chunk");
        // Wrong index, final flag, AAD, segment or camera: all refused.
        assert!(
            k.open_chunk(8, ChunkKind::Inner, &aad, &mut sealed.clone())
                .is_err()
        );
        assert!(
            k.open_chunk(7, ChunkKind::Final, &aad, &mut sealed.clone())
                .is_err()
        );
        assert!(
            k.open_chunk(7, ChunkKind::RecoveredFinal, &aad, &mut sealed.clone())
                .is_err()
        );
        assert!(
            k.open_chunk(7, ChunkKind::Inner, &[6; 32], &mut sealed.clone())
                .is_err()
        );
        let other_seg = SegmentKey::derive(&[1; 32], &[2; 16], 3, 5);
        assert!(
            other_seg
                .open_chunk(7, ChunkKind::Inner, &aad, &mut sealed.clone())
                .is_err()
        );
        // Decrypting with a shift gives the same plaintext, and refuses the same tampering.
        let mut shifted = vec![0u8; 5];
        shifted.extend_from_slice(&sealed);
        let n = k
            .open_chunk_within(7, ChunkKind::Inner, &aad, &mut shifted, 5)
            .expect("open within");
        assert_eq!(&shifted[..n], b"hello chunk");
        let mut shifted = vec![0u8; 5];
        shifted.extend_from_slice(&sealed);
        shifted[6] ^= 1;
        assert!(
            k.open_chunk_within(7, ChunkKind::Inner, &aad, &mut shifted, 5)
                .is_err()
        );
        let other_cam = SegmentKey::derive(&[1; 32], &[2; 16], 4, 4);
        assert!(
            other_cam
                .open_chunk(7, ChunkKind::Inner, &aad, &mut sealed.clone())
                .is_err()
        );
    }
}
