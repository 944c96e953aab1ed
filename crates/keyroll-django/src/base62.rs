//! Django's base62 integers (`b62_encode` / `b62_decode`), used for timestamps.

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Encodes `value` like Django's `b62_encode`: digits `0-9A-Za-z`, a `-` in
/// front of negative numbers.
///
/// ```
/// assert_eq!(keyroll_django::base62::encode(1_700_000_000), "1r31eq");
/// assert_eq!(keyroll_django::base62::encode(-62), "-10");
/// ```
pub fn encode(value: i64) -> String {
    if value == 0 {
        return "0".to_owned();
    }
    let mut digits = Vec::with_capacity(12);
    let mut rest = value.unsigned_abs();
    while rest > 0 {
        digits.push(ALPHABET[(rest % 62) as usize]);
        rest /= 62;
    }
    if value < 0 {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).expect("base62 digits are ASCII")
}

/// Decodes Django's base62, or `None` when `text` is empty, holds a character
/// outside the alphabet, or does not fit in an `i64`.
///
/// ```
/// assert_eq!(keyroll_django::base62::decode("1lewPD"), Some(1_620_378_259));
/// assert_eq!(keyroll_django::base62::decode("1:2"), None);
/// ```
pub fn decode(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None if text.is_empty() => return None,
        None => (false, text),
    };
    let mut value: i64 = 0;
    for byte in digits.bytes() {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'A'..=b'Z' => byte - b'A' + 10,
            b'a'..=b'z' => byte - b'a' + 36,
            _ => return None,
        };
        value = value.checked_mul(62)?.checked_add(i64::from(digit))?;
    }
    Some(if negative { -value } else { value })
}
