//! Hex: lowercase hexadecimal text of bytes, the one encoder for digests in object names,
//! manifests and file names.

/// Hex digits of the digest in object names.
pub const DIGEST_HEX_DIGITS: usize = 16;

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The digest of an object name: the first [`DIGEST_HEX_DIGITS`] hex digits of a hash.
pub fn hex_digest(hash: &[u8]) -> String {
    hex(&hash[..hash.len().min(DIGEST_HEX_DIGITS / 2)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_digests_are_sixteen_digits() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex_digest(&[0x12; 32]), "1212121212121212");
        assert_eq!(hex_digest(&[0xab]), "ab");
    }
}
