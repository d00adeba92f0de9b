//! The emulated Google side driven by the clients the jobs use: google-drive3 7 with
//! yup-oauth2 12's service-account flow reaching the emulator's `/token`, plus raw HTTP where a
//! test must forge what no client would send (tampered JWTs, missing tokens).

use std::io::Cursor;
use std::path::Path;

use base64::Engine as _;
use emulator::{Config, Emulator};
use google_drive3::api::{File, Scope};
use google_drive3::common::{ContentRange, Delegate};
use google_drive3::hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use google_drive3::hyper_util::client::legacy::Client;
use google_drive3::hyper_util::client::legacy::connect::HttpConnector;
use google_drive3::hyper_util::rt::TokioExecutor;
use google_drive3::{DriveHub, yup_oauth2};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use tempfile::TempDir;

type Hub = DriveHub<HttpsConnector<HttpConnector>>;

const DOC: &str = "application/vnd.google-apps.document";
const FOLDER: &str = "application/vnd.google-apps.folder";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const BULK_FILES: usize = 150;

/// A running emulator seeded with the fixture tree, a key file and a hub talking to it.
struct Drive {
    emulator: Emulator,
    hub: Hub,
    root: String,
    key_path: std::path::PathBuf,
    dir: TempDir,
}

fn xlsx_bytes() -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let first = workbook.add_worksheet().set_name("Processes").unwrap();
    first.write_string(0, 0, "process").unwrap();
    first.write_string(0, 1, "hours").unwrap();
    first.write_string(1, 0, "invoicing").unwrap();
    first.write_number(1, 1, 12).unwrap();
    let second = workbook.add_worksheet().set_name("Other").unwrap();
    second.write_string(0, 0, "not exported as CSV").unwrap();
    workbook.save_to_buffer().unwrap()
}

/// The fixture: nested folders, native files of each kind, a trashed file, a folder with more
/// files than one page holds, and one folder per access situation.
fn write_fixture(root: &Path) {
    let write = |relative: &str, bytes: &[u8]| {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    write(
        "Interviews/ceo.md",
        b"# CEO interview\nWe invoice by hand.\n",
    );
    write("Interviews/Deep/cfo.txt", b"CFO: closing takes 9 days.");
    write(
        "Memo.gdoc.md",
        b"# Memo\n\nAgents could **draft** invoices.\n",
    );
    write("Blank.gdoc.md", b"");
    write("Metrics.gsheet.xlsx", &xlsx_bytes());
    write("Deck.gslides.pdf", b"%PDF-1.4 deck bytes");
    write("old.trashed.pdf", b"%PDF-1.4 trashed");
    write("Bob's notes.md", b"quoted name");
    for n in 0..BULK_FILES {
        write(&format!("Bulk/f{n:03}.txt"), format!("file {n}").as_bytes());
    }
    write("Team.shareddrive/plan.md", b"shared plan");
    write(
        "Team.shareddrive/Brief.gdoc.md",
        b"# Brief\n\nShared brief.\n",
    );
    write("Private.unshared/secret.md", b"not for the service account");
    write("Reports.readonly/existing.md", b"read me");
}

fn connector() -> HttpsConnector<HttpConnector> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build()
}

async fn hub_for(url: &str, key_path: &Path) -> Hub {
    let key = yup_oauth2::read_service_account_key(key_path)
        .await
        .unwrap();
    let auth_client = Client::builder(TokioExecutor::new()).build(connector());
    let auth = yup_oauth2::ServiceAccountAuthenticator::with_client(
        key,
        yup_oauth2::client::CustomHyperClientBuilder::from(auth_client),
    )
    .build()
    .await
    .unwrap();
    let client = Client::builder(TokioExecutor::new()).build(connector());
    let mut hub = DriveHub::new(client, auth);
    hub.base_url(format!("{url}/drive/v3/"));
    hub.root_url(format!("{url}/"));
    hub
}

