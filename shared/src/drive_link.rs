//! Google Drive links as users paste them, reduced to the file or folder id (SPEC §3).
//!
//! Used by `setup` (the documents' folder), `upload` (the final-report folder) and the webhook, so
//! every entry point accepts the same forms.

use crate::error::{Error, Result};

/// Extracts the Drive id from a folder URL, a file URL (`/file/d/ID`, Docs/Sheets/Slides
/// `/d/ID`), an `?id=` URL, or a bare id. `key` names the input in the error message.
pub fn parse_drive_id(key: &str, link: &str) -> Result<String> {
    let link = link.trim();
    let found = if link.contains("://") {
        url::Url::parse(link).ok().and_then(|url| id_from_url(&url))
    } else {
        Some(link.to_string())
    };
    match found {
        Some(id) if is_drive_id(&id) => Ok(id),
        _ => Err(Error::bad_input(format!(
            "invalid {key} {link:?}: expected a Google Drive folder or file URL \
             (https://drive.google.com/drive/folders/ID, .../file/d/ID, ...?id=ID) or a bare id; \
             copy the link from Drive's \"Share\" dialog"
        ))),
    }
}

fn id_from_url(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    if !(host == "drive.google.com" || host == "docs.google.com") {
        return None;
    }
    if let Some((_, id)) = url.query_pairs().find(|(k, _)| k == "id") {
        return Some(id.into_owned());
    }
    let segments: Vec<&str> = url.path_segments()?.collect();
    segments
        .windows(2)
        .find(|w| w[0] == "folders" || w[0] == "d")
        .map(|w| w[1].to_string())
}

/// Drive ids are URL-safe base64-ish strings; real ones are 19 to 44 characters long.
fn is_drive_id(id: &str) -> bool {
    (10..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1AbCdEfGhIjKlMnOpQrStUvWxYz012345";

    #[test]
    fn accepts_every_documented_form() {
        let forms = [
            format!("https://drive.google.com/drive/folders/{ID}"),
            format!("https://drive.google.com/drive/folders/{ID}?usp=sharing"),
            format!("https://drive.google.com/drive/u/0/folders/{ID}"),
            format!("https://drive.google.com/file/d/{ID}/view?usp=drive_link"),
            format!("https://drive.google.com/open?id={ID}"),
            format!("https://drive.google.com/uc?export=download&id={ID}"),
            format!("https://docs.google.com/document/d/{ID}/edit"),
            format!("https://docs.google.com/spreadsheets/d/{ID}/edit#gid=0"),
            format!("  {ID}  "),
        ];
        for form in forms {
            assert_eq!(
                parse_drive_id("google_drive_link", &form).unwrap(),
                ID,
                "{form}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_drive_link() {
        for bad in [
            "https://example.com/folders/1AbCdEfGhIjKlMnOp",
            "https://drive.google.com/drive/my-drive",
            "not a link",
            "short",
            "../../etc/passwd",
        ] {
            let err = parse_drive_id("google_drive_link", bad).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains("google_drive_link"), "{err}");
        }
    }
}
