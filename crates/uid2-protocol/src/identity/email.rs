//! Email normalization, exactly as the reference operator's single-pass parser.
//!
//! The reference's rules, which differ from its own documentation and from the Python SDK:
//! - only ASCII `A`–`Z` are lower-cased;
//! - every U+0020 before the first `@` is dropped (the parser never leaves its starting state
//!   before `@`), while tabs and other characters are kept;
//! - after `@`, spaces are kept only when something other than a space follows them;
//! - a second `@` is invalid; an empty domain or an empty local part is invalid;
//! - for the domain exactly `gmail.com`, dots are dropped from the local part and everything
//!   from the first `+` on is dropped.

/// Returns the normalized address, or `None` when the reference would call it invalid.
pub fn normalize(email: &str) -> Option<String> {
    let mut local = String::with_capacity(email.len());
    let mut local_gmail = String::with_capacity(email.len());
    let mut domain = String::with_capacity(email.len());
    let mut pending_spaces = 0usize;
    let mut in_domain = false;
    let mut in_extension = false;

    for given in email.chars() {
        // `char::to_ascii_lowercase` only touches `A`-`Z`, as the reference does.
        let c = given.to_ascii_lowercase();
        if in_domain {
            match c {
                '@' => return None,
                ' ' => pending_spaces += 1,
                _ => {
                    domain.extend(std::iter::repeat_n(' ', pending_spaces));
                    pending_spaces = 0;
                    domain.push(c);
                }
            }
            continue;
        }
        match c {
            ' ' => {}
            '@' => in_domain = true,
            '.' => local.push(c),
            '+' => {
                local.push(c);
                in_extension = true;
            }
            _ => {
                local.push(c);
                if !in_extension {
                    local_gmail.push(c);
                }
            }
        }
    }

    if domain.is_empty() {
        return None;
    }
    let chosen = if domain == "gmail.com" { local_gmail } else { local };
    if chosen.is_empty() {
        return None;
    }
    Some(format!("{chosen}@{domain}"))
}