async fn start() -> Drive {
    let dir = TempDir::new().unwrap();
    let seed = dir.path().join("acme");
    write_fixture(&seed);
    let emulator = Emulator::start(Config::default().seed_drive(&seed))
        .await
        .unwrap();
    let root = emulator.seeded_folder_id().unwrap();
    let key_path = dir.path().join("service-account.json");
    emulator
        .google()
        .write_service_account_key(&key_path)
        .unwrap();
    let hub = hub_for(&emulator.url(), &key_path).await;
    Drive {
        emulator,
        hub,
        root,
        key_path,
        dir,
    }
}

impl Drive {
    fn child(&self, parent: &str, name: &str) -> String {
        self.emulator
            .google()
            .find_child(parent, name)
            .unwrap_or_else(|| panic!("{name} not seeded"))
    }

    /// Every page of a listing, as google-drive3 users page through it.
    async fn list_all(&self, q: &str, page_size: i32, all_drives: bool) -> (Vec<File>, usize) {
        let mut files = Vec::new();
        let mut pages = 0;
        let mut token: Option<String> = None;
        loop {
            let mut call = self
                .hub
                .files()
                .list()
                .q(q)
                .page_size(page_size)
                .supports_all_drives(all_drives)
                .include_items_from_all_drives(all_drives)
                .param(
                    "fields",
                    "nextPageToken,files(id,name,mimeType,parents,md5Checksum,size,modifiedTime,driveId,trashed)",
                )
                .add_scope(Scope::Readonly);
            if let Some(t) = &token {
                call = call.page_token(t);
            }
            let (_, list) = call.doit().await.unwrap();
            pages += 1;
            files.extend(list.files.unwrap_or_default());
            token = list.next_page_token;
            if token.is_none() {
                return (files, pages);
            }
        }
    }

    async fn download(&self, id: &str) -> Result<Vec<u8>, google_drive3::Error> {
        let (response, _) = self
            .hub
            .files()
            .get(id)
            .param("alt", "media")
            .supports_all_drives(true)
            .add_scope(Scope::Readonly)
            .doit()
            .await?;
        Ok(body_bytes(response).await)
    }

    async fn export(&self, id: &str, mime: &str) -> Result<Vec<u8>, google_drive3::Error> {
        let response = self
            .hub
            .files()
            .export(id, mime)
            .add_scope(Scope::Readonly)
            .doit()
            .await?;
        Ok(body_bytes(response).await)
    }
}

