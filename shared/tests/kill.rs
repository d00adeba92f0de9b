//! Kills a writer at random moments, hundreds of times, and checks after each kill that a reader
//! never accepts a partial artifact or a marker whose files do not verify (SPEC §4.3).
//!
//! The writer runs in a child process (this same test binary, started with `--writer DIR`): it
//! loops writing a stage the way every job does — withdraw the marker, write artifacts through
//! `AtomicFile`, write the marker last. Each artifact is self-describing (length prefix + SHA-256
//! suffix), so a torn file is detectable even without a marker. A second run with a deliberately
//! careless writer (plain writes, marker never withdrawn) proves the checks catch what they guard.
//! Last, a stage lock's holder is killed: the lock must be free again at once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};
use shared::atomic::{AtomicFile, remove_durably};
use shared::layout::{CompanyDir, Stage};
use shared::lock::StageLock;
use shared::markers::{FileRecord, Marker, read_verified};

const FILES: usize = 6;

fn artifact(round: u64, k: usize) -> Vec<u8> {
    let len = fastrand::usize(1..160_000);
    let body: Vec<u8> = (0..len)
        .map(|i| (i as u64 ^ round ^ k as u64) as u8)
        .collect();
    let mut out = (len as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&Sha256::digest(&body));
    out
}

fn artifact_is_whole(bytes: &[u8]) -> bool {
    if bytes.len() < 40 {
        return false;
    }
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes.len() == 8 + len + 32
        && Sha256::digest(&bytes[8..8 + len]).as_slice() == &bytes[8 + len..]
}

fn write_stage(dir: &CompanyDir, round: u64, careful: bool) {
    let marker_path = dir.marker(Stage::Data, "");
    if careful {
        remove_durably(&marker_path).unwrap();
    }
    let mut files = Vec::new();
    for k in 0..FILES {
        let rel = format!("data/part_{k}.bin");
        let bytes = artifact(round, k);
        if careful {
            let mut file = AtomicFile::create(&dir.join(&rel)).unwrap();
            file.write_all(&bytes).unwrap();
            file.commit().unwrap();
        } else {
            std::fs::create_dir_all(dir.data_dir()).unwrap();
            let mut file = std::fs::File::create(dir.join(&rel)).unwrap();
            for chunk in bytes.chunks(4096) {
                file.write_all(chunk).unwrap();
            }
        }
        files.push(FileRecord::of(dir, &rel).unwrap());
    }
    let now = chrono::Utc::now();
    let marker = Marker {
        stage: "data".into(),
        run_id: format!("round-{round}"),
        slug: dir.slug().into(),
        job: "kill-test".into(),
        job_version: "0".into(),
        started: now,
        finished: now,
        fingerprint: round.to_string(),
        files,
        metrics: Default::default(),
        details: Default::default(),
    };
    if careful {
        marker.write(&marker_path).unwrap();
    } else {
        std::fs::write(&marker_path, serde_json::to_vec(&marker).unwrap()).unwrap();
    }
}

fn writer(root: &Path, careful: bool) -> ! {
    let dir = CompanyDir::new(root, "acme");
    for round in 0.. {
        write_stage(&dir, round, careful);
        // A job rests between runs: give kills a chance to land while the marker stands.
        std::thread::sleep(Duration::from_millis(5));
    }
    unreachable!()
}

/// What a reader finds after a kill: `Ok(true)` marker accepted, `Ok(false)` no marker,
/// `Err` a violation.
fn inspect(root: &Path) -> Result<bool, String> {
    let dir = CompanyDir::new(root, "acme");
    if let Ok(entries) = std::fs::read_dir(dir.data_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("part_") {
                let bytes = std::fs::read(entry.path()).unwrap();
                if !artifact_is_whole(&bytes) {
                    return Err(format!(
                        "partial artifact visible at its final name: {name}"
                    ));
                }
            }
        }
    }
    let marker_path = dir.marker(Stage::Data, "");
    if !marker_path.exists() {
        return Ok(false);
    }
    read_verified(&dir, Stage::Data, &marker_path)
        .map(|_| true)
        .map_err(|e| e.to_string())
}

