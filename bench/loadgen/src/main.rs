//! Load generator of the sockjs benchmark suite (driven by bench/run.js; see
//! bench/README.md). One subcommand per scenario; it talks only to
//! 127.0.0.1, checks every payload that comes back, bounds every loop by a
//! count and a deadline, and prints JSON lines: `checkpoint` events (with
//! `--sync` it then waits for `go` on stdin, so that the runner can sample
//! the server between phases) and one `result` (or `error`) at the end.

mod http;
mod link;
mod scenarios;
mod sockjs;
mod stats;

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
use tokio::time::timeout;

use crate::link::Kind;

/// The only host this program connects to.
pub const HOST: &str = "127.0.0.1";

/// How long `--sync` waits for the runner's `go`.
const SYNC_WAIT: Duration = Duration::from_secs(120);

const USAGE: &str = "usage: sockjs-loadgen <echo|broadcast|idle|churn> --port N [options]
  --transport sockjs-ws|raw-ws|xhr-streaming|xhr-polling   (echo; default sockjs-ws)
  --prefix /echo          SockJS prefix (broadcast uses --prefix /broadcast)
  --sessions N            sessions (echo, idle) or receivers (broadcast)
  --inflight K            messages in flight per session (echo)
  --window W              broadcast rounds in flight
  --concurrency C         parallel opens (echo, idle, broadcast) or workers (churn)
  --size B                payload bytes
  --warmup-ms T --duration-ms T   warm-up and measured phase, each capped by
  --max-messages N        messages, rounds or cycles per phase
  --timeout-ms T          limit of any single wait
  --settle-ms T           idle: pause before the RSS checkpoint
  --settled-ms T          idle: then a further pause and a second RSS
                          checkpoint (`rss-settled`); 0: none
  --warm-churn-ms T       idle: first open, echo on and close sessions for
                          T (as churn), so that the server's one-time costs
                          come before `measure-start`; 0: none (default)
  --max-total-ms T        hard limit of the whole run
  --sync                  wait for 'go' on stdin after each checkpoint";

#[derive(Clone, Debug)]
pub struct Opts {
    pub port: u16,
    pub transport: Kind,
    pub prefix: String,
    pub sessions: usize,
    pub inflight: usize,
    pub window: usize,
    pub concurrency: usize,
    pub size: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub max_messages: u64,
    pub limit: Duration,
    pub settle: Duration,
    pub settled: Duration,
    pub warm_churn: Duration,
    pub max_total: Duration,
    pub sync: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            port: 0,
            transport: Kind::SockjsWs,
            prefix: "/echo".into(),
            sessions: 100,
            inflight: 1,
            window: 2,
            concurrency: 100,
            size: 32,
            warmup: Duration::from_millis(1000),
            duration: Duration::from_millis(3000),
            max_messages: 2_000_000,
            limit: Duration::from_secs(10),
            settle: Duration::from_millis(1000),
            settled: Duration::ZERO,
            warm_churn: Duration::ZERO,
            max_total: Duration::from_secs(300),
            sync: false,
        }
    }
}

fn parse_args(args: &[String]) -> Result<(String, Opts), String> {
    let command = args.first().ok_or("no subcommand")?.clone();
    if !["echo", "broadcast", "idle", "churn"].contains(&command.as_str()) {
        return Err(format!("unknown subcommand {command:?}"));
    }
    let mut o = Opts::default();
    let mut i = 1;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--sync" {
            o.sync = true;
            i += 1;
            continue;
        }
        let value = args.get(i + 1).ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        let millis = || number().map(Duration::from_millis);
        match flag {
            "--port" => o.port = value.parse().map_err(|_| format!("bad port {value}"))?,
            "--transport" => o.transport = Kind::parse(value)?,
            "--prefix" => o.prefix = value.trim_end_matches('/').to_string(),
            "--sessions" => o.sessions = number()? as usize,
            "--inflight" => o.inflight = number()? as usize,
            "--window" => o.window = number()? as usize,
            "--concurrency" => o.concurrency = number()? as usize,
            "--size" => o.size = number()? as usize,
            "--warmup-ms" => o.warmup = millis()?,
            "--duration-ms" => o.duration = millis()?,
            "--max-messages" => o.max_messages = number()?,
            "--timeout-ms" => o.limit = millis()?,
            "--settle-ms" => o.settle = millis()?,
            "--settled-ms" => o.settled = millis()?,
            "--warm-churn-ms" => o.warm_churn = millis()?,
            "--max-total-ms" => o.max_total = millis()?,
            _ => return Err(format!("unknown option {flag}")),
        }
        i += 2;
    }
    if o.port == 0 {
        return Err("--port is required".into());
    }
    if o.sessions == 0 || o.inflight == 0 || o.window == 0 || o.concurrency == 0 || o.max_messages == 0 {
        return Err("counts must be at least 1".into());
    }
    if !o.prefix.starts_with('/') {
        return Err("--prefix must start with /".into());
    }
    Ok((command, o))
}