async fn body_bytes(response: google_drive3::common::Response) -> Vec<u8> {
    use http_body_util::BodyExt as _;
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

/// HTTP status and `errors[0].reason` of a Drive error.
fn drive_error(result: Result<impl std::fmt::Debug, google_drive3::Error>) -> (u64, String, Value) {
    match result {
        Err(google_drive3::Error::BadRequest(body)) => (
            body["error"]["code"].as_u64().unwrap(),
            body["error"]["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .to_string(),
            body,
        ),
        other => panic!("expected a Drive error, got {other:?}"),
    }
}

#[tokio::test]
async fn listing_pages_past_one_page_and_walks_nested_folders() {
    let drive = start().await;
    let bulk = drive.child(&drive.root, "Bulk");
    let (files, pages) = drive
        .list_all(
            &format!("'{bulk}' in parents and trashed=false"),
            100,
            false,
        )
        .await;
    assert_eq!(pages, 2);
    let mut names: Vec<String> = files.iter().map(|f| f.name.clone().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), BULK_FILES);

    // A recursive walk from the root, as the setup job does it.
    let mut found = Vec::new();
    let mut folders = vec![drive.root.clone()];
    while let Some(folder) = folders.pop() {
        let (children, _) = drive
            .list_all(
                &format!("'{folder}' in parents and trashed = false"),
                1000,
                false,
            )
            .await;
        for child in children {
            if child.mime_type.as_deref() == Some(FOLDER) {
                folders.push(child.id.unwrap());
            } else {
                found.push(child.name.unwrap());
            }
        }
    }
    assert!(
        found.contains(&"cfo.txt".to_string()),
        "nested file missing: {found:?}"
    );
    assert!(found.contains(&"Memo".to_string()));
    assert!(
        !found.contains(&"old.pdf".to_string()),
        "trashed file listed"
    );
    assert!(
        !found.contains(&"secret.md".to_string()),
        "unshared file listed"
    );
    assert!(
        !found.contains(&"plan.md".to_string()),
        "shared-drive file listed without the flags"
    );
    assert_eq!(found.len(), BULK_FILES + 8);

    // Binary files carry size (an int64 string on the wire) and md5; native ones do not.
    let (top, _) = drive
        .list_all(&format!("'{}' in parents", drive.root), 100, false)
        .await;
    let ceo_folder = top
        .iter()
        .find(|f| f.name.as_deref() == Some("Interviews"))
        .unwrap();
    let (interviews, _) = drive
        .list_all(
            &format!("'{}' in parents", ceo_folder.id.as_ref().unwrap()),
            10,
            false,
        )
        .await;
    let ceo = interviews
        .iter()
        .find(|f| f.name.as_deref() == Some("ceo.md"))
        .unwrap();
    let ceo_bytes = b"# CEO interview\nWe invoice by hand.\n";
    assert_eq!(ceo.size, Some(ceo_bytes.len() as i64));
    assert_eq!(ceo.md5_checksum.as_deref().unwrap().len(), 32);
    let memo = top
        .iter()
        .find(|f| f.name.as_deref() == Some("Memo"))
        .unwrap();
    assert_eq!(memo.mime_type.as_deref(), Some(DOC));
    assert_eq!(memo.md5_checksum, None);
    assert!(
        top.iter()
            .any(|f| f.name.as_deref() == Some("old.pdf") && f.trashed == Some(true))
    );
}

#[tokio::test]
async fn queries_by_name_and_mime_type() {
    let drive = start().await;
    let q = format!(
        "'{}' in parents and name = 'Bob\\'s notes.md' and trashed=false",
        drive.root
    );
    let (files, _) = drive.list_all(&q, 10, false).await;
    assert_eq!(files.len(), 1);
    assert_eq!(
        drive.download(files[0].id.as_ref().unwrap()).await.unwrap(),
        b"quoted name"
    );

    let q = format!(
        "'{}' in parents and mimeType != '{FOLDER}' and mimeType = '{DOC}'",
        drive.root
    );
    let (docs, _) = drive.list_all(&q, 10, false).await;
    let mut names: Vec<_> = docs.into_iter().map(|f| f.name.unwrap()).collect();
    names.sort();
    assert_eq!(names, ["Blank", "Memo"]);

    let bad = drive
        .hub
        .files()
        .list()
        .q("name > 'x'")
        .add_scope(Scope::Readonly)
        .doit()
        .await;
    let (code, reason, _) = drive_error(bad);
    assert_eq!((code, reason.as_str()), (400, "invalid"));

    let too_big = drive
        .hub
        .files()
        .list()
        .page_size(1001)
        .add_scope(Scope::Readonly)
        .doit()
        .await;
    assert_eq!(drive_error(too_big).0, 400);
}

#[tokio::test]
async fn shared_drive_items_need_the_all_drives_flags() {
    let drive = start().await;
    let team = drive.child(&drive.root, "Team");
    let plan = drive.child(&team, "plan.md");

    let (without, _) = drive
        .list_all(&format!("'{team}' in parents"), 10, false)
        .await;
    assert!(without.is_empty());
    let (with, _) = drive
        .list_all(&format!("'{team}' in parents"), 10, true)
        .await;
    assert_eq!(with.len(), 2);
    assert!(
        with.iter()
            .all(|f| f.drive_id.as_deref() == Some(team.as_str()))
    );

    let no_flag = drive
        .hub
        .files()
        .get(&plan)
        .add_scope(Scope::Readonly)
        .doit()
        .await;
    assert_eq!(drive_error(no_flag).1, "notFound");
    assert_eq!(drive.download(&plan).await.unwrap(), b"shared plan");
    // files.export takes no supportsAllDrives: a shared-drive Doc exports without it.
    let brief = drive.child(&team, "Brief");
    assert_eq!(
        drive.export(&brief, "text/markdown").await.unwrap(),
        b"# Brief\n\nShared brief.\n"
    );
}

#[tokio::test]
async fn downloads_and_exports() {
    let drive = start().await;
    let interviews = drive.child(&drive.root, "Interviews");
    let ceo = drive.child(&interviews, "ceo.md");
    assert_eq!(
        drive.download(&ceo).await.unwrap(),
        b"# CEO interview\nWe invoice by hand.\n"
    );

    let memo = drive.child(&drive.root, "Memo");
    let (code, reason, _) = drive_error(drive.download(&memo).await);
    assert_eq!((code, reason.as_str()), (403, "fileNotDownloadable"));

    let markdown = drive.export(&memo, "text/markdown").await.unwrap();
    assert_eq!(markdown, b"# Memo\n\nAgents could **draft** invoices.\n");
    let text = String::from_utf8(drive.export(&memo, "text/plain").await.unwrap()).unwrap();
    assert_eq!(text, "Memo\nAgents could draft invoices.\n");
    let docx = drive.export(&memo, DOCX).await.unwrap();
    let mut archive = zip::ZipArchive::new(Cursor::new(docx)).unwrap();
    let mut document = String::new();
    std::io::Read::read_to_string(
        &mut archive.by_name("word/document.xml").unwrap(),
        &mut document,
    )
    .unwrap();
    assert!(document.contains("Agents could **draft** invoices."));

    let blank = drive.child(&drive.root, "Blank");
    assert!(
        drive
            .export(&blank, "text/markdown")
            .await
            .unwrap()
            .is_empty()
    );

    let metrics = drive.child(&drive.root, "Metrics");
    let seeded = std::fs::read(drive.dir.path().join("acme/Metrics.gsheet.xlsx")).unwrap();
    assert_eq!(drive.export(&metrics, XLSX).await.unwrap(), seeded);
    let csv = String::from_utf8(drive.export(&metrics, "text/csv").await.unwrap()).unwrap();
    assert_eq!(csv, "process,hours\ninvoicing,12\n");

    let deck = drive.child(&drive.root, "Deck");
    assert_eq!(
        drive.export(&deck, "application/pdf").await.unwrap(),
        b"%PDF-1.4 deck bytes"
    );

    let (code, reason, _) = drive_error(drive.export(&memo, "image/png").await);
    assert_eq!((code, reason.as_str()), (400, "badRequest"));
    let (code, reason, _) = drive_error(drive.export(&ceo, "text/plain").await);
    assert_eq!((code, reason.as_str()), (403, "fileNotExportable"));
}

#[tokio::test]
async fn exports_over_ten_megabytes_are_refused() {
    let dir = TempDir::new().unwrap();
    let seed = dir.path().join("big");
    std::fs::create_dir_all(&seed).unwrap();
    // Just over the cap, exactly at it, and over it as Markdown but not as plain text.
    std::fs::write(seed.join("Huge.gdoc.md"), "a".repeat(10_485_761)).unwrap();
    std::fs::write(seed.join("Large.gdoc.md"), "a".repeat(10_485_760)).unwrap();
    std::fs::write(seed.join("Styled.gdoc.md"), "**word** ".repeat(1_200_000)).unwrap();
    let emulator = Emulator::start(Config::default().seed_drive(&seed))
        .await
        .unwrap();
    let key_path = dir.path().join("key.json");
    emulator
        .google()
        .write_service_account_key(&key_path)
        .unwrap();
    let hub = hub_for(&emulator.url(), &key_path).await;
    let root = emulator.seeded_folder_id().unwrap();
    let google = emulator.google();
    let export = |name: &str, mime: &'static str| {
        let id = google.find_child(&root, name).unwrap();
        let call = hub.files().export(&id, mime).add_scope(Scope::Readonly);
        async move { call.doit().await }
    };

    for (name, mime) in [
        ("Huge", "text/markdown"),
        ("Huge", DOCX),
        ("Styled", "text/markdown"),
    ] {
        let (code, reason, _) = drive_error(export(name, mime).await);
        assert_eq!(
            (code, reason.as_str()),
            (403, "exportSizeLimitExceeded"),
            "{name} as {mime}"
        );
    }
    let fits = export("Large", "text/markdown").await.unwrap();
    assert_eq!(body_bytes(fits).await.len(), 10_485_760);
    // The fallback a job can use: the same document as plain text is small enough.
    let plain = export("Styled", "text/plain").await.unwrap();
    assert_eq!(body_bytes(plain).await.len(), "word ".len() * 1_200_000);
}

