//! The deployment specs are code: parse them and run every job's arguments through the real
//! binary's argument parser and `--dry-run` (validation of inputs, roots and configuration with no
//! network and no writes), with the values of the example inputs filled in.
//!
//! Each job is dry-run with its upstream stages present (small but valid stages written with the
//! shared contract), as it would find them in a real run, and with the environment the spec gives
//! it (every secret reference replaced by a fake of the right shape). The job binaries are built
//! by `make build` (which `make test` runs first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

const JOBS: [&str; 4] = ["setup", "vectorize", "pipeline", "upload"];
const SLUG: &str = "acme_logistics_gmbh";
/// What Argo's `{{workflow.name}}` (the template's default run_id) becomes in a run.
const ARGO_RUN_ID: &str = "report-pipeline-x7k2p";

/// Writes a small, valid stage (files + marker) produced by `job` under `root`.
fn write_stage(root: &Path, job: &str, run_id: &str) {
    use shared::layout::{CompanyDir, Stage};
    use shared::markers::{FileRecord, Marker};
    use shared::records::{DataDetails, FinalDetails, IndexedFile, VectorRecord};
    let dir = CompanyDir::new(root, SLUG);
    let write = |rel: &str, bytes: &[u8]| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        FileRecord::of(&dir, rel).unwrap()
    };
    let (stage, files, details, marker_path) = match job {
        "setup" => {
            let submission = "debug/submission_20260101_000000_r1.json";
            let files = vec![
                write(submission, b"{}"),
                write("data/notes.md", b"# Notes\n"),
            ];
            let details = DataDetails {
                submission: submission.into(),
                source: "local".into(),
                skipped: vec![],
            };
            (
                Stage::Data,
                files,
                serde_json::to_value(details).unwrap(),
                dir.marker(Stage::Data, ""),
            )
        }
        "vectorize" => {
            let record = VectorRecord {
                run_id: "r1".into(),
                vector_store_id: Some("vs_dry_run".into()),
                files: vec![IndexedFile {
                    path: "data/notes.md".into(),
                    file_id: "file-dry-run".into(),
                    filename: "notes.md".into(),
                    status: "completed".into(),
                    last_error: None,
                }],
                counts: [("completed".to_string(), 1), ("total".to_string(), 1)].into(),
            };
            let files = vec![write(
                "vector_ids/vector_20260101_000000.json",
                &serde_json::to_vec(&record).unwrap(),
            )];
            (
                Stage::Vectors,
                files,
                serde_json::to_value(record).unwrap(),
                dir.marker(Stage::Vectors, ""),
            )
        }
        "pipeline" => {
            let report = format!("final/FINAL_REPORT_{SLUG}_20260101_000000.md");
            let files = vec![write(&report, b"# Report\n")];
            let details = FinalDetails {
                report,
                model_set: "gpt5".into(),
                use_cases_count: 7,
                ..Default::default()
            };
            (
                Stage::Final,
                files,
                serde_json::to_value(details).unwrap(),
                dir.marker(Stage::Final, "20260101_000000"),
            )
        }
        other => panic!("{other} produces no stage a job reads"),
    };
    Marker {
        stage: stage.as_str().into(),
        run_id: run_id.into(),
        slug: SLUG.into(),
        job: job.into(),
        job_version: "test".into(),
        started: chrono::Utc::now(),
        finished: chrono::Utc::now(),
        fingerprint: "spec-test".into(),
        files,
        metrics: Default::default(),
        details,
    }
    .write(&marker_path)
    .unwrap();
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn binary(job: &str) -> PathBuf {
    // target/<profile>/deps/specs-<hash> → target/<profile>/<job>
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(job);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` (make build) first",
        path.display()
    );
    path
}

fn yaml(relative: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(relative)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"))
}

fn example_inputs() -> BTreeMap<String, String> {
    let Value::Mapping(map) = yaml("workflows/paperspace/inputs.example.yaml") else {
        panic!("inputs must be a mapping")
    };
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => serde_yaml::to_string(&other).unwrap().trim().to_string(),
            };
            (k.as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// Runs `job` with `args` plus `--dry-run` and only the environment `envs`, asserts it validated
/// and wrote nothing, and returns its standard output (the plan).
fn dry_run(job: &str, args: &[String], envs: &BTreeMap<String, String>, watched: &Path) -> String {
    let before = tree(watched);
    let output = Command::new(binary(job))
        .args(args)
        .arg("--dry-run")
        .env_clear()
        .envs(envs)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{job} {args:?} --dry-run failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(tree(watched), before, "{job} --dry-run wrote files");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The variables that carry credentials or private locations: always a secret reference in a
/// spec, never a literal.
const SECRET_VARS: [&str; 3] = [
    "OPENAI_API_KEY",
    "GDRIVE_CREDENTIALS_JSON",
    "GDRIVE_FINAL_REPORT_FOLDER",
];

/// Whether a variable's name says it holds a credential (so a literal value would leak one).
fn credential_named(name: &str) -> bool {
    SECRET_VARS.contains(&name)
        || ["KEY", "SECRET", "CREDENTIALS", "TOKEN", "PASSWORD"]
            .iter()
            .any(|word| name.contains(word))
}

/// Fakes for what the platform puts in each secret variable: the JSON of a freshly generated
/// service account key (as a platform injects a secret: the value itself, no file) and
/// obviously fake ids.
fn fake_secrets() -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("service-account.json");
    emulator::google::GoogleState::new("http://127.0.0.1:9")
        .write_service_account_key(&key)
        .unwrap();
    [
        ("OPENAI_API_KEY", "test-openai-key".to_string()),
        (
            "GDRIVE_CREDENTIALS_JSON",
            std::fs::read_to_string(&key).unwrap(),
        ),
        (
            "GDRIVE_FINAL_REPORT_FOLDER",
            "final-reports-folder-0000000000001".to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The fake for secret variable `name`; a secret the test has no fake for fails loudly.
fn fake_for(fakes: &BTreeMap<String, String>, what: &str, name: &str) -> String {
    fakes
        .get(name)
        .unwrap_or_else(|| {
            panic!("{what}: no fake value for secret variable {name}; add one to fake_secrets")
        })
        .clone()
}

/// A Paperspace job's environment as the platform builds it: `defaults.env`, then the job's own
/// `env`, each `secret:NAME` replaced by the fake for its variable. Every credential must be a
/// `secret:` reference.
fn paperspace_env(
    spec: &Value,
    job: &str,
    fakes: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for source in [&spec["defaults"]["env"], &spec["jobs"][job]["env"]] {
        let Some(vars) = source.as_mapping() else {
            continue;
        };
        for (name, value) in vars {
            let name = name.as_str().unwrap();
            let value = value
                .as_str()
                .unwrap_or_else(|| panic!("{job}: env {name} must be a string"));
            let value = match value.strip_prefix("secret:") {
                Some(secret) => {
                    assert!(!secret.is_empty(), "{job}: {name} names no secret");
                    fake_for(fakes, job, name)
                }
                None => {
                    assert!(
                        !credential_named(name),
                        "{job}: {name} is a literal; make it a `secret:NAME` reference"
                    );
                    value.to_string()
                }
            };
            env.insert(name.to_string(), value);
        }
    }
    env
}

/// Paperspace's CPU machines are C1…C10; GPU machines are named after their card (P4000, A100…).
fn assert_cpu(what: &str, machine: Option<&str>) {
    let machine = machine.unwrap_or_else(|| panic!("{what} names no machine type"));
    assert!(
        machine
            .strip_prefix('C')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        "{what} runs on {machine}: use a CPU machine (C1…C10), no job needs a GPU"
    );
}

#[test]
fn paperspace_workflow_args_pass_the_real_parsers() {
    let spec = yaml("workflows/paperspace/pipeline-workflow.yaml");
    let inputs = example_inputs();
    let declared = spec["inputs"].as_mapping().expect("workflow inputs");
    for key in inputs.keys() {
        assert!(
            declared.contains_key(key.as_str()),
            "example input {key} is not a workflow input"
        );
    }
    assert!(
        !declared["company_name"]["optional"]
            .as_bool()
            .unwrap_or(false),
        "company_name is required"
    );

    // /inputs and /outputs of the containers, made real: per-key input files plus one volume
    // directory per upstream job, exactly as Paperspace mounts them.
    let tmp = tempfile::tempdir().unwrap();
    let inputs_dir = tmp.path().join("inputs");
    let outputs_dir = tmp.path().join("outputs");
    std::fs::create_dir_all(&inputs_dir).unwrap();
    for (key, value) in &inputs {
        std::fs::write(inputs_dir.join(key), value).unwrap();
    }
    let fakes = fake_secrets();
    assert_cpu(
        "defaults.resources",
        spec["defaults"]["resources"]["instance-type"].as_str(),
    );
    let jobs = spec["jobs"].as_mapping().unwrap();
    assert_eq!(jobs.len(), 4);
    let mut previous: Option<&str> = None;
    for job in JOBS {
        let def = &spec["jobs"][job];
        assert_eq!(def["uses"].as_str(), Some("container@v1"), "{job}");
        assert!(def["timeout"].as_u64().is_some(), "{job} has no timeout");
        if let Some(prev) = previous {
            assert!(
                def["needs"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|n| n.as_str() == Some(prev)),
                "{job} must need {prev}"
            );
        }
        previous = Some(job);
        if !def["resources"].is_null() {
            assert_cpu(job, def["resources"]["instance-type"].as_str());
        }
        let image = def["with"]["image"].as_str().unwrap();
        assert!(image.contains(job), "{job} runs image {image}");
        let args: Vec<String> = def["with"]["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            args[0],
            format!("/usr/local/bin/{job}"),
            "the binary's path comes first"
        );
        for (name, source) in def["inputs"].as_mapping().unwrap() {
            let (name, source) = (name.as_str().unwrap(), source.as_str().unwrap());
            if let Some(upstream) = source.strip_suffix(&format!(".outputs.{name}")) {
                assert!(JOBS.contains(&upstream), "{job} reads {source}");
                write_stage(&inputs_dir.join(name), upstream, "r1");
            } else {
                assert_eq!(source, format!("workflow.inputs.{name}"), "{job}");
            }
        }
        for (name, out) in def["outputs"].as_mapping().unwrap() {
            assert_eq!(out["type"].as_str(), Some("volume"), "{job}");
            std::fs::create_dir_all(outputs_dir.join(name.as_str().unwrap())).unwrap();
        }
        let args: Vec<String> = args[1..]
            .iter()
            .map(|a| {
                a.replace("/inputs", inputs_dir.to_str().unwrap())
                    .replace("/outputs", outputs_dir.to_str().unwrap())
            })
            .collect();
        let envs = paperspace_env(&spec, job, &fakes);
        let plan = dry_run(job, &args, &envs, tmp.path());
        assert_drive_key_from_env(job, &plan);
    }
}

/// The jobs that reach Drive found the key in GDRIVE_CREDENTIALS_JSON, as the specs inject it.
fn assert_drive_key_from_env(job: &str, plan: &str) {
    if ["setup", "upload"].contains(&job) {
        assert!(
            plan.contains("GDRIVE_CREDENTIALS_JSON"),
            "{job} did not read the service account key from GDRIVE_CREDENTIALS_JSON:\n{plan}"
        );
    }
}

/// Every document of a multi-document YAML file.
fn yaml_documents(relative: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    let text = std::fs::read_to_string(repo().join(relative)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"))
        })
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} defined"))
}

#[test]
fn argo_template_guards_runs_and_names_an_account_and_secret_that_exist() {
    let template = yaml("workflows/argo/report-pipeline.yaml");
    let spec = &template["spec"];
    let deadline = spec["activeDeadlineSeconds"]
        .as_u64()
        .expect("the workflow has an activeDeadlineSeconds");
    assert_eq!(
        spec["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );
    let uid = spec["securityContext"]["runAsUser"]
        .as_u64()
        .expect("a numeric runAsUser");
    assert!(uid > 0, "runAsUser {uid} is root");
    let templates = spec["templates"].as_sequence().unwrap();
    let job = templates
        .iter()
        .find(|t| t["name"].as_str() == Some("job"))
        .expect("the job template");
    assert_eq!(
        job["container"]["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );

    // Each step has its own deadline, and together they fit in the workflow's.
    assert_eq!(
        job["activeDeadlineSeconds"].as_str(),
        Some("{{inputs.parameters.deadline}}")
    );
    let step_deadlines: Vec<u64> = templates[0]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| {
            s[0]["arguments"]["parameters"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|p| p["name"].as_str() == Some("deadline"))
                .and_then(|p| p["value"].as_str())
                .and_then(|v| v.parse().ok())
                .expect("each step passes a numeric deadline")
        })
        .collect();
    assert_eq!(step_deadlines.len(), JOBS.len());
    assert!(step_deadlines.iter().sum::<u64>() <= deadline);

    // Retries on transient failures only: 4 (external service) and 6 (lock held), with backoff.
    let retry = &job["retryStrategy"];
    assert!(retry["limit"].as_u64().is_some_and(|n| n >= 1));
    assert!(retry["backoff"]["duration"].as_str().is_some());
    let expression = retry["expression"].as_str().unwrap();
    let codes: Vec<u8> = expression
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list.split(',').map(|c| c.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| panic!("no exit-code list in {expression:?}"));
    assert_eq!(codes, [4, 6], "retried exit codes");

    // The account exists, with the executor's one permission.
    let account = spec["serviceAccountName"].as_str().unwrap();
    let rbac = yaml_documents("workflows/argo/service-account.yaml");
    assert_eq!(
        of_kind(&rbac, "ServiceAccount")["metadata"]["name"].as_str(),
        Some(account)
    );
    let role = of_kind(&rbac, "Role");
    let binding = of_kind(&rbac, "RoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"].as_str(), Some(account));
    let rule = &role["rules"][0];
    assert_eq!(rule["resources"][0].as_str(), Some("workflowtaskresults"));
    let verbs: Vec<&str> = rule["verbs"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(verbs, ["create", "patch"]);

    // Every credential comes from the Secret; the example Secret has each key, all placeholders.
    let secret = yaml("workflows/argo/secret.example.yaml");
    assert_eq!(secret["kind"].as_str(), Some("Secret"));
    let data = secret["stringData"].as_mapping().unwrap();
    for value in data.values() {
        assert!(
            value
                .as_str()
                .is_some_and(|v| v.starts_with("REPLACE_WITH_")),
            "the example Secret holds {value:?}: only REPLACE_WITH_… placeholders belong there"
        );
    }
    let mut from_secret = Vec::new();
    for var in job["container"]["env"].as_sequence().unwrap() {
        let name = var["name"].as_str().unwrap();
        let reference = &var["valueFrom"]["secretKeyRef"];
        if reference.is_null() {
            assert!(
                !credential_named(name),
                "{name} is a literal; take it from the Secret with secretKeyRef"
            );
            continue;
        }
        assert_eq!(reference["name"], secret["metadata"]["name"], "{name}");
        let key = reference["key"].as_str().unwrap();
        assert!(
            data.contains_key(key),
            "{name} reads key {key}, which the example Secret lacks"
        );
        from_secret.push(name);
    }
    for name in SECRET_VARS {
        assert!(
            from_secret.contains(&name),
            "{name} is not taken from the Secret"
        );
    }
}

#[test]
fn argo_template_args_pass_the_real_parsers() {
    let template = yaml("workflows/argo/report-pipeline.yaml");
    assert_eq!(template["kind"].as_str(), Some("WorkflowTemplate"));
    let job_template = template["spec"]["templates"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str() == Some("job"))
        .expect("the job template");
    let steps: Vec<&str> = template["spec"]["templates"][0]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| {
            s[0]["arguments"]["parameters"][0]["value"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, JOBS);

    // Parameter defaults of the template, overridden by the example inputs.
    let mut values: BTreeMap<String, String> = template["spec"]["arguments"]["parameters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    values.extend(example_inputs());
    let tmp = tempfile::tempdir().unwrap();
    let outputs = tmp.path().join("outputs");
    std::fs::create_dir_all(&outputs).unwrap();
    let fakes = fake_secrets();
    let container = &job_template["container"];
    for (k, job) in JOBS.into_iter().enumerate() {
        if k > 0 {
            write_stage(&outputs, JOBS[k - 1], ARGO_RUN_ID);
        }
        let fill = |s: &str| -> String {
            let mut s = s
                .replace("{{inputs.parameters.job}}", job)
                .replace("/outputs", outputs.to_str().unwrap());
            for (key, value) in &values {
                s = s.replace(&format!("{{{{workflow.parameters.{key}}}}}"), value);
            }
            s.replace("{{workflow.name}}", ARGO_RUN_ID)
        };
        let command = fill(container["command"][0].as_str().unwrap());
        assert_eq!(command, format!("/usr/local/bin/{job}"));
        let args: Vec<String> = container["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| fill(a.as_str().unwrap()))
            .collect();
        // The pod's environment: literal values filled in, each secretKeyRef as its fake.
        let mut envs = BTreeMap::new();
        for var in container["env"].as_sequence().unwrap() {
            let name = var["name"].as_str().unwrap();
            let value = match var["value"].as_str() {
                Some(value) => fill(value),
                None => {
                    assert!(
                        !var["valueFrom"]["secretKeyRef"].is_null(),
                        "{name} has neither a value nor a secretKeyRef"
                    );
                    fake_for(&fakes, job, name)
                }
            };
            assert!(!value.contains("{{"), "unfilled placeholder in {name}");
            envs.insert(name.to_string(), value);
        }
        let plan = dry_run(job, &args, &envs, tmp.path());
        assert_drive_key_from_env(job, &plan);
    }
}

/// The keys of a `deployments-upsert` config with `apiVersion: v1`, and of its `resources` and
/// health checks, as the Paperspace API reference lists them.
const DEPLOYMENT_V1_KEYS: [&str; 13] = [
    "apiVersion",
    "basicAuthKey",
    "command",
    "containerRegistry",
    "enabled",
    "env",
    "healthchecks",
    "healthChecks",
    "image",
    "integrations",
    "name",
    "region",
    "resources",
];
const DEPLOYMENT_V1_RESOURCE_KEYS: [&str; 4] = ["autoscaling", "machineType", "ports", "replicas"];
const DEPLOYMENT_PROBE_KEYS: [&str; 8] = [
    "failureThreshold",
    "headers",
    "host",
    "initialDelaySeconds",
    "path",
    "periodSeconds",
    "port",
    "timeoutSeconds",
];

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect()
}

#[test]
fn webhook_deployment_is_a_valid_v1_config_with_secrets_by_reference() {
    let config = yaml("workflows/paperspace/webhook-deployment.yaml");
    assert_eq!(config["apiVersion"].as_str(), Some("v1"));
    for key in keys(&config) {
        assert!(
            DEPLOYMENT_V1_KEYS.contains(&key),
            "`{key}` is not a key of a v1 deployment config"
        );
    }
    assert!(config["name"].as_str().is_some_and(|n| !n.is_empty()));
    let image = config["image"].as_str().unwrap();
    assert!(image.contains("webhook"), "the deployment runs {image}");

    let resources = &config["resources"];
    for key in keys(resources) {
        assert!(
            DEPLOYMENT_V1_RESOURCE_KEYS.contains(&key),
            "`resources.{key}` is not a key of a v1 deployment config"
        );
    }
    assert_cpu("the webhook", resources["machineType"].as_str());
    let ports: Vec<u64> = resources["ports"]
        .as_sequence()
        .expect("resources.ports (required in v1)")
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();

    let mut env = BTreeMap::new();
    for var in config["env"].as_sequence().unwrap() {
        assert_eq!(keys(var), ["name", "value"], "{var:?}");
        let (name, value) = (var["name"].as_str().unwrap(), var["value"].as_str());
        let value = value.unwrap_or_else(|| panic!("env {name} must be a string"));
        if credential_named(name) {
            assert!(
                value.strip_prefix("secret:").is_some_and(|s| !s.is_empty()),
                "{name} is a literal; make it a `secret:NAME` reference"
            );
        }
        assert!(env.insert(name, value).is_none(), "{name} is set twice");
    }
    for name in [
        "WEBHOOK_API_KEY",
        "WEBHOOK_SECRET",
        "PAPERSPACE_API_KEY",
        "GDRIVE_CREDENTIALS_JSON",
    ] {
        assert!(
            env.get(name).is_some_and(|v| v.starts_with("secret:")),
            "{name} must come from a secret"
        );
    }
    // The server listens on the port the deployment exposes and probes.
    let listen: std::net::SocketAddr = env["WEBHOOK_LISTEN"].parse().unwrap();
    assert!(ports.contains(&u64::from(listen.port())), "{ports:?}");
    for probe in ["startup", "readiness", "liveness"] {
        let check = &config["healthChecks"][probe];
        for key in keys(check) {
            assert!(
                DEPLOYMENT_PROBE_KEYS.contains(&key),
                "healthChecks.{probe}.{key}"
            );
        }
        assert_eq!(check["path"].as_str(), Some("/health"), "{probe}");
        assert_eq!(
            check["port"].as_u64(),
            Some(u64::from(listen.port())),
            "{probe}"
        );
    }
    // The spec path is where the webhook image puts the workflow spec.
    let dockerfile = std::fs::read_to_string(repo().join("webhook/Dockerfile")).unwrap();
    let spec_path = env["PAPERSPACE_WORKFLOW_SPEC"];
    assert!(
        dockerfile
            .lines()
            .any(|l| l.starts_with("COPY ") && l.trim_end().ends_with(spec_path)),
        "webhook/Dockerfile does not put the workflow spec at {spec_path}"
    );

    // Every other variable is one the server reads (its --help lists them).
    let help = Command::new(binary("webhook"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for name in env.keys() {
        assert!(
            name.starts_with("LOG_") || help.contains(name),
            "the webhook does not read {name}"
        );
    }
}
