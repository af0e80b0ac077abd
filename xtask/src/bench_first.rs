//! `cargo xtask bench init`, second part: a function's first invocation
//! against its warm ones.
//!
//! The function runs as on Lambda, against a loopback Runtime API that
//! hands it the same sample SQS event several times, and with every AWS
//! call sent to a loopback endpoint. That endpoint answers `BatchGetItem`
//! from the items a [`Scenario`] gives (the stock a reservation needs, the
//! order a shipment completes) and every other request `200 {}`, an empty
//! success for every API the functions use. Each invocation must make the
//! same calls, publish its outcome and send nothing to a dead-letter queue:
//! the figures are those of the path named, never of a record that failed
//! into the DLQ.
//!
//! The first invocation pays what init deferred: the SDK clients' first
//! request (endpoint resolution, signing, the connection), the first use of
//! each lazy table. What it cannot include is TLS: the endpoint speaks plain
//! HTTP, so the handshake and certificate checks of a real AWS endpoint
//! are not in these figures.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

/// What one invocation is timed on: a sample event, what the table holds
/// when it arrives, and the calls that show it took the path named.
pub struct Scenario {
    /// What the function does on it, for the report.
    pub name: &'static str,
    /// The sample SQS event, under `events/<function>/`.
    pub sample: &'static str,
    /// The table's items, each with its `pk`, in DynamoDB's JSON.
    pub items: Vec<serde_json::Value>,
    /// Calls every invocation must make (an `x-amz-target`, or the start
    /// of a REST call's method and path).
    pub must_call: &'static [&'static str],
}

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
    /// The AWS calls each invocation made, in order.
    pub calls: Vec<String>,
}

impl Invocations {
    /// The first invocation's time over the warm one's.
    pub fn ratio(&self) -> f64 {
        self.first.as_secs_f64() / self.warm.as_secs_f64()
    }
}

