//! `setup` against the emulated Drive: nested folders, paging, a shared drive, Google-native
//! exports (with the 10 MB cap), tables converted, hostile and duplicate names, skipped files,
//! and re-runs that download nothing unless something changed.

mod common;

use common::{World, assert_ok, tree, write_workbook};
use emulator::faults::{FaultError, FaultSpec, Service};
use md5::{Digest, Md5};
use shared::records::{DataDetails, DocumentOrigin};

fn seed_tree(root: &std::path::Path) {
    let dir = |p: &str| std::fs::create_dir_all(root.join(p)).unwrap();
    let file = |p: &str, content: &[u8]| std::fs::write(root.join(p), content).unwrap();
    dir("Interviews/2026/January");
    dir("Team.shareddrive/Plans");
    dir("Private.unshared");
    file(
        "Interviews/cto.md",
        b"# CTO\nThe CTO wants fewer spreadsheets.\n",
    );
    file(
        "Interviews/2026/January/dispatch.md",
        b"Dispatch prints 85 tour plans a day.\n",
    );
    file(
        "Team.shareddrive/Plans/roadmap.txt",
        b"Shared drive roadmap: telematics first.\n",
    );
    file("Private.unshared/salaries.md", b"never listed\n");
    file("old.trashed.md", b"trashed\n");
    file(
        "Memo.gdoc.md",
        b"# Memo\nDispatchers re-key 1,400 customs declarations a month by hand.\n",
    );
    file("Deck.gslides.pdf", b"%PDF-1.4\n% slide deck\n");
    file("lanes.csv", b"Lane,Shipments\nHAM-MIL,1240\nDUI-RTM,3120\n");
    file("photo.jpg", b"\xff\xd8\xff\xe0 not really a jpeg");
    file("empty.txt", b"");
    file("Blank.gdoc.md", b"");
    write_workbook(
        &root.join("metrics.xlsx"),
        &[("Orders", 120), ("Customs", 3)],
    );
    write_workbook(
        &root.join("Fleet.gsheet.xlsx"),
        &[("KPIs", 2), ("Trucks", 2)],
    );
    // Over Drive's 10 MB export cap as Markdown (and as the emulator's uncompressed DOCX), but
    // not as plain text, which keeps only the links' text.
    let link = format!("[x](https://example.com/{})\n", "a".repeat(220));
    file("Huge.gdoc.md", link.repeat(48_000).as_bytes());
}

/// The messages of the WARN lines of a run's JSON log.
fn warnings(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["level"] == "WARN")
        .filter_map(|line| line["message"].as_str().map(str::to_string))
        .collect()
}

