//! Logs: human-readable text (the default) or one JSON object per line
//! (`--log-format json`, config `log_format = "json"`), for a log collector.
//! Both go to standard error, filtered by `RUST_LOG` (default
//! `info,actix_server=warn`). The JSON lines are tracing-subscriber's JSON
//! formatter with the event's fields at the top level (`timestamp`, `level`,
//! `target`, `message`, and each field by name).

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,actix_server=warn";

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A subscriber writing `format` lines to `writer`, filtered by `filter`.
pub fn subscriber<W>(format: LogFormat, filter: EnvFilter, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
    }
}

/// Installs the process's logger: `format` lines on standard error, filtered
/// by `RUST_LOG` or [`DEFAULT_FILTER`]; records of the `log` crate (actix's
/// access log) go through it too. Does nothing if a logger is installed already.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_FILTER.into());
    if let Err(e) = subscriber(format, filter, std::io::stderr).try_init() {
        eprintln!("logging was set up already: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let sub = subscriber(format, EnvFilter::new("info"), move || out.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::info!(route = "GET /api/v1/referrals/{id}", status = 200u16, "request served");
            tracing::warn!("mail delivery failed");
            tracing::debug!("filtered out");
        });
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_json_log_format_writes_one_json_object_per_line_with_the_fields() {
        let text = logged(LogFormat::Json);
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "request served");
        assert_eq!(lines[0]["route"], "GET /api/v1/referrals/{id}");
        assert_eq!(lines[0]["status"], 200);
        assert!(lines[0]["timestamp"].is_string() && lines[0]["target"].is_string(), "{}", lines[0]);
        assert_eq!((lines[1]["level"].as_str(), lines[1]["message"].as_str()), (Some("WARN"), Some("mail delivery failed")));
    }

    #[test]
    fn the_text_log_format_is_not_json() {
        let text = logged(LogFormat::Text);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_err()), "{text}");
        assert!(text.contains("request served"), "{text}");
    }

    #[test]
    fn the_log_format_parses_from_config_text() {
        #[derive(Deserialize)]
        struct C {
            log_format: LogFormat,
        }
        let c: C = toml::from_str(r#"log_format = "json""#).unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(toml::from_str::<C>(r#"log_format = "xml""#).is_err());
    }
}
