//! The bad inputs of SPEC §8 that concern `setup`: each fails with one line on stderr saying what
//! is wrong and what to do, the documented exit code, and leaves the earlier data set intact.

mod common;

use common::{World, failure};

/// Every case: extra args, env changes, expected exit code, words the message must contain.
struct Case {
    args: Vec<String>,
    env: Vec<(String, String)>,
    code: i32,
    words: Vec<String>,
}

fn case(args: &[&str], env: Vec<(String, String)>, code: i32, words: &[&str]) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        env,
        code,
        words: words.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_fail_with_one_line_and_lose_nothing() {
    let seed = tempfile::tempdir().unwrap();
    let root_dir = seed.path().join("Drive");
    std::fs::create_dir_all(root_dir.join("Private.unshared")).unwrap();
    std::fs::write(root_dir.join("notes.md"), "earlier notes\n").unwrap();
    std::fs::write(root_dir.join("Private.unshared/hidden.md"), "hidden\n").unwrap();
    let world = World::start(Some(&root_dir)).await;
    let google = world.emulator.google();
    let root = world.emulator.seeded_folder_id().unwrap();
    let unshared = google.find_child(&root, "Private").unwrap();
    let empty = google.create_folder("Empty", None);

    // The earlier run whose data set must survive every failure below.
    common::assert_ok(
        &world
            .setup(&["--google-drive-link", &root], &world.env())
            .await,
    );
    let earlier = world.marker();
    let earlier_tree = common::tree(&world.outputs());

    let tmp = world.tmp.path();
    let malformed = tmp.join("malformed.json");
    std::fs::write(
        &malformed,
        "{\"type\": \"service_account\", \"private_key\": ",
    )
    .unwrap();
    let user_key = tmp.join("user.json");
    std::fs::write(
        &user_key,
        r#"{"type": "authorized_user", "client_id": "x"}"#,
    )
    .unwrap();
    let with_key = |path: &std::path::Path| {
        vec![
            (
                "GDRIVE_CREDENTIALS_PATH".to_string(),
                path.display().to_string(),
            ),
            ("GOOGLE_API_BASE_URL".to_string(), world.emulator.url()),
        ]
    };
    let no_key = vec![("GOOGLE_API_BASE_URL".to_string(), world.emulator.url())];
    let env = world.env();
    let missing_key = tmp.join("absent.json");
    let cases = vec![
        case(
            &["--google-drive-link", &root],
            no_key,
            2,
            &["GDRIVE_CREDENTIALS_PATH is not set"],
        ),
        case(
            &["--google-drive-link", &root],
            with_key(&missing_key),
            2,
            &["absent.json", "cannot read"],
        ),
        case(
            &["--google-drive-link", &root],
            with_key(&malformed),
            2,
            &["malformed.json", "not valid JSON"],
        ),
        case(
            &["--google-drive-link", &root],
            with_key(&user_key),
            2,
            &["not a service account key"],
        ),
        case(
            &["--google-drive-link", "https://example.com/folders/abc"],
            env.clone(),
            2,
            &["google_drive_link", "Share"],
        ),
        case(
            &["--google-drive-link", "not a link"],
            env.clone(),
            2,
            &["google_drive_link"],
        ),
        case(
            &["--google-drive-link", "1NoSuchFolderNoSuchFolderNoSuchF"],
            env.clone(),
            2,
            &["not found or not shared", "@"],
        ),
        case(
            &["--google-drive-link", &unshared],
            env.clone(),
            2,
            &[&unshared, "share it with that address"],
        ),
        case(
            &["--google-drive-link", &empty],
            env.clone(),
            2,
            &["contains no files", "leave google_drive_link empty"],
        ),
        case(
            &["--company-name", "   ", "--google-drive-link", &root],
            env.clone(),
            2,
            &["company_name"],
        ),
        case(
            &["--company-name", "!!! ???", "--google-drive-link", &root],
            env.clone(),
            2,
            &["company_name", "letter or digit"],
        ),
        case(
            &["--use-cases-count", "0"],
            env.clone(),
            2,
            &["use_cases_count", "1 to 20"],
        ),
        case(
            &["--use-cases-count", "21"],
            env.clone(),
            2,
            &["use_cases_count"],
        ),
        case(
            &["--use-cases-count=-1"],
            env.clone(),
            2,
            &["use_cases_count"],
        ),
        case(
            &["--use-cases-count", "abc"],
            env.clone(),
            2,
            &["use_cases_count", "\"abc\""],
        ),
        case(
            &["--source-dir", "/nonexistent/documents"],
            env.clone(),
            2,
            &["--source-dir", "/nonexistent/documents"],
        ),
    ];
    for case in cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let args = if args.contains(&"--google-drive-link") || args.contains(&"--source-dir") {
            args
        } else {
            [&args[..], &["--google-drive-link", &root]].concat()
        };
        let output = world.setup(&args, &case.env).await;
        let (code, stderr) = failure(&output);
        assert_eq!(code, case.code, "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line expected, got {stderr}"
        );
        for word in &case.words {
            assert!(
                stderr.contains(word.as_str()),
                "{args:?}: {word:?} not in {stderr}"
            );
        }
        assert_eq!(world.marker(), earlier, "{args:?} changed the data set");
        assert_eq!(
            common::tree(&world.outputs()),
            earlier_tree,
            "{args:?} changed the outputs"
        );
    }

    // A revoked key is an external failure (exit 4), also before anything is touched.
    google.revoke_service_account(&earlier_email(&world.key));
    let (code, stderr) = failure(
        &world
            .setup(&["--google-drive-link", &root], &world.env())
            .await,
    );
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected, got {stderr}");
    assert!(stderr.contains("revoked"), "{stderr}");
    assert_eq!(world.marker(), earlier);
    assert_eq!(
        common::tree(&world.outputs()),
        earlier_tree,
        "a revoked key changed the outputs"
    );
}

fn earlier_email(key: &std::path::Path) -> String {
    let key: serde_json::Value = serde_json::from_slice(&std::fs::read(key).unwrap()).unwrap();
    key["client_email"].as_str().unwrap().to_string()
}
