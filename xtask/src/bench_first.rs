//! `cargo xtask bench init`, second part: a function's first invocation
//! against its warm ones.
//!
//! The function runs as on Lambda, against a loopback Runtime API that
//! hands it the same sample SQS event several times, and with every AWS
//! call sent to a loopback endpoint that answers each request `200 {}`
//! (an empty success for every API the functions use). The first
//! invocation pays what init deferred: the SDK clients' first request
//! (endpoint resolution, signing, the connection), the first use of each
//! lazy table. What it cannot include is TLS: the endpoint speaks plain
//! HTTP, so the handshake and certificate checks of a real AWS endpoint
//! are not in these figures.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

/// Invocations after the first: their median is the warm figure.
pub const WARM: usize = 9;

/// How long one request of the function may take to arrive.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// One run's first invocation and the median of its warm ones.
pub struct Invocations {
    /// From handing over the first event to its response.
    pub first: Duration,
    /// The same, median over the later ones.
    pub warm: Duration,
}

impl Invocations {
    /// The first invocation's time over the warm one's.
    pub fn ratio(&self) -> f64 {
        self.first.as_secs_f64() / self.warm.as_secs_f64()
    }
}

/// Runs `binary` on `event` `1 + WARM` times in one process, with `env`
/// (to which the Runtime API and the AWS endpoint are added).
pub fn first_and_warm(
    binary: &Path,
    event: &str,
    env: &[(&'static str, String)],
) -> Result<Invocations> {
    let aws = serve_aws()?;
    let runtime = TcpListener::bind("127.0.0.1:0")?;
    let api = runtime.local_addr()?.to_string();
    let requests = serve_requests(runtime);
    let mut child = Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_ENDPOINT_URL", format!("http://{aws}"))
        .env(
            "ORDERFLOW_DLQ_URL",
            format!("http://{aws}/000000000000/dlq"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| binary.display().to_string())?;
    let result = drive(&requests, event);
    let _ = child.kill();
    let _ = child.wait();
    let mut times = result.with_context(|| binary.display().to_string())?;
    let first = times.remove(0);
    times.sort();
    Ok(Invocations {
        first,
        warm: times[times.len() / 2],
    })
}

/// Hands `event` out on every `/next` and times each response: the first
/// invocation's, then `WARM` more.
fn drive(
    requests: &mpsc::Receiver<(Request, mpsc::Sender<Vec<u8>>)>,
    event: &str,
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(1 + WARM);
    let mut handed: Option<Instant> = None;
    let mut served = 0;
    while times.len() < 1 + WARM {
        let (request, reply) = requests
            .recv_timeout(REQUEST_LIMIT)
            .context("the function sent no request in time")?;
        if request.path.ends_with("/runtime/invocation/next") {
            served += 1;
            let deadline_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)?
                .as_millis()
                + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                 lambda-runtime-aws-request-id: bench-{served}\r\n\
                 lambda-runtime-deadline-ms: {deadline_ms}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:000000000000:function:bench\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n\
                 content-length: {}\r\n\r\n",
                event.len()
            );
            handed = Some(Instant::now());
            let _ = reply.send([head.as_bytes(), event.as_bytes()].concat());
        } else if request.path.ends_with("/response") {
            let took = handed.take().map(|t| t.elapsed());
            let _ = reply.send(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_vec());
            let body = String::from_utf8_lossy(&request.body);
            // Every record handled: a failed one would time a retry path.
            if !body.contains("\"batchItemFailures\":[]") {
                bail!("invocation {served} answered {body}");
            }
            times.push(took.context("a response before any event")?);
        } else {
            let _ = reply.send(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_vec());
            bail!(
                "the function called {} {}: {}",
                request.method,
                request.path,
                String::from_utf8_lossy(&request.body)
            );
        }
    }
    Ok(times)
}

/// One HTTP request, as far as these servers need it.
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// Accepts connections on `listener`, one thread each, and passes every
/// request on with a channel for its reply.
fn serve_requests(listener: TcpListener) -> mpsc::Receiver<(Request, mpsc::Sender<Vec<u8>>)> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            thread::spawn(move || {
                let _ = connection(stream, |request| {
                    let (reply_tx, reply_rx) = mpsc::channel();
                    tx.send((request, reply_tx)).ok()?;
                    reply_rx.recv().ok()
                });
            });
        }
    });
    rx
}

/// A loopback endpoint that answers every request `200 {}`; its address.
fn serve_aws() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = connection(stream, |_| {
                    Some(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                          x-amzn-requestid: bench\r\ncontent-length: 2\r\n\r\n{}"
                            .to_vec(),
                    )
                });
            });
        }
    });
    Ok(addr)
}

/// Reads requests from `stream` until it closes, writing what `answer`
/// returns for each; `None` closes the connection.
fn connection(stream: TcpStream, mut answer: impl FnMut(Request) -> Option<Vec<u8>>) -> Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut reader)? else {
            return Ok(());
        };
        let Some(reply) = answer(request) else {
            return Ok(());
        };
        writer.write_all(&reply)?;
    }
}

/// Reads one request: its line, its headers and a `content-length` or
/// chunked body. `None` at the end of the stream.
fn read_request(reader: &mut BufReader<TcpStream>) -> Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let mut body = Vec::new();
    if let Some(length) = headers.get("content-length") {
        body.resize(length.parse().context("content-length")?, 0);
        reader.read_exact(&mut body)?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).context("chunk size")?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Ok(Some(Request { method, path, body }))
}