/// Holds the data stage's lock and says so on stdout, until killed.
fn lock_holder(root: &Path) -> ! {
    let _lock = StageLock::acquire(&CompanyDir::new(root, "acme"), Stage::Data, "holder").unwrap();
    println!("locked");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// A killed holder leaves no stale lock: refused while it lives, free once it is gone.
fn killed_lock_holder_releases_the_lock() -> Result<(), String> {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = CompanyDir::new(tmp.path(), "acme");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--lock-holder")
        .arg(tmp.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let refused = StageLock::acquire(&dir, Stage::Data, "second");
    child.kill().unwrap();
    child.wait().unwrap();
    if line.trim() != "locked" {
        return Err(format!("the holder did not take the lock: {line:?}"));
    }
    match refused {
        Ok(_) => return Err("the lock was granted while its holder lived".into()),
        Err(e) if !e.to_string().contains("run holder") => {
            return Err(format!("the refusal does not name the holder: {e}"));
        }
        Err(_) => {}
    }
    StageLock::acquire(&dir, Stage::Data, "second")
        .map(drop)
        .map_err(|e| format!("the lock stayed taken after its holder was killed: {e}"))
}

struct Tally {
    kills: usize,
    with_marker: usize,
    violations: Vec<String>,
}

fn hammer(kills: usize, careful: bool) -> Tally {
    let tmp = tempfile::tempdir().unwrap();
    let root: PathBuf = tmp.path().to_path_buf();
    let exe = std::env::current_exe().unwrap();
    let mut tally = Tally {
        kills: 0,
        with_marker: 0,
        violations: Vec::new(),
    };
    for _ in 0..kills {
        let mut child = Command::new(&exe)
            .arg(if careful {
                "--writer"
            } else {
                "--careless-writer"
            })
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(fastrand::u64(500..40_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        tally.kills += 1;
        match inspect(&root) {
            Ok(true) => tally.with_marker += 1,
            Ok(false) => {}
            Err(violation) => tally.violations.push(violation),
        }
    }
    tally
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--writer") => writer(Path::new(&args[2]), true),
        Some("--careless-writer") => writer(Path::new(&args[2]), false),
        Some("--lock-holder") => lock_holder(Path::new(&args[2])),
        _ => {}
    }
    let mut failed = 0;

    let careful = hammer(220, true);
    println!(
        "careful writer: {} kills, marker present and verified after {}, violations {}",
        careful.kills,
        careful.with_marker,
        careful.violations.len()
    );
    if !careful.violations.is_empty() {
        failed += 1;
        println!(
            "test careful_writer_never_exposes_partial_state ... FAILED: {:?}",
            &careful.violations[..careful.violations.len().min(3)]
        );
    } else if careful.with_marker == 0 || careful.with_marker == careful.kills {
        failed += 1;
        println!(
            "test careful_writer_never_exposes_partial_state ... FAILED: kills never landed both inside and outside a round"
        );
    } else {
        println!("test careful_writer_never_exposes_partial_state ... ok");
    }

    let careless = hammer(60, false);
    println!(
        "careless writer: {} kills, violations caught {}",
        careless.kills,
        careless.violations.len()
    );
    if careless.violations.is_empty() {
        failed += 1;
        println!(
            "test careless_writer_is_caught ... FAILED: the checks missed a non-atomic writer"
        );
    } else {
        println!("test careless_writer_is_caught ... ok");
    }

    match killed_lock_holder_releases_the_lock() {
        Ok(()) => println!("test killed_lock_holder_releases_the_lock ... ok"),
        Err(e) => {
            failed += 1;
            println!("test killed_lock_holder_releases_the_lock ... FAILED: {e}");
        }
    }

    println!("{} passed, {failed} failed", 3 - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
