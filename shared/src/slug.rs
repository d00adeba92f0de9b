//! The ONE slug function (SPEC §4.1). It names directories that already exist on users'
//! volumes, so its output for a given name must never change between versions.

use sha2::{Digest, Sha256};

/// The longest slug, in bytes (all ASCII).
pub const MAX_SLUG_LEN: usize = 64;

/// Turns a company name into its directory name: Latin letters transliterated ("Müller" →
/// "muller", "ß" → "ss"), lowercased, every run of other characters replaced by one `_`, `_`
/// trimmed at both ends, at most 64 characters. A name with nothing left becomes `company_` plus
/// the first 8 hex digits of the SHA-256 of the name, so the result is never empty, `.` or `..`.
pub fn slugify(name: &str) -> String {
    let ascii = deunicode::deunicode(name).to_lowercase();
    let mut slug = String::with_capacity(ascii.len());
    for c in ascii.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('_') {
            slug.push('_');
        }
    }
    slug.truncate(MAX_SLUG_LEN);
    let slug = slug.trim_end_matches('_');
    if slug.is_empty() {
        let digest = Sha256::digest(name.as_bytes());
        format!("company_{}", &hex::encode(digest)[..8])
    } else {
        slug.to_string()
    }
}

/// Whether `s` is already a slug: `[a-z0-9_]{1,64}`, no leading or trailing `_`, no `__`.
/// Exactly the strings that [`slugify`] maps to themselves.
pub fn is_valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hash_slug(name: &str) -> String {
        format!(
            "company_{}",
            &hex::encode(Sha256::digest(name.as_bytes()))[..8]
        )
    }

    #[test]
    fn table() {
        let long = "Abc ".repeat(75);
        let cases: &[(&str, String)] = &[
            ("Acme Corp.", "acme_corp".into()),
            ("A&B Co", "a_b_co".into()),
            ("  Müller GmbH ", "muller_gmbh".into()),
            ("Straße & Söhne", "strasse_sohne".into()),
            ("Café Crème", "cafe_creme".into()),
            ("ACME---Widgets__Ltd", "acme_widgets_ltd".into()),
            ("123 Go", "123_go".into()),
            ("", hash_slug("")),
            ("!!!", hash_slug("!!!")),
            ("..", hash_slug("..")),
            (&long, "abc_".repeat(16).trim_end_matches('_').to_string()),
        ];
        for (name, want) in cases {
            assert_eq!(&slugify(name), want, "slugify({name:?})");
        }
        assert_eq!(slugify(&long).len(), 63);
        assert!(hash_slug("").starts_with("company_e3b0c442"));
    }

    #[test]
    fn validity() {
        for ok in ["acme", "acme_corp", "a1", "company_e3b0c442"] {
            assert!(is_valid_slug(ok), "{ok}");
        }
        for bad in [
            "",
            "_a",
            "a_",
            "a__b",
            "Acme",
            "a-b",
            ".",
            "..",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_slug(bad), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn output_is_always_a_valid_slug(name in "\\PC{0,300}") {
            let slug = slugify(&name);
            prop_assert!(slug.len() <= 64 && !slug.is_empty());
            prop_assert!(slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            prop_assert!(is_valid_slug(&slug), "{slug}");
            prop_assert_eq!(slugify(&slug), slug.clone());
        }

        #[test]
        fn a_valid_slug_maps_to_itself(slug in "[a-z0-9]{1,10}(_[a-z0-9]{1,10}){0,5}") {
            prop_assert!(is_valid_slug(&slug));
            prop_assert_eq!(slugify(&slug), slug);
        }
    }
}
