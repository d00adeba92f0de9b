//! Kill-safety: `setup` killed at random moments while downloading many files never leaves a
//! `data/.ready` that vouches for an incomplete `data/`, and the next run completes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{SLUG, World, assert_ok};
use emulator::faults::{FaultSpec, Service};
use shared::layout::{CompanyDir, Stage};
use shared::markers::read_verified;

const FILES: usize = 60;

/// Watches `data/.ready` until stopped; returns how often a marker was seen and the violations:
/// a marker present whose files do not verify (checked twice, so a marker withdrawn between
/// reading and hashing — a legitimate new run — is not counted).
fn watch(dir: CompanyDir, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let marker_path = dir.marker(Stage::Data, "");
        let mut violations = Vec::new();
        let mut seen = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Ok(before) = std::fs::read(&marker_path) {
                seen += 1;
                let verdict = read_verified(&dir, Stage::Data, &marker_path);
                let still_same = std::fs::read(&marker_path).is_ok_and(|after| after == before);
                match verdict {
                    Err(e) if still_same => violations.push(e.to_string()),
                    Ok(marker) if still_same && marker.files.len() != FILES + 1 => {
                        violations.push(format!("marker lists {} files", marker.files.len()));
                    }
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (seen, violations)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_at_random_moments_the_data_set_is_never_half_ready_and_the_rerun_completes() {
    let seed = tempfile::tempdir().unwrap();
    let root_dir = seed.path().join("Many");
    for i in 0..FILES {
        let dir = root_dir.join(format!("batch-{}", i % 4));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("doc-{i:03}.md")),
            format!("document {i}\n").repeat(2_000),
        )
        .unwrap();
    }
    let world = World::start(Some(&root_dir)).await;
    let root = world.emulator.seeded_folder_id().unwrap();
    world.emulator.faults().set(
        Service::Google,
        FaultSpec::latency(Duration::from_millis(15), Duration::from_millis(10)),
    );
    let ids: Vec<String> = world
        .emulator
        .state_dump()
        .pointer("/google/files")
        .and_then(|f| f.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|f| f["name"].as_str().is_some_and(|n| n.starts_with("doc-")))
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), FILES);

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(CompanyDir::new(world.outputs(), SLUG), stop.clone());
    let seed_value = fastrand::u64(..);
    println!("kill schedule seed {seed_value}");
    let mut rng = fastrand::Rng::with_seed(seed_value);
    let args = [
        "--google-drive-link",
        root.as_str(),
        "--max-concurrent-downloads",
        "4",
        "--run-id",
        "kill-test",
    ];
    assert_ok(&world.setup(&args, &world.env()).await);
    let mut killed_mid_run = 0;
    for round in 0..8 {
        // Change a third of the files so the run withdraws the marker and downloads again. Even
        // rounds kill early (mid-download); odd ones late, often after the run completed, so
        // the next run starts from a marker.
        for id in ids.iter().skip(round % 3).step_by(3) {
            let content = format!("round {round}\n").repeat(1_500).into_bytes();
            world.emulator.google().replace_content(id, content);
        }
        let mut child = world.command(&args, &world.env()).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(if round % 2 == 0 {
            rng.u64(20..250)
        } else {
            rng.u64(200..1200)
        }))
        .await;
        if child.try_wait().unwrap().is_none() {
            child.start_kill().unwrap();
            killed_mid_run += 1;
        }
        child.wait().await.unwrap();
    }
    let output = world.setup(&args, &world.env()).await;
    stop.store(true, Ordering::Relaxed);
    let (seen, violations) = watcher.join().unwrap();
    println!("{killed_mid_run} of 8 kills landed during a run; the marker was seen {seen} times");
    assert_ok(&output);
    assert!(
        violations.is_empty(),
        "data/.ready vouched for an incomplete data set: {violations:?}"
    );
    assert!(
        killed_mid_run >= 3,
        "only {killed_mid_run} kills landed during a run"
    );
    assert!(seen > 0, "the watcher never saw a marker");

    let marker = world.marker();
    assert_eq!(marker.files.len(), FILES + 1);
    for id in &ids {
        let record = marker
            .files
            .iter()
            .find(|f| f.origin["drive_id"].as_str() == Some(id.as_str()))
            .unwrap();
        let on_disk = std::fs::read(world.company().join(&record.path)).unwrap();
        assert_eq!(
            on_disk,
            world.emulator.google().file_bytes(id).unwrap(),
            "{} is stale",
            record.path
        );
    }
    let leftovers: Vec<String> = common::tree(&world.company().data_dir())
        .into_iter()
        .filter(|p| p.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
