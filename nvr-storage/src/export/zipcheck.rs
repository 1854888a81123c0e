//! The structure of a bundle's zip, checked before anything in it is read: `nvr verify` runs on
//! files from anywhere, so a zip whose central directory and local headers disagree (two
//! readers would see two different bundles), that names an entry twice (which one is "the"
//! manifest?), or whose declared sizes exceed the file is refused before any allocation is
//! made from a number inside it.
//!
//! What is accepted is what [`super::write_bundle`] writes: stored (not compressed),
//! unencrypted entries with flat names, each entry's data inside the file and before the
//! central directory, no two entries overlapping. Zip64 records are followed (bundles over
//! 4 GiB use them). Layout reference: PKWARE APPNOTE.TXT 6.3 (sections 4.3.7, 4.3.12, 4.3.14-16,
//! 4.5.3).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// Signatures (little-endian "PK\x03\x04" etc.).
const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;

/// Fixed lengths of the records, before their variable parts.
const LOCAL_HEADER_LEN: u64 = 30;
const CENTRAL_HEADER_LEN: usize = 46;
const EOCD_LEN: u64 = 22;
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD_LEN: usize = 56;
/// The end record may be followed by a comment of at most 65,535 bytes.
const MAX_COMMENT_LEN: u64 = 0xffff;
/// The zip64 extended-information extra field's id.
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// General purpose flags: bit 0 encrypted, bit 3 sizes in a data descriptor after the data.
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
/// Compression method 0: stored.
const METHOD_STORED: u16 = 0;
/// A bundle holds a dozen files and one MP4 per camera; far fewer than this.
const MAX_ENTRIES: u64 = 10_000;

/// One entry as the central directory and its local header agree it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    /// Where the entry's data starts in the file, and its length.
    pub data_offset: u64,
    pub size_bytes: u64,
    pub crc32: u32,
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64le(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_at(f: &mut File, at: u64, len: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(at))
        .and_then(|_| f.read_exact(&mut buf))
        .map_err(|e| format!("the zip is truncated or unreadable at byte {at}: {e}"))?;
    Ok(buf)
}

/// The central directory's place and entry count, from the end records.
fn central_directory(f: &mut File, file_len: u64) -> Result<(u64, u64, u64), String> {
    if file_len < EOCD_LEN {
        return Err("not a zip: too short for an end of central directory record".into());
    }
    let tail_len = (EOCD_LEN + MAX_COMMENT_LEN).min(file_len);
    let tail_start = file_len - tail_len;
    // tail_len <= 65,557: a small, fixed bound.
    let tail = read_at(f, tail_start, tail_len as usize)?;
    let eocd = (0..=tail.len() - EOCD_LEN as usize)
        .rev()
        .find(|&i| {
            u32le(&tail, i) == EOCD_SIG
                && i + EOCD_LEN as usize + usize::from(u16le(&tail, i + 20)) == tail.len()
        })
        .ok_or("not a zip: no end of central directory record")?;
    let e = &tail[eocd..];
    if u16le(e, 4) != 0 || u16le(e, 6) != 0 || u16le(e, 8) != u16le(e, 10) {
        return Err("the zip spans several disks".into());
    }
    let mut entries = u64::from(u16le(e, 10));
    let mut cd_size = u64::from(u32le(e, 12));
    let mut cd_offset = u64::from(u32le(e, 16));
    let eocd_pos = tail_start + eocd as u64;
    if entries == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff {
        let locator_pos = eocd_pos
            .checked_sub(ZIP64_LOCATOR_LEN)
            .ok_or("zip64 end record locator missing")?;
        let loc = read_at(f, locator_pos, ZIP64_LOCATOR_LEN as usize)?;
        if u32le(&loc, 0) != ZIP64_LOCATOR_SIG {
            return Err("zip64 end record locator missing".into());
        }
        let z64_pos = u64le(&loc, 8);
        if z64_pos.saturating_add(ZIP64_EOCD_LEN as u64) > locator_pos {
            return Err("the zip64 end record lies outside the file".into());
        }
        let z = read_at(f, z64_pos, ZIP64_EOCD_LEN)?;
        if u32le(&z, 0) != ZIP64_EOCD_SIG {
            return Err("zip64 end record missing".into());
        }
        if u32le(&z, 16) != 0 || u32le(&z, 20) != 0 || u64le(&z, 24) != u64le(&z, 32) {
            return Err("the zip spans several disks".into());
        }
        entries = u64le(&z, 32);
        cd_size = u64le(&z, 40);
        cd_offset = u64le(&z, 48);
    }
    if cd_offset
        .checked_add(cd_size)
        .is_none_or(|end| end > eocd_pos)
    {
        return Err(format!(
            "the central directory ({cd_size} bytes at {cd_offset}) does not fit in the file \
             ({file_len} bytes)"
        ));
    }
    if entries > MAX_ENTRIES || entries.saturating_mul(CENTRAL_HEADER_LEN as u64) > cd_size {
        return Err(format!(
            "the zip declares {entries} entries in a {cd_size}-byte central directory"
        ));
    }
    Ok((cd_offset, cd_size, entries))
}