fn origin(record: &shared::markers::FileRecord) -> DocumentOrigin {
    serde_json::from_value(record.origin.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drive_folder_becomes_a_verified_data_set_and_reruns_download_nothing() {
    let seed = tempfile::tempdir().unwrap();
    let root_dir = seed.path().join("Acme Drive");
    seed_tree(&root_dir);
    let world = World::start(Some(&root_dir)).await;
    let google = world.emulator.google();
    let root = world.emulator.seeded_folder_id().unwrap();
    // Names no file system allows, and duplicates, as only the Drive API can create them.
    for (name, mime, content) in [
        ("../../etc/passwd", "text/plain", "root:x:0:0"),
        ("CON", "text/plain", "reserved device name"),
        ("a/b.md", "text/markdown", "slash in the name"),
        (
            "bell\u{7}\u{1b}[31m.md",
            "text/markdown",
            "control characters",
        ),
        ("Plan 😀 𝄞.md", "text/markdown", "four-byte characters"),
        ("report.md", "text/markdown", "first report"),
        ("report.md", "text/markdown", "second report"),
    ] {
        google
            .add_file(&root, name, mime, content.as_bytes().to_vec())
            .unwrap();
    }
    let link = format!("https://drive.google.com/drive/folders/{root}?usp=sharing");
    let args = [
        "--google-drive-link",
        &link,
        "--drive-page-size",
        "3",
        "--max-concurrent-downloads",
        "3",
    ];

    let output = world.setup(&args, &world.env()).await;
    assert_ok(&output);
    let marker = world.marker();
    let details: DataDetails = serde_json::from_value(marker.details.clone()).unwrap();
    assert_eq!(details.source, "drive");
    let paths: Vec<&str> = marker.files.iter().map(|f| f.path.as_str()).collect();
    for expected in [
        "data/Interviews/cto.md",
        "data/Interviews/2026/January/dispatch.md",
        "data/Team/Plans/roadmap.txt",
        "data/Memo.md",
        "data/Deck.pdf",
        "data/Fleet.md",
        "data/Huge.txt",
        "data/lanes.csv.md",
        "data/metrics.xlsx.md",
        "data/_.._etc_passwd.txt",
        "data/CON_.txt",
        "data/a_b.md",
        "data/bell[31m.md",
        "data/Plan 😀 𝄞.md",
        details.submission.as_str(),
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(
        details.submission.starts_with("debug/submission_")
            && details.submission.ends_with(".json")
    );
    // Duplicates: both kept, numbered in the order of their Drive ids.
    let mut reports: Vec<_> = marker
        .files
        .iter()
        .filter(|f| f.path.starts_with("data/report"))
        .collect();
    reports.sort_by_key(|f| origin(f).drive_id);
    assert_eq!(
        reports.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        ["data/report.md", "data/report (2).md"]
    );
    assert!(
        paths
            .iter()
            .all(|p| !p.contains("salaries") && !p.contains("old")),
        "{paths:?}"
    );

    let data = world.company().data_dir();
    let read = |p: &str| std::fs::read_to_string(data.join(p)).unwrap();
    assert!(read("Memo.md").contains("1,400 customs declarations"));
    assert_eq!(read("_.._etc_passwd.txt"), "root:x:0:0");
    let metrics = read("metrics.xlsx.md");
    assert!(metrics.contains("## Sheet: Orders") && metrics.contains("## Sheet: Customs"));
    assert_eq!(
        metrics.matches("| Region | Orders value |").count(),
        3,
        "header repeated every 50 rows"
    );
    assert!(metrics.contains("| Customs-R3 | 4.5 |"));
    let fleet = read("Fleet.md");
    assert!(fleet.contains("## Sheet: KPIs") && fleet.contains("## Sheet: Trucks"));
    assert!(read("lanes.csv.md").contains("| HAM-MIL | 1240 |"));

    let memo = marker.file("data/Memo.md").unwrap();
    assert_eq!(origin(memo).export_format.as_deref(), Some("text/markdown"));
    assert_eq!(
        origin(memo).mime_type.as_deref(),
        Some("application/vnd.google-apps.document")
    );
    let huge = origin(marker.file("data/Huge.txt").unwrap());
    assert_eq!(huge.export_format.as_deref(), Some("text/plain"));
    let roadmap = origin(marker.file("data/Team/Plans/roadmap.txt").unwrap());
    assert_eq!(roadmap.original_path, "Team/Plans/roadmap.txt");
    assert!(roadmap.md5_checksum.is_some() && roadmap.modified_time.is_some());
    let passwd = origin(marker.file("data/_.._etc_passwd.txt").unwrap());
    assert_eq!(passwd.original_name, "../../etc/passwd");

    let skipped: Vec<(&str, &str)> = details
        .skipped
        .iter()
        .map(|s| (s.original_path.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .any(|(p, r)| *p == "Blank" && r.contains("empty"))
    );
    assert!(
        skipped
            .iter()
            .any(|(p, r)| *p == "empty.txt" && r.contains("0 bytes"))
    );
    assert!(
        skipped
            .iter()
            .any(|(p, r)| *p == "photo.jpg" && r.contains("unsupported"))
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let key: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&world.key).unwrap()).unwrap();
    let key_line = key["private_key"].as_str().unwrap().lines().nth(3).unwrap();
    assert!(
        !stdout.contains(key_line) && !stdout.contains("PRIVATE KEY"),
        "a log line leaked the key"
    );
    assert!(
        stdout.contains("skipped photo.jpg") && stdout.contains("10 MB export cap"),
        "{stdout}"
    );
    // Every renamed or numbered file is one warning; nothing else is reported as renamed.
    let mut renamed: Vec<String> = warnings(&output)
        .into_iter()
        .filter(|m| m.starts_with("renamed "))
        .collect();
    renamed.sort();
    let mut expected = vec![
        r#"renamed "../../etc/passwd" -> "_.._etc_passwd.txt""#.to_string(),
        r#"renamed "CON" -> "CON_.txt""#.to_string(),
        r#"renamed "a/b.md" -> "a_b.md""#.to_string(),
        r#"renamed "bell\u{7}\u{1b}[31m.md" -> "bell[31m.md""#.to_string(),
        r#"renamed "report.md" -> "report (2).md""#.to_string(),
    ];
    expected.sort();
    assert_eq!(renamed, expected);
    assert!(
        world.emulator.requests().count("GET", "/drive/v3/files") >= 8,
        "listing must page"
    );
    assert!(
        tree(&data).iter().all(|p| !p.contains(".tmp-")),
        "no temp files left"
    );

    // Unchanged content: list requests only, no downloads or exports, the marker untouched.
    let before = world.fetches_except(&root);
    let output = world.setup(&args, &world.env()).await;
    assert_ok(&output);
    assert_eq!(
        world.fetches_except(&root),
        before,
        "a re-run must not download"
    );
    assert_eq!(world.marker(), marker);
    assert!(String::from_utf8_lossy(&output.stdout).contains("already done"));

    // One changed file is fetched again; the others are reused.
    let cto = google
        .find_child(&google.find_child(&root, "Interviews").unwrap(), "cto.md")
        .unwrap();
    let memo_id = google.find_child(&root, "Memo").unwrap();
    google.replace_content(&cto, b"# CTO\nNow with a telematics budget.\n".to_vec());
    let (cto_before, memo_before) = (world.fetches_of(&cto), world.fetches_of(&memo_id));
    let before = world.fetches_except(&root);
    assert_ok(&world.setup(&args, &world.env()).await);
    assert_eq!(world.fetches_of(&cto), cto_before + 1);
    assert_eq!(world.fetches_of(&memo_id), memo_before);
    assert_eq!(
        world.fetches_except(&root),
        before + 1,
        "only the changed file is fetched"
    );
    assert!(read("Interviews/cto.md").contains("telematics budget"));
    let rerun = world.marker();
    assert_eq!(
        rerun.metrics["files_reused"],
        serde_json::json!((marker.files.len() - 2) as f64)
    );

    // --force fetches everything again.
    let before = world.fetches_except(&root);
    assert_ok(
        &world
            .setup(&[&args[..], &["--force"]].concat(), &world.env())
            .await,
    );
    assert!(world.fetches_except(&root) >= before + rerun.files.len() - 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_file_link_and_an_export_over_the_cap_in_every_format() {
    let seed = tempfile::tempdir().unwrap();
    let root_dir = seed.path().join("Drive");
    std::fs::create_dir_all(&root_dir).unwrap();
    std::fs::write(root_dir.join("brief.md"), "Single linked brief.\n").unwrap();
    // Incompressible text: every export format exceeds the cap.
    let noise: String = (0..1_500_000u64)
        .map(|i| format!("{:x} ", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    std::fs::write(root_dir.join("Noise.gdoc.md"), noise).unwrap();
    let world = World::start(Some(&root_dir)).await;
    let root = world.emulator.seeded_folder_id().unwrap();
    let brief = world
        .emulator
        .google()
        .find_child(&root, "brief.md")
        .unwrap();

    let link = format!("https://drive.google.com/file/d/{brief}/view");
    assert_ok(
        &world
            .setup(&["--google-drive-link", &link], &world.env())
            .await,
    );
    let paths: Vec<String> = world
        .marker()
        .files
        .iter()
        .map(|f| f.path.clone())
        .collect();
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[0], "data/brief.md");

    let output = world
        .setup(&["--google-drive-link", &root, "--force"], &world.env())
        .await;
    assert_ok(&output);
    let marker = world.marker();
    let details: DataDetails = serde_json::from_value(marker.details).unwrap();
    assert_eq!(details.skipped.len(), 1);
    assert_eq!(details.skipped[0].original_path, "Noise");
    assert!(
        details.skipped[0].reason.contains("10 MB export cap"),
        "{:?}",
        details.skipped
    );
    assert!(marker.files.iter().all(|f| !f.path.contains("Noise")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_can_come_as_json_in_the_environment() {
    let seed = tempfile::tempdir().unwrap();
    let root_dir = seed.path().join("Drive");
    std::fs::create_dir_all(&root_dir).unwrap();
    std::fs::write(
        root_dir.join("brief.md"),
        "A brief for the environment key.\n",
    )
    .unwrap();
    let world = World::start(Some(&root_dir)).await;
    let root = world.emulator.seeded_folder_id().unwrap();
    let key_json = std::fs::read_to_string(&world.key).unwrap();
    // As Paperspace injects a secret: the JSON itself, no file; it wins over a stale path.
    let env = vec![
        ("GDRIVE_CREDENTIALS_JSON".to_string(), key_json.clone()),
        (
            "GDRIVE_CREDENTIALS_PATH".to_string(),
            "/nonexistent/key.json".to_string(),
        ),
        ("GOOGLE_API_BASE_URL".to_string(), world.emulator.url()),
    ];
    let output = world.setup(&["--google-drive-link", &root], &env).await;
    assert_ok(&output);
    assert_eq!(world.marker().files.len(), 2, "the submission and brief.md");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let private_key: serde_json::Value = serde_json::from_str(&key_json).unwrap();
    let pem_line = private_key["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap();
    assert!(!stdout.contains(pem_line), "the key reached the log");

    let broken = vec![
        (
            "GDRIVE_CREDENTIALS_JSON".to_string(),
            "{ not json".to_string(),
        ),
        ("GOOGLE_API_BASE_URL".to_string(), world.emulator.url()),
    ];
    let output = world
        .setup(&["--google-drive-link", &root, "--force"], &broken)
        .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("GDRIVE_CREDENTIALS_JSON") && stderr.contains("not valid JSON"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_stay_within_the_limit_and_bodies_cut_mid_way_are_fetched_again() {
    const FILES: usize = 12;
    let seed = tempfile::tempdir().unwrap();
    let root_dir = seed.path().join("Drive");
    std::fs::create_dir_all(&root_dir).unwrap();
    let contents: Vec<(String, String)> = (0..FILES)
        .map(|i| {
            let name = format!("doc-{i:02}.md");
            let text = format!("Document {i}: tour plan for depot {i}.\n").repeat(500);
            std::fs::write(root_dir.join(&name), &text).unwrap();
            (name, text)
        })
        .collect();
    let world = World::start(Some(&root_dir)).await;
    let root = world.emulator.seeded_folder_id().unwrap();
    // Only downloads are slowed (so that they overlap) and every third is cut half-way.
    world.emulator.faults().set(
        Service::Google,
        FaultSpec {
            latency_ms: 80,
            downloads_only: true,
            ..FaultSpec::every_nth(3, FaultError::Truncate)
        },
    );

    let args = [
        "--google-drive-link",
        root.as_str(),
        "--max-concurrent-downloads",
        "3",
    ];
    assert_ok(&world.setup(&args, &world.env()).await);

    let entries = world.emulator.requests().entries();
    let cut: Vec<&str> = entries
        .iter()
        .filter(|e| e.fault.as_deref() == Some("truncate"))
        .map(|e| e.path.as_str())
        .collect();
    assert!(cut.len() >= FILES / 3, "{cut:?}");
    for path in &cut {
        assert!(
            entries.iter().any(|e| e.path == *path
                && e.status == Some(200)
                && e.fault.as_deref() == Some("latency")),
            "{path} was cut and never fetched whole"
        );
    }
    // Listing and metadata are done before the first download, so every Drive request in
    // flight at once during the downloads is a download.
    let peak = world.emulator.requests().max_concurrency(Some("google"));
    assert!(
        (2..=3).contains(&peak),
        "downloads in flight at once: {peak}"
    );

    let marker = world.marker();
    let data = world.company().data_dir();
    for (name, text) in &contents {
        let written = std::fs::read(data.join(name)).unwrap();
        assert_eq!(written, text.as_bytes(), "{name}");
        let drive_md5 = origin(marker.file(&format!("data/{name}")).unwrap()).md5_checksum;
        assert_eq!(
            drive_md5.as_deref(),
            Some(hex::encode(Md5::digest(&written)).as_str()),
            "{name}"
        );
    }
    assert_eq!(
        marker.files.len(),
        FILES + 1,
        "the documents and the submission"
    );
    assert!(
        tree(&data).iter().all(|p| !p.contains(".tmp-")),
        "no temp files left from the cut downloads"
    );
}
