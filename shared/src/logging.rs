//! Structured logs: one JSON object per line on stdout (SPEC §6).
//!
//! The schema is the original system's, fixed: `timestamp` (RFC 3339 UTC, microseconds, `Z`),
//! `level`, `service`, `company`, `run_id`, `message`, then the event's own fields — `step` and
//! `total_steps` on step lines, `metric_name`/`metric_value`/`metric_unit` on metrics,
//! `status: "success"` on successes, `error` (the whole chain) on errors. Text is UTF-8, not
//! escaped. `LOG_FORMAT=pretty` (the default on a terminal) prints the same content for humans.
//!
//! Every string value passes through redaction before it is written: registered secrets (the
//! API keys and the service account's private key) and anything shaped like a bearer token, an
//! OpenAI key or a PEM private key become `[REDACTED]`, whatever code logged them.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// JSON lines or human-readable lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogFormat {
    /// `LOG_FORMAT` if set (`json` or `pretty`), else pretty on a terminal and JSON otherwise.
    pub fn from_env() -> LogFormat {
        LogFormat::choose(
            std::env::var("LOG_FORMAT").ok().as_deref(),
            std::io::stdout().is_terminal(),
        )
    }

    /// The format for a `LOG_FORMAT` value (any case) and whether stdout is a terminal; an
    /// unknown or empty value counts as unset.
    pub fn choose(log_format: Option<&str>, terminal: bool) -> LogFormat {
        match log_format.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            _ if terminal => LogFormat::Pretty,
            _ => LogFormat::Json,
        }
    }
}

#[derive(Debug, Default)]
struct ContextInner {
    company: String,
    run_id: String,
    secrets: Vec<String>,
}

/// The per-process values every line carries, and the secrets to redact.
#[derive(Debug, Clone, Default)]
pub struct LogContext(Arc<RwLock<ContextInner>>);

impl LogContext {
    pub fn set_company(&self, company: &str) {
        self.write().company = company.to_string();
    }
    pub fn set_run_id(&self, run_id: &str) {
        self.write().run_id = run_id.to_string();
    }
    /// Never let `secret` reach a log line. Values shorter than 8 characters are ignored: they
    /// are not secrets and redacting them would mangle ordinary text.
    pub fn add_secret(&self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= 8 && !self.read().secrets.iter().any(|s| s == secret) {
            self.write().secrets.push(secret.to_string());
            // Multi-line secrets (PEM keys) are also redacted line by line, in case a client
            // logs a fragment.
            for line in secret.lines().map(str::trim).filter(|l| l.len() >= 16) {
                self.write().secrets.push(line.to_string());
            }
        }
    }

    /// Redacts registered secrets and secret-shaped substrings.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.read().secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[REDACTED]");
            }
        }
        for pattern in secret_patterns() {
            if pattern.is_match(&out) {
                out = pattern.replace_all(&out, "${keep}[REDACTED]").into_owned();
            }
        }
        out
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ContextInner> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ContextInner> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn secret_patterns() -> &'static [regex_lite::Regex] {
    static PATTERNS: OnceLock<Vec<regex_lite::Regex>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            r"(?s)(?P<keep>)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)",
            r"(?i)(?P<keep>bearer\s+)[A-Za-z0-9._~+/=-]{8,}",
            r"(?P<keep>)sk-[A-Za-z0-9_-]{16,}",
            r#"(?i)(?P<keep>"?(?:api[_-]?key|access_token|private_key|password)"?\s*[:=]\s*"?)[^\s",}]{8,}"#,
        ]
        .iter()
        .map(|p| regex_lite::Regex::new(p).expect("valid redaction pattern"))
        .collect()
    })
}

/// The context of this process's logger.
pub fn context() -> &'static LogContext {
    static GLOBAL: OnceLock<LogContext> = OnceLock::new();
    GLOBAL.get_or_init(LogContext::default)
}

/// The event formatter implementing the schema.
pub struct SchemaFormat {
    service: String,
    format: LogFormat,
    context: LogContext,
}

