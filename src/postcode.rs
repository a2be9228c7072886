//! UK postcodes: recognising one and writing it in standard form. A ground-floor utility, so the
//! adapters can spot a postcode in an address line and the normaliser and the store can key on it.

/// A UK postcode in standard form ("sk116ab" → "SK11 6AB"), or None if it is not one.
pub fn standard(s: &str) -> Option<String> {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let inb = inward.as_bytes();
    if !(inb[0].is_ascii_digit() && inb[1].is_ascii_alphabetic() && inb[2].is_ascii_alphabetic()) {
        return None;
    }
    // Outward: A9, A99, AA9, AA99, A9A, AA9A.
    let ob = outward.as_bytes();
    let letters = ob.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let rest = &ob[letters..];
    let valid_rest = match rest {
        [d] => d.is_ascii_digit(),
        [d1, d2] => d1.is_ascii_digit() && (d2.is_ascii_digit() || d2.is_ascii_alphabetic()),
        _ => false,
    };
    if !(1..=2).contains(&letters) || !valid_rest {
        return None;
    }
    Some(format!("{outward} {inward}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcodes() {
        assert_eq!(standard("sk11 6ab").as_deref(), Some("SK11 6AB"));
        assert_eq!(standard("HU32AA").as_deref(), Some("HU3 2AA"));
        assert_eq!(standard(" cw1  2bj ").as_deref(), Some("CW1 2BJ"));
        assert_eq!(standard("EC1A1BB").as_deref(), Some("EC1A 1BB"));
        assert_eq!(standard("W1A 0AX").as_deref(), Some("W1A 0AX"));
        assert_eq!(standard("not a postcode"), None);
        assert_eq!(standard("12345"), None);
        assert_eq!(standard("SK11 AAB"), None);
        assert_eq!(standard(""), None);
    }
}
