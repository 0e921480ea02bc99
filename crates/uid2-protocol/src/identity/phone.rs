//! Phone numbers are never normalized: the reference only accepts E.164 as sent, a `+` followed
//! by 10 to 15 ASCII digits.

pub fn is_normalized(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (10..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}
