//! The strong ETag: a SHA-256 over everything that determines the file's bytes.
//!
//! Hashed, in order, each variable-length field prefixed by its length so that no two
//! different requests hash the same byte stream: [`ETAG_FORMAT_VERSION`]; every sample entry
//! (box bytes, width, height); every part (segment id, sample entry index, frame range,
//! content tag); the start trim; the duration limit; the creation time; an export's additions. The frames themselves
//! are NOT hashed (that would cost a pass over up to ~100k frames): a part's `content_tag`
//! stands for its segment's frames and bytes, so it must change whenever they do.

use ring::digest;

use super::Mp4Request;

/// Bump whenever the bytes produced for a given request change (box layout, brands, the
/// last-frame duration rule...), so caches holding files of the old layout are invalidated.
const ETAG_FORMAT_VERSION: &[u8] = b"nvr-storage virtual mp4, layout 1";

/// Computes the quoted strong ETag of `req`.
pub(super) fn compute(req: &Mp4Request) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    fn put_u64(ctx: &mut digest::Context, v: u64) {
        ctx.update(&v.to_be_bytes());
    }
    put_u64(&mut ctx, ETAG_FORMAT_VERSION.len() as u64);
    ctx.update(ETAG_FORMAT_VERSION);

    put_u64(&mut ctx, req.entries.len() as u64);
    for e in &req.entries {
        put_u64(&mut ctx, e.box_bytes.len() as u64);
        ctx.update(&e.box_bytes);
        ctx.update(&e.width.to_be_bytes());
        ctx.update(&e.height.to_be_bytes());
    }

    put_u64(&mut ctx, req.parts.len() as u64);
    for p in &req.parts {
        put_u64(&mut ctx, p.segment_id);
        put_u64(&mut ctx, p.sample_entry_idx as u64);
        put_u64(&mut ctx, p.frame_range.start as u64);
        put_u64(&mut ctx, p.frame_range.end as u64);
        ctx.update(&p.content_tag);
    }

    put_u64(&mut ctx, req.start_trim_90k);
    match req.duration_90k {
        None => ctx.update(&[0]),
        Some(d) => {
            ctx.update(&[1]);
            put_u64(&mut ctx, d);
        }
    }
    ctx.update(&req.creation_time_unix_secs.to_be_bytes());
    // An export's additions, as their debug rendering: exports are not cached, so this only
    // has to differ when they do.
    if let Some(x) = &req.extras {
        let s = format!("{x:?}");
        put_u64(&mut ctx, s.len() as u64);
        ctx.update(s.as_bytes());
    }

    let digest = ctx.finish();
    format!("\"{}\"", hex(digest.as_ref()))
}

/// Lower-case hexadecimal.
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}