impl SchemaFormat {
    pub fn new(service: &str, format: LogFormat, context: LogContext) -> Self {
        SchemaFormat {
            service: service.to_string(),
            format,
            context,
        }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(String, serde_json::Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, serde_json::Value::String(value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut chain = value.to_string();
        let mut cause = value.source();
        while let Some(c) = cause {
            let _ = write!(chain, ": {c}");
            cause = c.source();
        }
        self.put(field, chain.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.rest.push((field.name().to_string(), value));
        }
    }
}

impl<S, N> FormatEvent<S, N> for SchemaFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let level = event.metadata().level().as_str();
        let (company, run_id) = {
            let inner = self.context.read();
            (inner.company.clone(), inner.run_id.clone())
        };
        let redact = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => serde_json::Value::String(self.context.redact(s)),
            other => other.clone(),
        };
        let message = self.context.redact(&fields.message);
        let line = match self.format {
            LogFormat::Json => {
                let mut line = String::with_capacity(256);
                let head = [
                    ("timestamp", now.as_str()),
                    ("level", level),
                    ("service", self.service.as_str()),
                    ("company", company.as_str()),
                    ("run_id", run_id.as_str()),
                    ("message", message.as_str()),
                ];
                line.push('{');
                for (i, (key, value)) in head.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    let _ = write!(
                        line,
                        "\"{key}\":{}",
                        serde_json::Value::String(value.to_string())
                    );
                }
                for (key, value) in &fields.rest {
                    let _ = write!(
                        line,
                        ",{}:{}",
                        serde_json::Value::String(key.clone()),
                        redact(value)
                    );
                }
                line.push('}');
                line
            }
            LogFormat::Pretty => {
                // One event, one line, also for humans: newlines are shown escaped.
                let flat = |s: &str| s.replace('\r', "\\r").replace('\n', "\\n");
                let mut line = format!(
                    "{now} {level:>5} {} [{company} {run_id}] {}",
                    self.service,
                    flat(&message)
                );
                for (key, value) in &fields.rest {
                    match redact(value) {
                        serde_json::Value::String(s) => write!(line, " {key}={}", flat(&s))?,
                        other => write!(line, " {key}={other}")?,
                    }
                }
                line
            }
        };
        writeln!(writer, "{line}")
    }
}

/// The level filter from `LOG_LEVEL` and `RUST_LOG` (see [`filter`]).
pub fn filter_from_env() -> EnvFilter {
    filter(
        std::env::var("LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    )
}

/// The level filter: `log_level` (`LOG_LEVEL`), else `rust_log` (`RUST_LOG`), else `info`; a
/// blank value counts as unset. Chatty HTTP internals stay at warn unless named explicitly. A
/// value that is not a valid filter falls back to `info`.
pub fn filter(log_level: Option<&str>, rust_log: Option<&str>) -> EnvFilter {
    let spec = [log_level, rust_log]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|v| !v.is_empty())
        .unwrap_or("info");
    let quiet = |level: &str| format!("{level},{QUIET_HTTP}");
    let spec = if spec.contains('=') {
        spec.to_string()
    } else {
        quiet(spec)
    };
    EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new(quiet("info")))
}

/// HTTP internals that log every connection at info and below.
const QUIET_HTTP: &str = "hyper=warn,hyper_util=warn,reqwest=warn,rustls=warn,h2=warn";

/// A layer for `service` writing to `writer` (tests pass a buffer).
pub fn layer<S, W>(
    service: &str,
    format: LogFormat,
    context: LogContext,
    writer: W,
) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .event_format(SchemaFormat::new(service, format, context))
        .with_writer(writer)
}