/// Prints one JSON line (stdout is line-buffered, so it leaves at once).
pub fn emit(value: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// The phases' handshake with the runner.
pub struct Control {
    lines: Option<Lines<BufReader<Stdin>>>,
}

impl Control {
    fn new(sync: bool) -> Control {
        Control {
            lines: sync.then(|| BufReader::new(tokio::io::stdin()).lines()),
        }
    }

    /// Announces a checkpoint; with `--sync`, waits for `go`.
    pub async fn checkpoint(&mut self, name: &str) -> Result<(), String> {
        emit(json!({ "event": "checkpoint", "name": name }));
        let Some(lines) = &mut self.lines else {
            return Ok(());
        };
        match timeout(SYNC_WAIT, lines.next_line()).await {
            Ok(Ok(Some(line))) if line.trim() == "go" => Ok(()),
            Ok(Ok(Some(line))) => Err(format!("expected 'go' on stdin, got {line:?}")),
            Ok(Ok(None)) => Err("stdin closed while waiting for 'go'".into()),
            Ok(Err(e)) => Err(format!("stdin: {e}")),
            Err(_) => Err("no 'go' from the runner in time".into()),
        }
    }
}

/// What a scenario measured in its measured phase.
pub struct Report {
    pub scenario: String,
    pub sessions: usize,
    pub seconds: f64,
    pub stats: stats::Stats,
    /// Errors outside the measured phase (setup, warm-up, checks after it).
    pub other_errors: stats::Stats,
    pub extra: Vec<(&'static str, Value)>,
}

impl Report {
    fn into_json(mut self) -> Value {
        let p = self.stats.percentiles(&[50.0, 99.0]);
        let messages = self.stats.messages;
        let rate = if self.seconds > 0.0 {
            messages as f64 / self.seconds
        } else {
            0.0
        };
        let mut samples = self.stats.error_samples.clone();
        samples.extend(self.other_errors.error_samples.iter().cloned());
        samples.truncate(8);
        let mut value = json!({
            "event": "result",
            "scenario": self.scenario,
            "sessions": self.sessions,
            "messages": messages,
            "seconds": self.seconds,
            "msgs_per_s": rate,
            "p50_us": p[0],
            "p99_us": p[1],
            "errors": self.stats.errors + self.other_errors.errors,
            "error_samples": samples,
        });
        for (key, extra) in self.extra {
            value[key] = extra;
        }
        value
    }
}

/// Ends the process if the run overstays `limit`, whatever it is doing.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        emit(json!({ "event": "error", "error": format!("hard time limit of {} s reached", limit.as_secs()) }));
        std::process::exit(3);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_none_or(|a| a == "--help" || a == "-h") {
        let _ = writeln!(std::io::stdout(), "{USAGE}");
        return;
    }
    let (command, opts) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    watchdog(opts.max_total);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            emit(json!({ "event": "error", "error": format!("runtime: {e}") }));
            std::process::exit(1);
        }
    };
    let outcome = runtime.block_on(async {
        let mut control = Control::new(opts.sync);
        match command.as_str() {
            "echo" => scenarios::echo(&opts, &mut control).await,
            "broadcast" => scenarios::broadcast(&opts, &mut control).await,
            "idle" => scenarios::idle(&opts, &mut control).await,
            _ => scenarios::churn(&opts, &mut control).await,
        }
    });
    // Exit without tearing down thousands of sockets one by one.
    match outcome {
        Ok(report) => {
            emit(report.into_json());
            std::process::exit(0);
        }
        Err(e) => {
            emit(json!({ "event": "error", "error": e }));
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_options() {
        let (cmd, o) = parse_args(&args(
            "echo --port 9 --transport xhr-polling --sessions 3 --inflight 2 --duration-ms 50 --sync",
        ))
        .unwrap();
        assert_eq!(cmd, "echo");
        assert_eq!(
            (o.port, o.transport, o.sessions, o.inflight),
            (9, Kind::XhrPolling, 3, 2)
        );
        assert_eq!(o.duration, Duration::from_millis(50));
        assert!(o.sync);
        assert!(parse_args(&args("echo")).is_err());
        assert!(parse_args(&args("echo --port 9 --sessions 0")).is_err());
        assert!(parse_args(&args("fly --port 9")).is_err());
        assert!(parse_args(&args("echo --port 9 --bogus 1")).is_err());
    }
}
