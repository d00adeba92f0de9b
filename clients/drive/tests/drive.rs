//! The Drive client against the emulator: listing with paging and shared drives, metadata,
//! streaming downloads and exports (with the export cap), retries of transient failures and
//! the one-line errors for what a user gets wrong.

use std::path::Path;
use std::time::Duration;

use drive_client::{DriveClient, DriveScope, ExportOutcome};
use emulator::faults::{FaultError, FaultSpec, Service};
use shared::http::{HttpSettings, RetryPolicy};

fn fast_settings() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        max_concurrency: 4,
        retry: RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(2),
        },
    }
}

fn seed(dir: &Path) {
    std::fs::create_dir_all(dir.join("Interviews")).unwrap();
    std::fs::create_dir_all(dir.join("Team.shareddrive")).unwrap();
    std::fs::create_dir_all(dir.join("Private.unshared")).unwrap();
    std::fs::write(dir.join("notes.md"), "# Notes\nDispatch runs on paper.\n").unwrap();
    std::fs::write(
        dir.join("Interviews/cto.md"),
        "The CTO wants fewer spreadsheets.",
    )
    .unwrap();
    std::fs::write(dir.join("Team.shareddrive/plan.txt"), "shared drive plan").unwrap();
    std::fs::write(dir.join("Private.unshared/secret.md"), "hidden").unwrap();
    std::fs::write(dir.join("old.trashed.md"), "gone").unwrap();
    std::fs::write(
        dir.join("Memo.gdoc.md"),
        "# Memo\nCustoms declarations are re-keyed by hand.\n",
    )
    .unwrap();
    // Incompressible-ish text over the 10 MB cap in every export format.
    let huge: String = (0..1_400_000u64)
        .map(|i| format!("{:x} ", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    std::fs::write(dir.join("Huge.gdoc.md"), huge).unwrap();
}

struct Setup {
    emulator: emulator::Emulator,
    root: String,
    key: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("Client Docs");
    seed(&tree);
    let emulator = emulator::Emulator::start(emulator::Config::new().seed_drive(&tree))
        .await
        .unwrap();
    let root = emulator.seeded_folder_id().unwrap();
    let key = dir.path().join("key.json");
    emulator.google().write_service_account_key(&key).unwrap();
    Setup {
        emulator,
        root,
        key,
        _dir: dir,
    }
}

async fn connect(setup: &Setup) -> DriveClient {
    DriveClient::connect_with(
        DriveScope::ReadOnly,
        &fast_settings(),
        &setup.key,
        &setup.emulator.url(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_pages_shared_drives_and_skips_trashed_and_unshared() {
    let setup = start().await;
    let client = connect(&setup).await.with_page_size(2);
    assert!(client.client_email().contains('@'));
    let mut names: Vec<String> = client
        .list_children(&setup.root)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    names.sort();
    assert_eq!(names, ["Huge", "Interviews", "Memo", "Team", "notes.md"]);
    assert!(
        setup.emulator.requests().count("GET", "/drive/v3/files") >= 3,
        "page size 2 must page"
    );

    let team = client
        .list_children(&setup.root)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == "Team")
        .unwrap();
    assert!(team.is_folder());
    let inside = client.list_children(&team.id).await.unwrap();
    assert_eq!(inside.len(), 1);
    assert_eq!(inside[0].drive_id.as_deref(), Some(team.id.as_str()));
    let meta = client.get_metadata(&inside[0].id).await.unwrap();
    assert_eq!(meta.name, "plan.txt");
    assert_eq!(meta.size, Some(17));
    assert!(meta.md5_checksum.is_some() && meta.modified_time.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_and_exports_stream_to_disk_and_report_the_export_cap() {
    let setup = start().await;
    let client = connect(&setup).await;
    let items = client.list_children(&setup.root).await.unwrap();
    let find = |name: &str| items.iter().find(|i| i.name == name).unwrap().clone();
    let out = tempfile::tempdir().unwrap();

    let notes = find("notes.md");
    let target = out.path().join("sub/notes.md");
    let done = client
        .download_to_file(&notes.id, notes.md5_checksum.as_deref(), &target)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "# Notes\nDispatch runs on paper.\n"
    );
    assert_eq!(done.bytes, 32);
    assert_eq!(Some(done.md5), notes.md5_checksum);

    let memo = find("Memo");
    assert!(memo.is_google_native() && memo.md5_checksum.is_none());
    let target = out.path().join("Memo.md");
    let outcome = client
        .export_to_file(&memo.id, "text/markdown", &target)
        .await
        .unwrap();
    assert!(matches!(outcome, ExportOutcome::Exported(_)));
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("re-keyed by hand")
    );

    let huge = find("Huge");
    let target = out.path().join("Huge.md");
    assert_eq!(
        client
            .export_to_file(&huge.id, "text/markdown", &target)
            .await
            .unwrap(),
        ExportOutcome::TooLarge
    );
    assert!(!target.exists());
    let leftovers = std::fs::read_dir(out.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(leftovers, 0, "no temp file may stay behind");

    let mut buffer = Vec::new();
    client.download(&notes.id, &mut buffer).await.unwrap();
    assert_eq!(buffer, b"# Notes\nDispatch runs on paper.\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retried_and_exhaustion_is_external() {
    let setup = start().await;
    let client = connect(&setup).await;
    setup.emulator.faults().set(
        Service::Google,
        FaultSpec::first(2, FaultError::Status { status: 503 }),
    );
    let items = client.list_children(&setup.root).await.unwrap();
    assert_eq!(items.len(), 5);
    // Connections closed without an answer are transient too.
    setup
        .emulator
        .faults()
        .set(Service::Google, FaultSpec::first(2, FaultError::Drop));
    assert_eq!(client.list_children(&setup.root).await.unwrap(), items);
    setup.emulator.faults().set(
        Service::Google,
        FaultSpec::first(
            1,
            FaultError::RateLimit {
                retry_after_secs: 1,
            },
        ),
    );
    let started = std::time::Instant::now();
    client.get_metadata(&setup.root).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After must be honoured"
    );

    // A Retry-After beyond the policy's cap (2 s here) fails at once instead of stalling.
    setup.emulator.faults().set(
        Service::Google,
        FaultSpec::first(
            1,
            FaultError::RateLimit {
                retry_after_secs: 5,
            },
        ),
    );
    let requests_before = setup.emulator.requests().entries().len();
    let err = client.get_metadata(&setup.root).await.unwrap_err();
    assert_eq!(err.exit_code(), 4, "{err}");
    assert!(
        err.to_string().contains("429") && err.to_string().contains("after 0 retries"),
        "{err}"
    );
    assert_eq!(
        setup.emulator.requests().entries().len(),
        requests_before + 1,
        "no retry after a Retry-After beyond the cap"
    );

    setup.emulator.faults().set(
        Service::Google,
        FaultSpec::every_nth(1, FaultError::Status { status: 500 }),
    );
    let err = client.list_children(&setup.root).await.unwrap_err();
    assert_eq!(err.exit_code(), 4, "{err}");
    assert!(
        err.to_string().contains("after 3 retries") && err.to_string().contains("try again later"),
        "{err}"
    );
    setup.emulator.faults().clear_all();
}

#[tokio::test(flavor = "multi_thread")]
async fn not_shared_revoked_and_broken_keys_get_one_line_errors() {
    let setup = start().await;
    let client = connect(&setup).await;
    let hidden = setup
        .emulator
        .google()
        .find_child(&setup.root, "Private")
        .unwrap();
    // As in Drive, an unshared folder lists as empty; reading its metadata is what fails.
    assert!(client.list_children(&hidden).await.unwrap().is_empty());
    let err = client.get_metadata(&hidden).await.unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.exit_code(), 2);
    assert!(
        msg.contains(&hidden) && msg.contains(client.client_email()) && msg.contains("share it"),
        "{msg}"
    );

    setup
        .emulator
        .google()
        .revoke_service_account(client.client_email());
    let err = client.get_metadata(&setup.root).await.unwrap_err();
    assert_eq!(err.exit_code(), 4);
    assert!(err.to_string().contains("revoked"), "{err}");
    let err = DriveClient::connect_with(
        DriveScope::ReadOnly,
        &fast_settings(),
        &setup.key,
        &setup.emulator.url(),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.exit_code(), 4);
    assert!(
        err.to_string().contains("refused the service account"),
        "{err}"
    );

    let broken = setup._dir.path().join("broken.json");
    std::fs::write(&broken, "{\"type\": \"service_account\", ").unwrap();
    let err = DriveClient::connect_with(
        DriveScope::ReadOnly,
        &fast_settings(),
        &broken,
        &setup.emulator.url(),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains("broken.json") && err.to_string().contains("not valid JSON"),
        "{err}"
    );
}