#[tokio::test]
async fn multipart_create_update_and_app_properties_query() {
    let drive = start().await;
    // google-drive3 creates a folder by uploading an empty body.
    let (_, created_folder) = drive
        .hub
        .files()
        .create(File {
            name: Some("Final".into()),
            mime_type: Some(FOLDER.into()),
            parents: Some(vec![drive.root.clone()]),
            ..Default::default()
        })
        .param("fields", "id,mimeType")
        .add_scope(Scope::Full)
        .upload(
            Cursor::new(Vec::new()),
            "application/octet-stream".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created_folder.mime_type.as_deref(), Some(FOLDER));
    let folder = created_folder.id.unwrap();
    assert_eq!(
        drive.emulator.google().find_child(&drive.root, "Final"),
        Some(folder.clone())
    );
    let report = b"# Final report\n".to_vec();
    let metadata = File {
        name: Some("FINAL_REPORT_acme.md".into()),
        parents: Some(vec![folder.clone()]),
        app_properties: Some([("run_id".to_string(), "run-1".to_string())].into()),
        ..Default::default()
    };
    let (_, created) = drive
        .hub
        .files()
        .create(metadata)
        .supports_all_drives(true)
        .param(
            "fields",
            "id,name,md5Checksum,size,webViewLink,appProperties,parents",
        )
        .add_scope(Scope::Full)
        .upload(
            Cursor::new(report.clone()),
            "text/markdown".parse().unwrap(),
        )
        .await
        .unwrap();
    let id = created.id.clone().unwrap();
    assert_eq!(created.size, Some(report.len() as i64));
    assert_eq!(created.parents, Some(vec![folder.clone()]));
    assert_eq!(
        created.web_view_link.as_deref(),
        Some(format!("https://drive.google.com/file/d/{id}/view?usp=drivesdk").as_str())
    );
    assert_eq!(drive.emulator.google().file_bytes(&id), Some(report));

    // Without `fields`, Drive answers with the few default properties only.
    let (_, bare) = drive
        .hub
        .files()
        .get(&id)
        .add_scope(Scope::Full)
        .doit()
        .await
        .unwrap();
    assert_eq!(bare.name.as_deref(), Some("FINAL_REPORT_acme.md"));
    assert_eq!(bare.md5_checksum, None);

    let q = format!(
        "'{folder}' in parents and appProperties has {{ key='run_id' and value='run-1' }} and trashed=false"
    );
    let (found, _) = drive.list_all(&q, 10, true).await;
    let found_ids: Vec<&str> = found.iter().map(|f| f.id.as_deref().unwrap()).collect();
    assert_eq!(found_ids, [id.as_str()]);
    let q =
        format!("'{folder}' in parents and appProperties has {{ key='run_id' and value='run-2' }}");
    assert!(drive.list_all(&q, 10, true).await.0.is_empty());

    let (_, updated) = drive
        .hub
        .files()
        .update(File::default(), &id)
        .param("fields", "md5Checksum,modifiedTime,version")
        .add_scope(Scope::Full)
        .upload(
            Cursor::new(b"# Final report v2\n".to_vec()),
            "text/markdown".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_ne!(updated.md5_checksum, created.md5_checksum);
    assert_eq!(
        drive.emulator.google().file_bytes(&id).unwrap(),
        b"# Final report v2\n"
    );

    let renamed = File {
        name: Some("renamed.md".into()),
        app_properties: Some([("sha256".to_string(), "abc".to_string())].into()),
        ..Default::default()
    };
    let (_, patched) = drive
        .hub
        .files()
        .update(renamed, &id)
        .param("fields", "name,appProperties")
        .add_scope(Scope::Full)
        .doit_without_upload()
        .await
        .unwrap();
    assert_eq!(patched.name.as_deref(), Some("renamed.md"));
    let properties = patched.app_properties.unwrap();
    assert_eq!(properties.get("run_id").map(String::as_str), Some("run-1"));
    assert_eq!(properties.get("sha256").map(String::as_str), Some("abc"));
}

/// Records each chunk google-drive3 sends and asks for the smallest chunks Drive accepts.
#[derive(Default)]
struct SmallChunks {
    ranges: Vec<String>,
}

impl Delegate for SmallChunks {
    fn chunk_size(&mut self) -> u64 {
        1 << 18
    }
    fn cancel_chunk_upload(&mut self, range: &ContentRange) -> bool {
        self.ranges.push(range.header_value());
        false
    }
}

#[tokio::test]
async fn resumable_create_continues_after_308_and_converts_to_a_doc() {
    let drive = start().await;
    let folder = drive
        .emulator
        .google()
        .create_folder("Final", Some(&drive.root));
    let content: Vec<u8> = (0..700_000u32).map(|n| (n % 251) as u8).collect();
    let mut delegate = SmallChunks::default();
    let metadata = File {
        name: Some("report.bin".into()),
        parents: Some(vec![folder.clone()]),
        ..Default::default()
    };
    let (_, created) = drive
        .hub
        .files()
        .create(metadata)
        .delegate(&mut delegate)
        .supports_all_drives(true)
        .param("fields", "id,size")
        .add_scope(Scope::Full)
        .upload_resumable(
            Cursor::new(content.clone()),
            "application/octet-stream".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        delegate.ranges,
        [
            "bytes 0-262143/700000",
            "bytes 262144-524287/700000",
            "bytes 524288-699999/700000"
        ]
    );
    assert_eq!(created.size, Some(700_000));
    let id = created.id.unwrap();
    assert_eq!(drive.emulator.google().file_bytes(&id), Some(content));
    assert_eq!(
        drive.emulator.google().dump()["uploads_in_progress"],
        json!(0)
    );

    // Markdown uploaded as a Google Doc becomes a native Doc whose export is the text.
    let as_doc = File {
        name: Some("FINAL_REPORT".into()),
        mime_type: Some(DOC.into()),
        parents: Some(vec![folder]),
        ..Default::default()
    };
    let (_, doc) = drive
        .hub
        .files()
        .create(as_doc)
        .param("fields", "id,mimeType,webViewLink")
        .add_scope(Scope::Full)
        .upload_resumable(
            Cursor::new(b"# Report\n\nBody.\n".to_vec()),
            "text/markdown".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(doc.mime_type.as_deref(), Some(DOC));
    assert!(
        doc.web_view_link
            .unwrap()
            .starts_with("https://docs.google.com/document/d/")
    );
    let text = drive.export(&doc.id.unwrap(), "text/plain").await.unwrap();
    assert_eq!(text, b"Report\nBody.\n");
}

#[tokio::test]
async fn readonly_unshared_missing_and_scope_errors() {
    let drive = start().await;
    let reports = drive.child(&drive.root, "Reports");
    let private = drive.child(&drive.root, "Private");

    let into_readonly = drive
        .hub
        .files()
        .create(File {
            name: Some("x.md".into()),
            parents: Some(vec![reports.clone()]),
            ..Default::default()
        })
        .add_scope(Scope::Full)
        .upload(Cursor::new(b"x".to_vec()), "text/markdown".parse().unwrap())
        .await;
    let (code, reason, _) = drive_error(into_readonly);
    assert_eq!(
        (code, reason.as_str()),
        (403, "insufficientFilePermissions")
    );
    // Reading it is fine.
    let existing = drive.child(&reports, "existing.md");
    assert_eq!(drive.download(&existing).await.unwrap(), b"read me");

    let unshared = drive
        .hub
        .files()
        .get(&private)
        .add_scope(Scope::Readonly)
        .doit()
        .await;
    let (code, reason, body) = drive_error(unshared);
    assert_eq!((code, reason.as_str()), (404, "notFound"));
    assert_eq!(
        body["error"]["message"],
        json!(format!("File not found: {private}."))
    );
    let missing_id = "1NoSuchFileAnywhereInThisDriveXYZ";
    let missing = drive
        .hub
        .files()
        .get(missing_id)
        .add_scope(Scope::Readonly)
        .doit()
        .await;
    let (code, reason, body) = drive_error(missing);
    assert_eq!((code, reason.as_str()), (404, "notFound"));
    assert_eq!(
        body["error"]["message"],
        json!(format!("File not found: {missing_id}."))
    );

    let with_readonly_token = drive
        .hub
        .files()
        .create(File {
            name: Some("y.md".into()),
            parents: Some(vec![drive.root.clone()]),
            ..Default::default()
        })
        .add_scope(Scope::Readonly)
        .upload(Cursor::new(b"y".to_vec()), "text/markdown".parse().unwrap())
        .await;
    let (code, reason, body) = drive_error(with_readonly_token);
    assert_eq!((code, reason.as_str()), (403, "insufficientScopes"));
    assert_eq!(
        body["error"]["details"][0]["reason"],
        json!("ACCESS_TOKEN_SCOPE_INSUFFICIENT")
    );
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT for the key file's account, signed with its private key.
fn signed_jwt(key: &Value, claims: &Value) -> String {
    let private_key =
        rsa::RsaPrivateKey::from_pkcs8_pem(key["private_key"].as_str().unwrap()).unwrap();
    let signing_key = SigningKey::<Sha256>::new(private_key);
    let unsigned = format!(
        "{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let signature = signing_key.sign(unsigned.as_bytes()).to_bytes();
    format!("{unsigned}.{}", b64(&signature))
}

async fn ask_token(http: &reqwest::Client, token_uri: &str, assertion: &str) -> (u16, Value) {
    let response = http
        .post(token_uri)
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn token_endpoint_verifies_signature_audience_and_lifetime() {
    let drive = start().await;
    let key: Value = serde_json::from_slice(&std::fs::read(&drive.key_path).unwrap()).unwrap();
    let token_uri = key["token_uri"].as_str().unwrap().to_string();
    assert_eq!(token_uri, format!("{}/token", drive.emulator.url()));
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": key["client_email"],
        "aud": token_uri,
        "scope": "https://www.googleapis.com/auth/drive.readonly",
        "iat": now,
        "exp": now + 3600,
    });
    let http = reqwest::Client::new();

    let (status, body) = ask_token(&http, &token_uri, &signed_jwt(&key, &claims)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], json!("Bearer"));
    assert_eq!(body["expires_in"], json!(3599));
    let access_token = body["access_token"].as_str().unwrap().to_string();

    // Same signature, claims changed afterwards (a wider scope).
    let genuine = signed_jwt(&key, &claims);
    let mut parts: Vec<String> = genuine.split('.').map(str::to_string).collect();
    let mut widened = claims.clone();
    widened["scope"] = json!("https://www.googleapis.com/auth/drive");
    parts[1] = b64(widened.to_string().as_bytes());
    let (status, body) = ask_token(&http, &token_uri, &parts.join(".")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], json!("invalid_grant"));
    assert_eq!(body["error_description"], json!("Invalid JWT Signature."));

    for (field, value) in [
        ("aud", json!("https://example.com/token")),
        ("exp", json!(now - 10)),
        ("exp", json!(now + 7200)),
        ("iat", json!(now + 600)),
    ] {
        let mut wrong = claims.clone();
        wrong[field] = value;
        let (status, body) = ask_token(&http, &token_uri, &signed_jwt(&key, &wrong)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{field}"
        );
    }

    // The token remembers its read-only scope.
    let drive_url = format!("{}/drive/v3/files", drive.emulator.url());
    let listed = http
        .get(&drive_url)
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 200);
    let write = http
        .post(&drive_url)
        .bearer_auth(&access_token)
        .json(&json!({"name": "x", "mimeType": FOLDER}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status().as_u16(), 403);

    // No token at all: Google's 401.
    let anonymous = http.get(&drive_url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["status"], json!("UNAUTHENTICATED"));

    // A revoked account: its JWTs are refused and its tokens stop working.
    let email = key["client_email"].as_str().unwrap();
    assert!(drive.emulator.google().revoke_service_account(email));
    let (status, body) = ask_token(&http, &token_uri, &signed_jwt(&key, &claims)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let listed = http
        .get(&drive_url)
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 401);
    let dump = drive.emulator.google().dump();
    assert_eq!(dump["service_accounts"][0]["revoked"], json!(true));
    assert!(dump["token_requests_rejected"].as_u64().unwrap() >= 6);
}

#[tokio::test]
async fn a_jwt_signed_with_another_key_is_refused_for_a_known_account() {
    let drive = start().await;
    let read_key =
        |path: &Path| -> Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let key = read_key(&drive.key_path);
    let other_path = drive.dir.path().join("other-account.json");
    drive
        .emulator
        .google()
        .write_service_account_key(&other_path)
        .unwrap();
    let other = read_key(&other_path);
    assert_ne!(other["client_email"], key["client_email"]);
    assert_ne!(
        other["private_key"], key["private_key"],
        "one key per account"
    );

    let token_uri = key["token_uri"].as_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = |account: &Value| {
        json!({
            "iss": account["client_email"],
            "aud": token_uri,
            "scope": "https://www.googleapis.com/auth/drive",
            "iat": now,
            "exp": now + 3600,
        })
    };
    let http = reqwest::Client::new();
    // The other account's own JWT is fine; signed with its key but naming the first account,
    // it is not.
    let (status, body) = ask_token(&http, token_uri, &signed_jwt(&other, &claims(&other))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = ask_token(&http, token_uri, &signed_jwt(&other, &claims(&key))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], json!("invalid_grant"));
    assert_eq!(body["error_description"], json!("Invalid JWT Signature."));
    // Nor does a key the emulator never issued.
    let foreign = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let foreign_pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&foreign, Default::default())
        .unwrap()
        .to_string();
    let forged = signed_jwt(&json!({ "private_key": foreign_pem }), &claims(&key));
    let (status, body) = ask_token(&http, token_uri, &forged).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("Invalid JWT Signature."))
    );
}