/// Installs the process-wide logger for `service` on stdout and registers the secrets found in
/// the environment (API keys) for redaction.
pub fn init(service: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    for var in [
        "OPENAI_API_KEY",
        "PAPERSPACE_API_KEY",
        "WEBHOOK_API_KEY",
        "WEBHOOK_SECRET",
    ] {
        if let Ok(value) = std::env::var(var) {
            context().add_secret(&value);
        }
    }
    let layer = layer(
        service,
        LogFormat::from_env(),
        context().clone(),
        std::io::stdout,
    )
    .with_filter(filter_from_env());
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Logs `[STEP k/n] message` with `step` and `total_steps` fields.
pub fn step(k: u32, n: u32, message: &str) {
    tracing::info!(step = k, total_steps = n, "[STEP {k}/{n}] {message}");
}

/// Logs a metric line.
pub fn metric(name: &str, value: f64, unit: &str) {
    tracing::info!(
        metric_name = name,
        metric_value = value,
        metric_unit = unit,
        "metric {name}={value} {unit}"
    );
}

/// Logs a success line (`status: "success"`).
pub fn success(message: &str) {
    tracing::info!(status = "success", "{message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn capture(format: LogFormat, f: impl FnOnce(&LogContext)) -> Vec<String> {
        let buffer = Buffer::default();
        let context = LogContext::default();
        context.set_company("Müller GmbH");
        context.set_run_id("run-1");
        let subscriber = tracing_subscriber::registry().with(layer(
            "setup",
            format,
            context.clone(),
            buffer.clone(),
        ));
        tracing::subscriber::with_default(subscriber, || f(&context));
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    /// Replaces the timestamp (the only varying part) so lines can be compared whole.
    fn normalise(line: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = v["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
        chrono::DateTime::parse_from_rfc3339(ts).unwrap();
        line.replace(ts, "TS")
    }

    #[test]
    fn json_lines_snapshot() {
        let lines = capture(LogFormat::Json, |_| {
            tracing::info!("Gespräch mit der Geschäftsführung geladen");
            step(3, 10, "evidence");
            metric("files_downloaded", 12.0, "files");
            success("setup finished");
            let err = crate::error::Error::external("Drive said no")
                .with_source(std::io::Error::other("503"));
            tracing::error!(error = %err.chain(), error_kind = err.kind().as_str(), exit_code = err.exit_code(), "{}", err);
        });
        let got: Vec<String> = lines.iter().map(|l| normalise(l)).collect();
        let head = r#""timestamp":"TS","level":"INFO","service":"setup","company":"Müller GmbH","run_id":"run-1""#;
        let want = vec![
            format!(r#"{{{head},"message":"Gespräch mit der Geschäftsführung geladen"}}"#),
            format!(r#"{{{head},"message":"[STEP 3/10] evidence","step":3,"total_steps":10}}"#),
            format!(
                r#"{{{head},"message":"metric files_downloaded=12 files","metric_name":"files_downloaded","metric_value":12.0,"metric_unit":"files"}}"#
            ),
            format!(r#"{{{head},"message":"setup finished","status":"success"}}"#),
            format!(
                r#"{{{},"message":"Drive said no","error":"Drive said no: 503","error_kind":"external","exit_code":4}}"#,
                head.replace("INFO", "ERROR")
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn secrets_never_reach_a_line() {
        // A PEM-shaped fake, assembled at run time so no key-shaped text sits in the source.
        let label = ["PRIVATE", "KEY"].join(" ");
        let pem = format!(
            "-----BEGIN {label}-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END {label}-----\n"
        );
        let key = "test-registered-secret-value-123";
        let shaped = format!("sk-{}", "a1B2".repeat(10));
        for format in [LogFormat::Json, LogFormat::Pretty] {
            let lines = capture(format, |ctx| {
                ctx.add_secret(key);
                tracing::info!("calling with key {key}");
                tracing::warn!(header = %format!("Authorization: Bearer {}", "tok-".repeat(6)), "request failed");
                tracing::info!("loaded {pem}");
                tracing::info!(body = %format!("{{\"private_key\": \"{}\"}}", "x".repeat(20)), "key file");
                tracing::info!("openai key {shaped}");
            });
            let all = lines.join("\n");
            assert_eq!(lines.len(), 5, "{all}");
            for leaked in [
                key,
                "tok-tok-",
                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
                "xxxxxxxxxxxxxxxx",
                &shaped,
            ] {
                assert!(!all.contains(leaked), "{leaked} leaked in:\n{all}");
            }
            assert!(all.matches("[REDACTED]").count() >= 5, "{all}");
        }
    }

    #[test]
    fn pretty_lines_are_readable() {
        let lines = capture(LogFormat::Pretty, |_| step(1, 10, "load inputs"));
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].contains(
                " INFO setup [Müller GmbH run-1] [STEP 1/10] load inputs step=1 total_steps=10"
            ),
            "{}",
            lines[0]
        );
    }

    /// The messages of the probe events that pass `filter`: `app:<LEVEL>` for this crate and
    /// `reqwest:<LEVEL>` for an HTTP internal.
    fn passing(filter: EnvFilter) -> Vec<String> {
        let buffer = Buffer::default();
        let layer = layer(
            "setup",
            LogFormat::Json,
            LogContext::default(),
            buffer.clone(),
        )
        .with_filter(filter);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::debug!("app:DEBUG");
            tracing::info!("app:INFO");
            tracing::warn!("app:WARN");
            tracing::info!(target: "reqwest::connect", "reqwest:INFO");
            tracing::warn!(target: "reqwest::connect", "reqwest:WARN");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["message"].as_str().unwrap().to_string()
            })
            .collect()
    }

    #[test]
    fn log_level_beats_rust_log_and_info_is_the_default() {
        let info = ["app:INFO", "app:WARN", "reqwest:WARN"];
        let debug = ["app:DEBUG", "app:INFO", "app:WARN", "reqwest:WARN"];
        assert_eq!(passing(filter(None, None)), info);
        assert_eq!(passing(filter(Some("debug"), None)), debug);
        assert_eq!(passing(filter(None, Some("debug"))), debug);
        assert_eq!(
            passing(filter(Some("warn"), Some("debug"))),
            ["app:WARN", "reqwest:WARN"]
        );
        assert_eq!(passing(filter(Some("DEBUG"), None)), debug);
        // Blank means unset (compose passes `LOG_LEVEL=` through when the caller has none).
        assert_eq!(passing(filter(Some(" "), Some("debug"))), debug);
        assert_eq!(passing(filter(Some(""), None)), info);
        // A full directive is taken as given: HTTP internals are shown when asked for.
        assert_eq!(
            passing(filter(Some("warn,reqwest=info"), None)),
            ["app:WARN", "reqwest:INFO", "reqwest:WARN"]
        );
        // An unusable value does not silence the job.
        assert_eq!(passing(filter(Some("info,reqwest=loud"), None)), info);
    }

    #[test]
    fn log_format_from_its_variable_else_from_the_terminal() {
        assert_eq!(LogFormat::choose(Some("json"), true), LogFormat::Json);
        assert_eq!(LogFormat::choose(Some("Pretty"), false), LogFormat::Pretty);
        assert_eq!(LogFormat::choose(Some(" JSON "), true), LogFormat::Json);
        assert_eq!(LogFormat::choose(None, true), LogFormat::Pretty);
        assert_eq!(LogFormat::choose(None, false), LogFormat::Json);
        assert_eq!(LogFormat::choose(Some("xml"), false), LogFormat::Json);
        assert_eq!(LogFormat::choose(Some(""), true), LogFormat::Pretty);
    }
}
