//! Helpers for tests of crates that build MP4s without real video (feature `test-support`).

/// A minimal, well-formed `avc1` sample entry box with a placeholder `avcC` (High profile,
/// level 3.1, no parameter sets): accepted by the MP4 builder, not decodable by a player.
pub fn fake_avc1(width: u16, height: u16) -> Vec<u8> {
    let avcc: &[u8] = &[
        0, 0, 0, 15, b'a', b'v', b'c', b'C', 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0,
    ];
    let mut b = Vec::with_capacity(86 + avcc.len());
    b.extend_from_slice(&(86u32 + avcc.len() as u32).to_be_bytes());
    b.extend_from_slice(b"avc1");
    b.extend_from_slice(&[0; 6]); // reserved
    b.extend_from_slice(&1u16.to_be_bytes()); // data reference index
    b.extend_from_slice(&[0; 16]); // pre_defined, reserved
    b.extend_from_slice(&width.to_be_bytes());
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&0x0048_0000u32.to_be_bytes()); // 72 dpi horizontal
    b.extend_from_slice(&0x0048_0000u32.to_be_bytes()); // 72 dpi vertical
    b.extend_from_slice(&0u32.to_be_bytes()); // reserved
    b.extend_from_slice(&1u16.to_be_bytes()); // frame count
    b.extend_from_slice(&[0; 32]); // compressor name
    b.extend_from_slice(&0x0018u16.to_be_bytes()); // depth
    b.extend_from_slice(&(-1i16).to_be_bytes()); // pre_defined
    b.extend_from_slice(avcc);
    b
}