#[tokio::test]
async fn content_changed_in_drive_changes_metadata() {
    let drive = start().await;
    let interviews = drive.child(&drive.root, "Interviews");
    let q = format!("'{interviews}' in parents and name = 'ceo.md'");
    let (before, _) = drive.list_all(&q, 10, false).await;
    let id = before[0].id.clone().unwrap();
    assert!(
        drive
            .emulator
            .google()
            .replace_content(&id, b"edited".to_vec())
    );
    let (after, _) = drive.list_all(&q, 10, false).await;
    assert_ne!(after[0].md5_checksum, before[0].md5_checksum);
    assert!(after[0].modified_time > before[0].modified_time);
    assert_eq!(drive.download(&id).await.unwrap(), b"edited");
}

#[tokio::test]
async fn seeded_ids_are_stable_and_drive_like() {
    let first = start().await;
    let second = start().await;
    assert_eq!(first.root, second.root);
    assert_eq!(first.root.len(), 33);
    assert!(
        first
            .root
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    let dump = first.emulator.google().dump();
    let files = dump["files"].as_array().unwrap();
    let team = files.iter().find(|f| f["name"] == json!("Team")).unwrap();
    let plan = files
        .iter()
        .find(|f| f["name"] == json!("plan.md"))
        .unwrap();
    assert_eq!(plan["driveId"], team["id"]);
    let secret = files
        .iter()
        .find(|f| f["name"] == json!("secret.md"))
        .unwrap();
    assert_eq!(secret["access"], json!("unshared"));
}
