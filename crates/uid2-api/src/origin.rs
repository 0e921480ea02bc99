//! Whether a browser `Origin` belongs to a site's domains, as the reference decides it.
//!
//! The origin is parsed as a URL; its host is reduced to the registrable domain with the public
//! suffix list (private suffixes such as `github.io` included), and that domain must be one of the
//! site's `domain_names`, compared exactly. `localhost` and a single label under it
//! (`x.localhost`) count as `localhost` for local testing. IP literals, hosts that are themselves
//! public suffixes, hosts under unknown suffixes and malformed origins are refused.

use url::{Host, Url};

pub(crate) fn is_domain_allowed(origin: &str, domain_names: &[String]) -> bool {
    registrable_domain(origin).is_some_and(|d| domain_names.contains(&d))
}

pub(crate) fn registrable_domain(origin: &str) -> Option<String> {
    let url = Url::parse(origin).ok()?;
    let host = match url.host()? {
        Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(_) | Host::Ipv6(_) => return None,
    };
    if host == "localhost" {
        return Some(host);
    }
    if let Some(parent) = host.split_once('.').map(|(_, p)| p) {
        if parent == "localhost" {
            return Some("localhost".to_owned());
        }
    }
    let domain = psl::domain(host.as_bytes())?;
    if !domain.suffix().is_known() {
        return None;
    }
    std::str::from_utf8(domain.as_bytes()).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains() {
        let cases = [
            ("https://example.com", Some("example.com")),
            ("https://www.Example.com:8443/path", Some("example.com")),
            ("https://a.b.example.co.uk", Some("example.co.uk")),
            ("https://someone.github.io", Some("someone.github.io")),
            ("https://github.io", None),
            ("http://localhost:8080", Some("localhost")),
            ("http://app.localhost", Some("localhost")),
            ("http://a.b.localhost", None),
            ("http://127.0.0.1", None),
            ("http://[::1]:8080", None),
            ("not a url", None),
            ("https://example.invalidtld", None),
            ("null", None),
        ];
        for (origin, expected) in cases {
            assert_eq!(registrable_domain(origin).as_deref(), expected, "{origin}");
        }
    }

    #[test]
    fn exact_match_against_site_domains() {
        let domains = vec!["example.com".to_owned(), "localhost".to_owned()];
        assert!(is_domain_allowed("https://shop.example.com", &domains));
        assert!(is_domain_allowed("http://localhost:3000", &domains));
        assert!(!is_domain_allowed("https://example.org", &domains));
        assert!(!is_domain_allowed("https://notexample.com", &domains));
    }
}