/// Runs `binary` on `event` `1 + WARM` times in one process, with `env`
/// (to which the Runtime API and the AWS endpoint are added), on
/// `scenario`'s table and calls.
pub fn first_and_warm(
    binary: &Path,
    event: &str,
    scenario: &Scenario,
    env: &[(&'static str, String)],
) -> Result<Invocations> {
    let (calls_tx, calls) = mpsc::channel();
    let aws = serve_aws(table_of(&scenario.items)?, calls_tx)?;
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
    let result = drive(&requests, &calls, scenario.must_call, event);
    let _ = child.kill();
    let _ = child.wait();
    let (mut times, calls) = result.with_context(|| binary.display().to_string())?;
    let first = times.remove(0);
    times.sort();
    Ok(Invocations {
        first,
        warm: times[times.len() / 2],
        calls,
    })
}

/// A scenario's table, ready to answer a `BatchGetItem` in a few
/// microseconds: the bench's answering time lands in every invocation it
/// times, the warm ones too, so it must stay small beside them.
struct Table {
    /// Each item as the key that asks for it appears in a request
    /// (`{"S":"<pk>"}`), and as its JSON.
    items: Vec<(String, String)>,
}

fn table_of(items: &[serde_json::Value]) -> Result<Table> {
    let items = items
        .iter()
        .map(|item| {
            let pk = item["pk"]["S"]
                .as_str()
                .with_context(|| format!("a bench item without a string pk: {item}"))?;
            Ok((serde_json::json!({ "S": pk }).to_string(), item.to_string()))
        })
        .collect::<Result<_>>()?;
    Ok(Table { items })
}

/// Hands `event` out on every `/next` and times each response: the first
/// invocation's, then `WARM` more. Every invocation must make the same AWS
/// calls (`calls` hears them), `must_call` among them, and dead-letter
/// nothing; those calls are returned.
fn drive(
    requests: &mpsc::Receiver<(Request, mpsc::Sender<Vec<u8>>)>,
    calls: &mpsc::Receiver<String>,
    must_call: &[&str],
    event: &str,
) -> Result<(Vec<Duration>, Vec<String>)> {
    let mut path: Option<Vec<String>> = None;
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
            // The endpoint hears each call before it answers, and the
            // function answers only once its calls are done.
            let made: Vec<String> = calls.try_iter().collect();
            check_calls(served, &made, must_call, path.as_deref())?;
            path.get_or_insert(made);
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
    Ok((times, path.unwrap_or_default()))
}

/// Refuses an invocation that dead-lettered its record, missed a call of
/// `must_call`, or took another path than the first invocation (`first`).
fn check_calls(
    invocation: usize,
    made: &[String],
    must_call: &[&str],
    first: Option<&[String]>,
) -> Result<()> {
    if let Some(send) = made.iter().find(|call| call.starts_with("AmazonSQS.")) {
        bail!(
            "invocation {invocation} sent its record to the DLQ ({send}): the bench times a \
             record that succeeds; give its path the items it needs (bench.rs)"
        );
    }
    if let Some(missed) = must_call
        .iter()
        .find(|want| !made.iter().any(|call| call.starts_with(**want)))
    {
        bail!("invocation {invocation} did not call {missed}: its calls were {made:?}");
    }
    if let Some(first) = first
        && first != made
    {
        bail!("invocation {invocation} made {made:?}, the first {first:?}: not the same path");
    }
    Ok(())
}

/// One HTTP request, as far as these servers need it.
struct Request {
    method: String,
    path: String,
    /// `x-amz-target`, which names the operation of a JSON protocol call.
    target: Option<String>,
    body: Vec<u8>,
}

impl Request {
    /// The operation, as the target names it, or the method and path of a
    /// REST call (S3).
    fn call(&self) -> String {
        match &self.target {
            Some(target) => target.clone(),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

/// Serves each connection to `listener` with `serve`, on a thread that
/// was already waiting for it.
///
/// A thread started when a connection arrives would put its start (tens of
/// microseconds here, more when the other core is busy) into the time of
/// the request that opened the connection: a function's first call to each
/// endpoint, and so into its first invocation's time alone. So two threads
/// wait in `accept` from the start, and one that takes a connection starts
/// another only if none is left waiting, which a function's first
/// connection never needs.
fn serve_each<F>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    /// Threads waiting in `accept`.
    const WAITING: usize = 2;
    let shared = Arc::new((listener, serve, AtomicUsize::new(0)));
    fn wait<F: Fn(TcpStream) + Send + Sync + 'static>(shared: Arc<(TcpListener, F, AtomicUsize)>) {
        thread::spawn(move || {
            let (listener, serve, waiting) = &*shared;
            waiting.fetch_add(1, Ordering::SeqCst);
            while let Ok((stream, _)) = listener.accept() {
                if waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
                    wait(shared.clone());
                }
                serve(stream);
                waiting.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    for _ in 0..WAITING {
        wait(shared.clone());
    }
}

/// Accepts connections on `listener` (see [`serve_each`]) and passes every
/// request on with a channel for its reply.
fn serve_requests(listener: TcpListener) -> mpsc::Receiver<(Request, mpsc::Sender<Vec<u8>>)> {
    let (tx, rx) = mpsc::channel();
    serve_each(listener, move |stream| {
        let _ = connection(stream, |request| {
            let (reply_tx, reply_rx) = mpsc::channel();
            tx.send((request, reply_tx)).ok()?;
            reply_rx.recv().ok()
        });
    });
    rx
}

/// A loopback endpoint that answers `BatchGetItem` from `table` and every
/// other request `200 {}`, telling `calls` each call first; its address.
fn serve_aws(table: Table, calls: mpsc::Sender<String>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    serve_each(listener, move |stream| {
        let _ = connection(stream, |request| {
            let call = request.call();
            let body = match call.as_str() {
                "DynamoDB_20120810.BatchGetItem" => batch_get(&table, &request.body),
                _ => "{}".to_owned(),
            };
            calls.send(call).ok()?;
            Some(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                     x-amzn-requestid: bench\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes(),
            )
        });
    });
    Ok(addr)
}

/// A `BatchGetItem` answer: the items of `table` whose keys the request
/// (of one table, as the functions' are) asks for.
fn batch_get(table: &Table, request: &[u8]) -> String {
    const ITEMS: &str = r#"{"RequestItems":{""#;
    let request = String::from_utf8_lossy(request);
    let name = request
        .strip_prefix(ITEMS)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default();
    let found: Vec<&str> = table
        .items
        .iter()
        .filter(|(key, _)| request.contains(key.as_str()))
        .map(|(_, item)| item.as_str())
        .collect();
    format!(r#"{{"Responses":{{"{name}":[{}]}}}}"#, found.join(","))
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
    let mut headers: HashMap<String, String> = HashMap::new();
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
    let target = headers.remove("x-amz-target");
    Ok(Some(Request {
        method,
        path,
        target,
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    const PATH: &[&str] = &[
        "DynamoDB_20120810.BatchGetItem",
        "DynamoDB_20120810.TransactWriteItems",
        "AWSEvents.PutEvents",
    ];

    #[test]
    fn an_invocation_on_its_path_passes() {
        let made = calls(PATH);
        let must = &[
            "DynamoDB_20120810.TransactWriteItems",
            "AWSEvents.PutEvents",
        ];
        assert!(check_calls(1, &made, must, None).is_ok());
        assert!(check_calls(2, &made, must, Some(&made)).is_ok());
    }

    #[test]
    fn a_dead_lettered_record_fails_the_bench() {
        // What the bench timed for inventory when its table was empty: an
        // unknown SKU, sent to the DLQ.
        let made = calls(&["DynamoDB_20120810.BatchGetItem", "AmazonSQS.SendMessage"]);
        let error = check_calls(1, &made, &[], None).unwrap_err().to_string();
        assert!(error.contains("DLQ"), "{error}");
    }

    #[test]
    fn a_missing_call_or_another_path_fails_the_bench() {
        let made = calls(&PATH[..2]);
        assert!(check_calls(1, &made, &["AWSEvents.PutEvents"], None).is_err());
        let first = calls(PATH);
        assert!(check_calls(2, &made, &[], Some(&first)).is_err());
    }

    #[test]
    fn a_rest_call_is_named_by_its_method_and_path() {
        let put = Request {
            method: "PUT".into(),
            path: "/labels/ord-1.pdf".into(),
            target: None,
            body: vec![],
        };
        assert_eq!(put.call(), "PUT /labels/ord-1.pdf");
        assert!(check_calls(1, &[put.call()], &["PUT /labels/"], None).is_ok());
    }

    #[test]
    fn batch_get_answers_the_keys_asked_that_the_table_holds() {
        let table =
            table_of(&[serde_json::json!({ "pk": { "S": "STOCK#A" }, "value": { "N": "5" } })])
                .unwrap();
        let request = br#"{"RequestItems":{"t":{"Keys":[{"pk":{"S":"STOCK#A"}},{"pk":{"S":"ORDER#1"}}],"ConsistentRead":true}}}"#;
        let answer: serde_json::Value = serde_json::from_str(&batch_get(&table, request)).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({ "Responses": { "t": [{ "pk": { "S": "STOCK#A" }, "value": { "N": "5" } }] } })
        );
    }

    #[test]
    fn an_item_without_a_string_pk_is_refused() {
        assert!(table_of(&[serde_json::json!({ "id": { "S": "x" } })]).is_err());
    }
}