/// Takes the values a zip64 extra field replaces (those read as all ones), in APPNOTE order:
/// uncompressed size, compressed size, local header offset.
fn apply_zip64(extra: &[u8], fields: &mut [&mut u64]) -> Result<(), String> {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let id = u16le(extra, i);
        let len = usize::from(u16le(extra, i + 2));
        let body = extra
            .get(i + 4..i + 4 + len)
            .ok_or("an extra field runs past its header")?;
        if id == ZIP64_EXTRA_ID {
            let mut at = 0;
            for f in fields.iter_mut().filter(|f| ***f == 0xffff_ffff) {
                **f = u64le(
                    body.get(at..at + 8)
                        .ok_or("a zip64 extra field is too short")?,
                    0,
                );
                at += 8;
            }
            return Ok(());
        }
        i += 4 + len;
    }
    if fields.iter().any(|f| **f == 0xffff_ffff) {
        return Err("a zip64 size without its zip64 extra field".into());
    }
    Ok(())
}

/// Reads and checks the zip structure of `f`; returns its entries in central directory order.
pub fn check_zip(f: &mut File) -> Result<Vec<ZipEntry>, String> {
    let file_len = f
        .metadata()
        .map_err(|e| format!("cannot stat the bundle: {e}"))?
        .len();
    let (cd_offset, cd_size, count) = central_directory(f, file_len)?;
    // cd_size was checked to fit inside the file: the allocation is bounded by its real size.
    let cd = read_at(
        f,
        cd_offset,
        usize::try_from(cd_size).map_err(|e| e.to_string())?,
    )?;
    let mut entries = Vec::new();
    let mut names = BTreeSet::new();
    let mut at = 0usize;
    for _ in 0..count {
        let h = cd
            .get(at..at + CENTRAL_HEADER_LEN)
            .ok_or("the central directory ends inside an entry")?;
        if u32le(h, 0) != CENTRAL_HEADER_SIG {
            return Err(format!(
                "central directory entry {} is malformed",
                entries.len()
            ));
        }
        let flags = u16le(h, 8);
        let method = u16le(h, 10);
        let crc32 = u32le(h, 16);
        let mut csize = u64::from(u32le(h, 20));
        let mut usize_ = u64::from(u32le(h, 24));
        let name_len = usize::from(u16le(h, 28));
        let extra_len = usize::from(u16le(h, 30));
        let comment_len = usize::from(u16le(h, 32));
        let mut local = u64::from(u32le(h, 42));
        let var = at + CENTRAL_HEADER_LEN;
        let raw_name = cd
            .get(var..var + name_len)
            .ok_or("a central directory name runs past the directory")?;
        let extra = cd
            .get(var + name_len..var + name_len + extra_len)
            .ok_or("a central directory extra field runs past the directory")?;
        apply_zip64(extra, &mut [&mut usize_, &mut csize, &mut local])?;
        at = var + name_len + extra_len + comment_len;
        let name = std::str::from_utf8(raw_name)
            .map_err(|_| "an entry name is not UTF-8".to_string())?
            .to_owned();
        if name.is_empty() || name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
            return Err(format!("entry name {name:?} is not a plain file name"));
        }
        if !names.insert(name.clone()) {
            return Err(format!(
                "{name} appears twice in the zip (readers could pick either)"
            ));
        }
        if flags & FLAG_ENCRYPTED != 0 || method != METHOD_STORED || csize != usize_ {
            return Err(format!(
                "{name} is compressed or encrypted (bundles store every file as it is)"
            ));
        }

        // The local header must describe the same entry.
        let lh = read_at(f, local, LOCAL_HEADER_LEN as usize)
            .map_err(|_| format!("{name}: local header outside the file"))?;
        if u32le(&lh, 0) != LOCAL_HEADER_SIG {
            return Err(format!("{name}: no local header where the directory says"));
        }
        let l_flags = u16le(&lh, 6);
        let l_name_len = u64::from(u16le(&lh, 26));
        let l_extra_len = u64::from(u16le(&lh, 28));
        let data_offset = local + LOCAL_HEADER_LEN + l_name_len + l_extra_len;
        if data_offset
            .checked_add(csize)
            .is_none_or(|end| end > cd_offset)
        {
            return Err(format!(
                "{name}: declares {csize} bytes, more than the file holds before its directory"
            ));
        }
        // Both lengths are u16: small.
        let lvar = read_at(
            f,
            local + LOCAL_HEADER_LEN,
            (l_name_len + l_extra_len) as usize,
        )?;
        if &lvar[..l_name_len as usize] != raw_name
            || u16le(&lh, 8) != method
            || l_flags & FLAG_ENCRYPTED != 0
        {
            return Err(format!(
                "{name}: the local header disagrees with the central directory"
            ));
        }
        if l_flags & FLAG_DATA_DESCRIPTOR == 0 {
            let mut l_csize = u64::from(u32le(&lh, 18));
            let mut l_usize = u64::from(u32le(&lh, 22));
            apply_zip64(
                &lvar[l_name_len as usize..],
                &mut [&mut l_usize, &mut l_csize],
            )?;
            if u32le(&lh, 14) != crc32 || l_csize != csize || l_usize != usize_ {
                return Err(format!(
                    "{name}: the local header's size or CRC disagrees with the central directory"
                ));
            }
        }
        entries.push(ZipEntry {
            name,
            data_offset,
            size_bytes: csize,
            crc32,
        });
    }
    // No two entries may share bytes (one body read under two names).
    let mut spans: Vec<(u64, u64, &str)> = entries
        .iter()
        .map(|e| (e.data_offset, e.data_offset + e.size_bytes, e.name.as_str()))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        // A local header precedes every body, so bodies that touch also overlap a header.
        if w[1].0 < w[0].1 + LOCAL_HEADER_LEN {
            return Err(format!("{} and {} overlap in the zip", w[0].2, w[1].2));
        }
    }
    Ok(entries)
}
